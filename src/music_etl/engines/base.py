"""The engine contract: execute the logic layer's contract on some compute backend."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Protocol

from music_etl.adapters.storage.base import Storage
from music_etl.errors import ConfigError
from music_etl.logic.contract import DatasetContract
from music_etl.logic.serving_model import DayResults


@dataclass(frozen=True, kw_only=True)
class Source:
    """A raw CSV to validate: where it is now and the id its outputs are named by."""

    key: str
    """Where the bytes are now (`raw/…` or `archive/…`)."""
    original_key: str
    """The landing-zone key: what bad records and the ledger name."""
    sid: str


@dataclass(frozen=True, kw_only=True)
class Outcome:
    """What validating one file produced."""

    original_key: str
    rows_in: int = 0
    rows_valid: int = 0
    bad_by_reason: dict[str, int] = field(default_factory=dict)
    days: tuple[str, ...] = ()
    file_error: str = ""
    """A file-level reason (`missing_column`, …); empty when rows were validated."""
    message: str = ""

    @property
    def rows_bad(self) -> int:
        """Rows rejected, whatever the reason."""
        return sum(self.bad_by_reason.values())


@dataclass(frozen=True, kw_only=True)
class StreamBatch:
    """Stream files validated together, in the order that decides duplicates."""

    sources: Sequence[Source]
    clock: datetime
    threshold: float


class Engine(Protocol):
    """Validates raw files into the lake and computes the output tables of given days."""

    name: str

    def validate_dimension(
        self, contract: DatasetContract, source: Source, snapshot: str
    ) -> Outcome:
        """Write the dimension's valid rows to `snapshot`, its bad records under `source.sid`."""
        ...

    def validate_streams(self, batch: StreamBatch) -> list[Outcome]:
        """Write each file's valid rows per day and its bad records; one outcome per file."""
        ...

    def compute_days(self, days: Sequence[date]) -> DayResults:
        """Recompute and write the output tables of `days` from all their valid rows."""
        ...


#: The packages of the `embedded` extra (`pip install 'music-streaming-etl[embedded]'`).
EMBEDDED_PACKAGES = frozenset({"duckdb", "numpy", "polars", "pyarrow"})


class NoEngine:
    """For components that only discover and report: refuses any validation or compute.

    The DAG's short-circuit opens the lake with it, so an Airflow worker that has only
    the package without extras (Glue mode on Amazon MWAA) never imports Polars.
    """

    name = "none"

    def validate_dimension(
        self, contract: DatasetContract, source: Source, snapshot: str
    ) -> Outcome:
        """Never called: discovery validates nothing."""
        raise self._refused()

    def validate_streams(self, batch: StreamBatch) -> list[Outcome]:
        """Never called: discovery validates nothing."""
        raise self._refused()

    def compute_days(self, days: Sequence[date]) -> DayResults:
        """Never called: discovery computes nothing."""
        raise self._refused()

    @staticmethod
    def _refused() -> RuntimeError:
        return RuntimeError("Components opened for discovery (NoEngine) cannot run a batch.")


def missing_extra(exc: ImportError) -> ConfigError | None:
    """The user's error for a missing package of the `embedded` extra, or None for any other.

    Example:
        >>> missing_extra(ModuleNotFoundError("No module named 'polars'", name="polars"))
        ConfigError("The embedded engine needs polars, which is not installed: pip install 'music-streaming-etl[embedded]'.")
    """  # noqa: E501 - a doctest output is one line
    root = (exc.name or "").partition(".")[0]
    if not isinstance(exc, ModuleNotFoundError) or root not in EMBEDDED_PACKAGES:
        return None
    return ConfigError(
        f"The embedded engine needs {root}, which is not installed: "
        "pip install 'music-streaming-etl[embedded]'."
    )


def make_engine(name: str, storage: Storage, *, aws_endpoint: str = "") -> Engine:
    """The engine called `name`, imported only when asked for.

    `aws_endpoint` is the S3 endpoint override (the setting) for engines that reach the
    lake themselves (Spark's S3A); the embedded engine reads through `storage`.

    A missing extra is a `ConfigError` that names it (exit 2), never a traceback.
    """
    if name == "polars":
        try:
            from music_etl.engines.polars.engine import PolarsEngine
        except ModuleNotFoundError as exc:
            raise (missing_extra(exc) or exc) from exc
        return PolarsEngine(storage)
    if name == "spark":
        try:
            from music_etl.engines.spark.engine import SparkEngine
        except ModuleNotFoundError as exc:
            raise ConfigError(
                "The spark engine needs PySpark 3.5 and Java 17: "
                "pip install 'music-streaming-etl[spark]'."
            ) from exc
        return SparkEngine(storage, aws_endpoint=aws_endpoint)
    raise ConfigError(f"Unknown engine {name!r}.")
