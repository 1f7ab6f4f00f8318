"""The lake's tables as Athena and the Glue Data Catalog see them: written once.

`infra/music-etl.yaml` declares these tables (`AWS::Glue::Table`) and a test checks
the template against `TABLES`; `music-etl aws ddl` prints them as Athena DDL. The
names are those of `music-etl query`'s views, so one SQL text runs on both.

Date partitions use partition projection: Athena computes each day's location from
`storage.location.template`, so no crawler run and no `MSCK REPAIR` is needed. A
table's location holds only the Parquet files it describes: the pipeline's markers
(`_SOURCE`, `_COMMIT`, `_RECOMPUTE`, `_staged/`) live under `validated/users|songs/`,
its state under `_state/`, its manifests under `archive/`; a local temp file starts
with `.`, which Athena skips.

Example:
    >>> print(athena_ddl(TABLES[-1], "s3://bucket/lake", "music_etl").splitlines()[0])
    CREATE EXTERNAL TABLE IF NOT EXISTS `music_etl`.`top_genres` (
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from music_etl.errors import ConfigError
from music_etl.logic import contract, layout
from music_etl.logic.rules import Kind

#: The first day a date partition may hold; Athena projects no partition before it.
FIRST_DAY = "2000-01-01"
#: The last: a listen may be up to 24 hours ahead of the clock (`future_timestamp`).
LAST_DAY = "NOW+1DAYS"
PARQUET_INPUT = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
PARQUET_OUTPUT = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat"
PARQUET_SERDE = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
#: The Hive (Athena, Glue catalog) type of each contract type: the one mapping.
HIVE_TYPES = {
    Kind.STRING: "string",
    Kind.INT64: "bigint",
    Kind.FLOAT64: "double",
    Kind.TIMESTAMP: "timestamp",
    Kind.DATE: "date",
}
#: What Athena and the Glue catalog accept as a database name (as infra/ allows it).
_DATABASE = re.compile(r"[a-z0-9_]{1,64}")


@dataclass(frozen=True, kw_only=True)
class CatalogTable:
    """One lake table: where it lives, its columns (Hive types) and its date partition."""

    name: str
    """Table name in the catalog (the same as the `music-etl query` view)."""
    prefix: str
    """Its location under the lake root, ending in `/`."""
    columns: tuple[tuple[str, str], ...]
    """(name, Hive type) of each column stored in the Parquet files."""
    partition: str | None
    """The date partition column (a `<column>=YYYY-MM-DD/` folder), if any."""
    description: str
    """One line for the catalog."""

    def location(self, lake: str) -> str:
        """The table's location under `lake` (`s3://bucket/prefix`)."""
        return f"{lake.rstrip('/')}/{self.prefix}"

    def parameters(self, lake: str) -> dict[str, str]:
        """The table properties: Parquet, and partition projection of the date column."""
        found = {"classification": "parquet", "EXTERNAL": "TRUE"}
        if self.partition is None:
            return found
        column = f"projection.{self.partition}"
        return {
            **found,
            "projection.enabled": "true",
            f"{column}.type": "date",
            f"{column}.format": "yyyy-MM-dd",
            f"{column}.range": f"{FIRST_DAY},{LAST_DAY}",
            f"{column}.interval": "1",
            f"{column}.interval.unit": "DAYS",
            "storage.location.template": (
                f"{self.location(lake)}{self.partition}=${{{self.partition}}}/"
            ),
        }


_SOURCE = (("source_file", "string"), ("source_line", "bigint"))
#: The one-line catalog description of each output table.
_OUTPUT_DESCRIPTIONS = {
    "daily_genre_kpis": "Listens, unique listeners and listening time per day and genre.",
    "top_songs": "The three most played songs per day and genre.",
    "top_genres": "The five most listened genres per day.",
}


def tables() -> tuple[CatalogTable, ...]:
    """Every lake table, the output tables' columns derived from the contract when called.

    Example:
        >>> [t.name for t in tables()][:2]
        ['streams', 'bad_records']
    """
    streams = contract.STREAMS.columns
    return (
        CatalogTable(
            name="streams",
            prefix=layout.VALIDATED_STREAMS,
            columns=(*((c, HIVE_TYPES[k]) for c, k in streams.items()), *_SOURCE),
            partition="listen_date",
            description="Validated, de-duplicated listens; one file per (day, source file).",
        ),
        CatalogTable(
            name="bad_records",
            prefix=f"{layout.BAD_RECORDS}streams/",
            # A bad row is kept as read: its fields are the raw text.
            columns=(*((c, "string") for c in streams), ("reason", "string"), *_SOURCE),
            partition=None,
            description=(
                "Rejected stream rows with their reason, under <reason>/ folders "
                "(also those of versions the bad-row threshold rejected)."
            ),
        ),
        *(_output_table(name, schema) for name, schema in contract.output_schemas().items()),
    )


def _output_table(name: str, schema: dict[str, Kind]) -> CatalogTable:
    # The day is the partition folder, not a column of the Parquet files.
    return CatalogTable(
        name=name,
        prefix=f"{layout.PROCESSED}{name}/",
        columns=tuple((c, HIVE_TYPES[k]) for c, k in schema.items() if c != "date"),
        partition="date",
        description=_OUTPUT_DESCRIPTIONS[name],
    )


TABLES: tuple[CatalogTable, ...] = tables()


def athena_ddl(table: CatalogTable, lake: str, database: str) -> str:
    """`CREATE EXTERNAL TABLE` for `table` under `lake` in `database`, as Athena runs it."""
    columns = ",\n".join(f"  `{name}` {kind}" for name, kind in table.columns)
    lines = [f"CREATE EXTERNAL TABLE IF NOT EXISTS `{database}`.`{table.name}` (", columns, ")"]
    lines.append(f"COMMENT '{_quote(table.description)}'")
    if table.partition:
        lines.append(f"PARTITIONED BY (`{table.partition}` date)")
    lines += ["STORED AS PARQUET", f"LOCATION '{_quote(table.location(lake))}'"]
    properties = ",\n".join(
        f"  '{key}' = '{_quote(value)}'"
        for key, value in table.parameters(lake).items()
        if key != "EXTERNAL"
    )
    lines += ["TBLPROPERTIES (", properties, ");"]
    return "\n".join(lines)


def athena_script(lake: str, database: str) -> str:
    """The database and every table, as one script for the Athena query editor.

    Raises `ConfigError` unless `lake` is an `s3://bucket/prefix` and `database` a
    catalog name (lower case letters, digits, `_`).

    Example:
        >>> athena_script("s3://bucket/lake", "music_etl").splitlines()[0]
        'CREATE DATABASE IF NOT EXISTS `music_etl`;'
    """
    if not re.fullmatch(r"s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/[^'\s]*)?", lake):
        raise ConfigError(
            f"Athena reads the lake from S3, not {lake!r}: "
            "pass --lake s3://bucket/prefix (or set MUSIC_ETL_LAKE)."
        )
    if not _DATABASE.fullmatch(database):
        raise ConfigError(
            f"{database!r} is not a Glue database name: use lower case letters, "
            "digits and _ (at most 64), e.g. --database music_etl."
        )
    statements = [f"CREATE DATABASE IF NOT EXISTS `{database}`;"]
    statements += [athena_ddl(table, lake, database) for table in tables()]
    return "\n\n".join(statements) + "\n"


def _quote(text: str) -> str:
    return text.replace("'", "''")
