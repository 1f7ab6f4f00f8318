"""What a run tells the notifier: failed files and why, or the error that stopped it.

Delivery never fails the run: a notifier that cannot deliver is logged and the run's
report is returned as it is (the ledger keeps every failure for `status` anyway).

Example:
    >>> notify_failures(settings, report)  # doctest: +SKIP
    True
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from music_etl.adapters.ledger.base import FAILED
from music_etl.adapters.notify import Notification, Notifier, open_notifier
from music_etl.errors import Retryable, Terminal, exit_code_for, redact
from music_etl.pipeline.batch import FileResult
from music_etl.settings import Settings

log = logging.getLogger(__name__)
#: Files listed one by one in a message; the rest are counted.
MAX_LISTED = 20


def notify_failures(settings: Settings, files: Sequence[FileResult], *, run_id: str = "") -> bool:
    """Send one notification about the failed `files`, if any and if a notifier is set.

    Returns whether a notification was delivered. Never raises: a failure to deliver is
    logged as a warning, because losing a message must not fail the run it reports on.
    """
    failed = [f for f in files if f.status == FAILED]
    if not failed or not settings.notifier:
        return False
    return deliver(
        settings, failure_notification(settings, failed, total=len(files), run_id=run_id)
    )


def notify_error(settings: Settings, exc: BaseException, *, command: str = "run") -> bool:
    """Tell the notifier, if one is set, that `command` stopped on `exc`; never raises."""
    if not settings.notifier:
        return False
    return deliver(settings, error_notification(settings, exc, command=command))


def error_notification(
    settings: Settings, exc: BaseException, *, command: str = "run"
) -> Notification:
    """The message for an error that stopped `command` on the lake: what, and what to do."""
    message = redact(" ".join(str(exc).split()))
    return Notification(
        subject=f"music-etl: {command} failed in {settings.lake}",
        text=f"{type(exc).__name__}: {message}\n{_advice(exc)}",
        details={
            "lake": settings.lake,
            "command": command,
            "error": type(exc).__name__,
            "message": message,
            "retryable": isinstance(exc, Retryable),
            "exit_code": exit_code_for(exc),
        },
    )


def _advice(exc: BaseException) -> str:
    if isinstance(exc, Retryable):
        return "Retry later: the next run picks up where this one stopped."
    if isinstance(exc, Terminal):
        return "Fix the configuration or input named above; retrying fails the same way."
    return "An internal error (a bug): run again with MUSIC_ETL_DEBUG=1 for the traceback."


def deliver(settings: Settings, notification: Notification) -> bool:
    """Send `notification` through the configured notifier; log instead of raising."""
    notifier: Notifier | None = None
    try:
        notifier = open_notifier(settings.notifier, endpoint=settings.aws_endpoint)
        if notifier is None:
            return False
        notifier.send(notification)
    except Exception as exc:  # noqa: BLE001 - a lost message must never fail the run
        where = notifier.describe() if notifier else "the notifier"
        message = redact(" ".join(str(exc).split()))
        log.warning("Could not notify %s (%s): %s", redact(where), type(exc).__name__, message)
        return False
    finally:
        if notifier is not None:
            notifier.close()
    return True


def failure_notification(
    settings: Settings, failed: Sequence[FileResult], *, total: int, run_id: str = ""
) -> Notification:
    """The message for `failed` files out of `total` in one run of the lake."""
    lines = [_file_line(f) for f in failed[:MAX_LISTED]]
    if len(failed) > MAX_LISTED:
        lines.append(f"… and {len(failed) - MAX_LISTED} more (see `music-etl status`).")
    return Notification(
        subject=f"music-etl: {len(failed)} of {total} files failed in {settings.lake}",
        text="\n".join(lines),
        details={
            "lake": settings.lake,
            "run_id": run_id,
            "bad_row_threshold": settings.bad_row_threshold,
            "failed": [file_details(f) for f in failed[:MAX_LISTED]],
            "failed_count": len(failed),
        },
    )


def _file_line(result: FileResult) -> str:
    reason = result.error or "error"
    counts = f"{result.rows_in} rows in, {result.rows_valid} valid, {result.rows_bad} bad"
    top = ", ".join(f"{k} {v}" for k, v in sorted(result.bad_by_reason.items()))
    line = f"- {result.key}: {reason}"
    if result.message:
        line += f" ({result.message})"
    if result.rows_in:
        line += f"; {counts}" + (f" [{top}]" if top else "")
    return line


def file_details(result: FileResult) -> dict[str, Any]:
    """A file's outcome as JSON-ready fields (notifications, the Airflow summary)."""
    return {
        "file": result.key,
        "reason": result.error,
        "message": result.message,
        "rows_in": result.rows_in,
        "rows_valid": result.rows_valid,
        "rows_bad": result.rows_bad,
        "bad_by_reason": dict(result.bad_by_reason),
    }
