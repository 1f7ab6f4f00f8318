"""The ledger's endpoints as plain dicts: data quality, runs and files."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from music_etl.adapters.ledger.base import CLAIMED, DONE, FAILED, FileRecord, Ledger, RunRecord
from music_etl.serve.errors import BAD_PARAMETER, ApiError
from music_etl.serve.params import DayRange

STATUSES = (CLAIMED, DONE, FAILED)
_FILE_FIELDS = (
    "file_key", "status", "content_hash", "timestamp", "rows_in", "rows_valid", "rows_bad",
    "bad_by_reason", "days", "error", "retryable",
)  # fmt: skip


def quality(ledger: Ledger, span: DayRange) -> dict[str, Any]:
    """`/quality`: bad rows per day and per file, failed files; a file's day is when it changed."""
    dated = [(day, r) for r in reversed(ledger.records()) if span.holds(day := utc_day(r))]
    return {
        "from": span.start.isoformat(),
        "to": span.end.isoformat(),
        "by_day": _by_day(dated),
        "by_file": [_file_quality(day, record) for day, record in dated],
        "failed_files": [
            {
                "file_key": r.file_key,
                "status": r.status,
                "day": day,
                "error": r.error,
                "retryable": r.retryable,
            }
            for day, r in dated
            if r.status == FAILED
        ],
    }


def runs(ledger: Ledger, limit: int) -> dict[str, Any]:
    """`/runs`: the latest `limit` runs, newest first, with their durations."""
    return {"runs": [_run(run) for run in ledger.runs(limit)]}


def files(ledger: Ledger, status: str | None) -> dict[str, Any]:
    """`/files`: every file record (only those with `status` when given), by key."""
    if status is not None and status not in STATUSES:
        raise ApiError(
            400, BAD_PARAMETER, f"status={status!r} is not one of {', '.join(STATUSES)}."
        )
    records = sorted(ledger.records(), key=lambda r: r.file_key)
    return {"files": [_file(r) for r in records if status in (None, r.status)]}


def utc_day(record: FileRecord) -> str:
    """The UTC date of the record's `timestamp` ("" when it has none)."""
    stamp = _parse(record.timestamp)
    return stamp.date().isoformat() if stamp else ""


def _by_day(dated: list[tuple[str, FileRecord]]) -> list[dict[str, Any]]:
    rows_in: Counter[str] = Counter()
    rows_bad: Counter[str] = Counter()
    reasons: dict[str, Counter[str]] = defaultdict(Counter)
    for day, record in dated:
        rows_in[day] += record.rows_in
        rows_bad[day] += record.rows_bad
        reasons[day].update(record.bad_by_reason)
    return [
        {
            "date": day,
            "rows_in": rows_in[day],
            "rows_bad": rows_bad[day],
            "reasons": dict(sorted(reasons[day].items())),
        }
        for day in sorted(rows_in)
    ]


def _file_quality(day: str, record: FileRecord) -> dict[str, Any]:
    return {
        "file_key": record.file_key,
        "status": record.status,
        "day": day,
        "rows_in": record.rows_in,
        "rows_valid": record.rows_valid,
        "rows_bad": record.rows_bad,
        "bad_by_reason": dict(sorted(record.bad_by_reason.items())),
    }


def _file(record: FileRecord) -> dict[str, Any]:
    values = asdict(record)
    values["days"] = list(record.days)
    return {name: values[name] for name in _FILE_FIELDS}


def _run(run: RunRecord) -> dict[str, Any]:
    started, finished = _parse(run.started), _parse(run.finished)
    duration = (finished - started).total_seconds() if started and finished else None
    return {**asdict(run), "duration_seconds": duration}


def _parse(stamp: str) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)
