"""`music-etl aws …`: set up and inspect the AWS mode (S3 lake, DynamoDB stores).

boto3 is imported only when a command runs, so `music-etl --help` stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from music_etl.cli import render
from music_etl.settings import Settings, load_cli_settings

app = typer.Typer(
    name="aws",
    help="AWS mode: create the DynamoDB tables, read the ledger in DynamoDB.",
    no_args_is_help=True,
)

Lake = Annotated[
    str | None, typer.Option("--lake", help="Lake root, e.g. s3://bucket/prefix (default ./lake).")
]
Config = Annotated[
    Path | None, typer.Option("--config", help="Settings file (default ./music-etl.toml).")
]


def _settings(lake: str | None, config: Path | None) -> Settings:
    return load_cli_settings(config=config, lake=lake)


@app.command()
def init(
    lake: Lake = None,
    config: Config = None,
    create_bucket: Annotated[
        bool,
        typer.Option(
            "--create-bucket",
            help="Also create the lake's bucket if missing (versioned, public access blocked).",
        ),
    ] = False,
) -> None:
    """Create every missing DynamoDB table (on-demand, encrypted, PITR on) and wait for it.

    With --create-bucket, a missing bucket is made versioned and private, as infra/ does.

    Example: music-etl aws init --lake s3://my-bucket/lake
    """
    from music_etl.adapters.aws.setup import init_aws

    settings = render.guard(lambda: _settings(lake, config))
    report = render.guard(
        lambda: init_aws(
            lake=settings.lake,
            serving=settings.serving_url,
            ledger=settings.ledger_url,
            endpoint=settings.aws_endpoint,
            create_bucket=create_bucket,
        )
    )
    if report.bucket_created:
        render.console.print(f"Created the bucket {report.bucket_created}.")
    _mark_lake(settings)
    for table in report.tables:
        state = "created" if table in report.created else "exists"
        render.console.print(f"{table}: {state}, active")


@app.command()
def status(lake: Lake = None, config: Config = None) -> None:
    """Show the ProcessedStreams ledger in DynamoDB and the recent runs.

    Example: music-etl aws status --lake s3://my-bucket/lake
    """
    from music_etl.pipeline.lake import lake_status

    render.status(render.guard(lambda: lake_status(_settings(lake, config))))


def _mark_lake(settings: Settings) -> None:
    """Make the S3 prefix a lake (its marker), when its bucket is there already."""
    from music_etl.adapters.storage import open_storage
    from music_etl.errors import StorageError
    from music_etl.pipeline.lake import mark_lake

    if not settings.lake.startswith("s3://"):
        return
    try:
        mark_lake(open_storage(settings.lake, endpoint=settings.aws_endpoint))
    except StorageError:
        render.errors.print(
            f"note: {settings.lake} is not writable yet (no bucket?); "
            "`music-etl generate` or your first upload makes it a lake."
        )


@app.command()
def ddl(
    lake: Lake = None,
    config: Config = None,
    database: Annotated[
        str, typer.Option("--database", help="Glue/Athena database of the tables.")
    ] = "music_etl",
) -> None:
    """Print Athena DDL for the lake's tables (partition projection: no crawler, no MSCK).

    The same tables as infra/music-etl.yaml, for accounts that do not deploy it: run the
    output in the Athena query editor, then query e.g. `SELECT * FROM top_genres`.

    Example: music-etl aws ddl --lake s3://my-bucket/lake --database music_etl
    """
    from music_etl.logic.catalog import athena_script

    settings = render.guard(lambda: _settings(lake, config))
    script = render.guard(lambda: athena_script(settings.lake, database))
    typer.echo(script, nl=False)
