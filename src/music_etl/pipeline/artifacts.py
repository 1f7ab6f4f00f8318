"""Run artifacts: one JSON document per run under `_state/runs/`, like dbt's `run_results.json`.

The document is built from what the run already holds (`Partial`: its identity and what
it finished; `RunReport`, its `FileResult`s and `Totals`): nothing is counted twice. The
Glue transform and load stages use the same document (`build_stage`): no files, their
days. It is written with the storage's atomic put, on success and when the run stops on
an error once it held the lake lock (then `status` is `failed` and `error` says why).
Writing it never fails a run: `write` returns the error's one line instead.

Example:
    >>> doc = build(report, partial)  # doctest: +SKIP
    >>> write(storage, doc)  # doctest: +SKIP
    '_state/runs/20240701T000000Z-3f2a9c1b7d4e.json'
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from music_etl._version import __version__
from music_etl.adapters.ledger.base import DONE, RunStatus
from music_etl.adapters.storage.base import Storage
from music_etl.errors import MusicEtlError

if TYPE_CHECKING:
    from music_etl.pipeline.batch import FileResult
    from music_etl.pipeline.run import RunReport

#: Bumped when a field changes meaning or goes away (adding fields keeps it).
SCHEMA_VERSION = 1
#: Where the artifacts live in the lake.
RUNS_PREFIX = "_state/runs/"
#: `status` of a run that ended normally, rejected an input (exit 1), or stopped on an error.
OK, REJECTED, FAILED = RunStatus.OK, RunStatus.REJECTED, RunStatus.FAILED


@dataclass(kw_only=True)
class Partial:
    """What a run has finished so far: the failure artifact is built from it."""

    run_id: str
    started: str
    clock: datetime
    command: str
    flow_id: str = ""
    """The flow (Step Functions execution, Airflow DAG run) this run is a stage of, if any."""
    files: list[FileResult] = field(default_factory=list)
    days: set[str] = field(default_factory=set)
    dimensions: list[FileResult] = field(default_factory=list)
    locked: bool = False
    """Whether the run got the lake lock: a run turned away (`LockHeld`) leaves no artifact."""
    recomputes: bool = True
    loads: bool = True
    """What the run does to its days: a `run` both; a Glue transform stage only recomputes
    them, a load stage only loads them."""


@dataclass(frozen=True, kw_only=True)
class Totals:
    """Row counts over every file of a run, rejected files included.

    `valid` rows passed every row rule; those of files rejected whole (over the
    bad-row threshold) were not loaded, so `loaded` counts the valid rows of the
    files that loaded. Every row is valid or bad: `rows_in == valid + bad`, and
    every bad row is in `bad-records/`.
    """

    rows_in: int
    valid: int
    loaded: int
    bad: int
    bad_by_reason: dict[str, int]

    @classmethod
    def of(cls, files: Sequence[FileResult]) -> Totals:
        """The totals of `files`."""
        reasons: Counter[str] = Counter()
        for f in files:
            reasons.update(f.bad_by_reason)
        return cls(
            rows_in=sum(f.rows_in for f in files),
            valid=sum(f.rows_valid for f in files),
            loaded=sum(f.rows_valid for f in files if f.status == DONE),
            bad=reasons.total(),
            bad_by_reason=dict(sorted(reasons.items())),
        )


def build(report: RunReport, partial: Partial) -> dict[str, Any]:
    """The artifact of a run that ended (`ok`, or `rejected` when an input was rejected)."""
    return _document(
        partial,
        report.finished,
        status=REJECTED if report.rejected_input else OK,
        files=report.files,
        dimensions=report.dimensions.files(),
        days=day_entries(report.days, report.flagged_days),
        waiting=list(report.waiting),
        skipped=[{"key": s.key, "reason": s.reason} for s in report.skipped],
        missing=list(report.missing),
    )


def build_failed(partial: Partial, error: str, finished: str) -> dict[str, Any]:
    """The artifact of a run stopped by `error`: what it finished before, and why it stopped."""
    return _document(
        partial,
        finished,
        status=FAILED,
        error=error,
        files=partial.files,
        dimensions=partial.dimensions,
        days=_days_of(partial, {}),
    )


def build_stage(
    partial: Partial, finished: str, flagged: dict[str, int] | None = None
) -> dict[str, Any]:
    """The artifact of a Glue transform or load stage that ended: no files, one entry per day.

    `flagged`: the load stage's items the serving store skipped, per day.
    """
    return _document(partial, finished, status=OK, days=_days_of(partial, flagged or {}))


def _days_of(partial: Partial, flagged: dict[str, int]) -> list[dict[str, Any]]:
    return day_entries(
        sorted(partial.days), flagged, recomputed=partial.recomputes, loaded=partial.loads
    )


def _document(
    partial: Partial,
    finished: str,
    *,
    status: RunStatus,
    error: str = "",
    files: Sequence[FileResult] = (),
    dimensions: Sequence[FileResult] = (),
    days: list[dict[str, Any]],
    waiting: list[str] | None = None,
    skipped: list[dict[str, str]] | None = None,
    missing: list[str] | None = None,
) -> dict[str, Any]:
    doc = _head(partial, finished)
    doc |= {
        "status": status,
        "error": error,
        "files": [file_entry(f) for f in files],
        "dimensions": [file_entry(f) for f in dimensions],
        "days": days,
        "totals": asdict(Totals.of(files)),
        "waiting": waiting or [],
        "skipped": skipped or [],
        "missing": missing or [],
    }
    return doc


def _head(partial: Partial, finished: str) -> dict[str, Any]:

    return {
        "schema_version": SCHEMA_VERSION,
        "package_version": __version__,
        "command": partial.command,
        "run_id": partial.run_id,
        "flow_id": partial.flow_id,
        "clock": partial.clock.isoformat(),
        "started": partial.started,
        "finished": finished,
    }


def file_entry(f: FileResult) -> dict[str, Any]:
    """One file's line: key, hash, status, reason, rows in/valid/bad by reason, days touched."""
    return {
        "key": f.key,
        "content_hash": f.content_hash,
        "status": f.status,
        "reason": f.error,
        "message": f.message,
        "rows_in": f.rows_in,
        "rows_valid": f.rows_valid,
        "rows_bad": f.rows_bad,
        "bad_by_reason": dict(f.bad_by_reason),
        "days": list(f.days),
    }


def day_entries(
    days: Iterable[str], flagged: dict[str, int], *, recomputed: bool = True, loaded: bool = True
) -> list[dict[str, Any]]:
    """One line per day recomputed and/or loaded, with the items the serving store skipped.

    A `run` does both; a Glue transform stage only recomputes, a load stage only loads.
    """
    return [
        {
            "day": d,
            "recomputed": recomputed,
            "loaded": loaded,
            "skipped_items": flagged.get(d, 0),
        }
        for d in days
    ]


def key_for(doc: dict[str, Any]) -> str:
    """`_state/runs/<started, UTC, compact>-<run id>.json`: names sort by start time."""
    started = datetime.fromisoformat(doc["started"]).strftime("%Y%m%dT%H%M%SZ")
    return f"{RUNS_PREFIX}{started}-{doc['run_id']}.json"


def write(storage: Storage, doc: dict[str, Any]) -> tuple[str, str]:
    """Put `doc` atomically; returns its key and, if the write failed, the error's one line.

    An artifact that cannot be written never fails the run it describes.
    """
    key = key_for(doc)
    try:
        storage.write_bytes(key, dumps(doc).encode())
    except Exception as exc:  # noqa: BLE001 - reported by the caller, never raised
        return key, f"{type(exc).__name__}: {' '.join(str(exc).split())}"
    return key, ""


def dumps(doc: dict[str, Any]) -> str:
    """The artifact's text (stable key order, one trailing newline)."""
    return json.dumps(doc, indent=2, default=str) + "\n"


def recent(storage: Storage, limit: int = 20) -> list[dict[str, Any]]:
    """The latest `limit` artifacts, newest first (unreadable ones are passed over)."""
    keys: Sequence[str] = sorted(
        (i.key for i in storage.list(RUNS_PREFIX) if i.key.endswith(".json")), reverse=True
    )
    docs = []
    for key in keys[:limit]:
        try:
            docs.append(json.loads(storage.read_bytes(key)))
        except (ValueError, MusicEtlError):
            continue
    return docs
