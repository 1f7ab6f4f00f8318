"""The engine contract: execute the logic layer's contract on some compute backend."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Protocol

from music_etl.logic.contract import DatasetContract
from music_etl.logic.counts import FileCounts
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
class Outcome(FileCounts):
    """What validating one file produced: its counts, and why it was rejected if it was."""

    original_key: str
    file_error: str = ""
    """A file-level reason (`missing_column`, …); empty when rows were validated."""
    message: str = ""


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
