"""Rich rendering for the CLI: progress bars, tables, summaries."""

from __future__ import annotations

import json
import os
import sqlite3
import sys
import traceback
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from music_etl.adapters.sqlite_common import sqlite_error
from music_etl.engines.registry import missing_extra
from music_etl.errors import (
    EXIT_CONFIG,
    MusicEtlError,
    exit_code_for,
    from_os_error,
    redact,
)
from music_etl.pipeline.lake import LakeStatus
from music_etl.pipeline.progress import JsonLines
from music_etl.pipeline.query import QueryResult
from music_etl.pipeline.retry import RetryReport, next_step, retry_mode
from music_etl.pipeline.run import RunReport

#: Width of output that is not a terminal (a pipe, a log): wide enough never to cut a name.
PIPED_WIDTH = 10_000
#: Exit code of a run stopped by Ctrl-C (128 + SIGINT), as shells report it.
EXIT_INTERRUPTED = 130
#: `human` (default) or `json`: how `run`, `watch`, `rebuild` and `retry` log their events.
LOG_FORMAT_ENV = "MUSIC_ETL_LOG_FORMAT"
LOG_FORMATS = ("human", "json")


def _stdout_console() -> Console:
    """Rich on a terminal; on a pipe, a width at which tables never cut a file name."""
    return Console() if sys.stdout.isatty() else Console(width=PIPED_WIDTH)


console = _stdout_console()
#: Error lines are never wrapped: one failure, one line, whatever the terminal's width.
errors = Console(stderr=True, soft_wrap=True)


@dataclass(kw_only=True)
class Output:
    """The global output options (`music-etl -q/-v --log-format …`)."""

    log_format: str = "human"
    """`human` or `json` (one JSON object per event on stderr)."""
    verbosity: int = 0
    """-1 quiet (errors and the one-line result), 0 normal, 1 every event on stderr."""


output = Output()
#: Exit code of a user mistake (a configuration or usage error).
EXIT_ERROR = EXIT_CONFIG
#: Set to 1 to see the traceback of an internal error.
DEBUG_ENV = "MUSIC_ETL_DEBUG"
T = TypeVar("T")


def guard(action: Callable[[], T]) -> T:
    """Run `action`; any failure becomes one line on stderr and its exit code (`exit_code_for`).

    Our errors keep their message; OS and SQLite errors are translated first; anything
    else is an internal error (a bug), with the traceback only under `MUSIC_ETL_DEBUG=1`.
    """
    try:
        return action()
    except (typer.Exit, typer.Abort):
        raise
    except Exception as exc:  # noqa: BLE001 - the CLI boundary: nothing escapes as a traceback
        fail(exc)


def translate(exc: BaseException) -> MusicEtlError | None:
    """`exc` as one of our errors, or None when it is a bug."""
    if isinstance(exc, MusicEtlError):
        return exc
    if isinstance(exc, OSError):
        return from_os_error(exc)
    if isinstance(exc, sqlite3.Error):
        return sqlite_error(exc)
    if isinstance(exc, ImportError):
        return missing_extra(exc)
    return None


def fail(exc: BaseException) -> NoReturn:
    """Print `exc` as one line on stderr and exit with the code a scheduler acts on."""
    ours = translate(exc)
    if ours is None:
        if os.environ.get(DEBUG_ENV, "") not in {"", "0"}:
            traceback.print_exception(exc)
        line = (
            f"internal error: {type(exc).__name__}: {one_line(exc)} "
            f"(set {DEBUG_ENV}=1 for the traceback)"
        )
    else:
        line = f"error: {one_line(ours)}"
    if output.log_format == "json":
        _json_line("error", "error", message=line.split(":", 1)[1].strip(), kind=line.split(":")[0])
        raise typer.Exit(exit_code_for(ours or exc)) from None
    errors.print(f"[red]{escape(line.split(':', 1)[0])}:[/]{escape(line.split(':', 1)[1])}")
    raise typer.Exit(exit_code_for(ours or exc)) from None


def warn(message: str) -> None:
    """One yellow warning line on stderr (a JSON object under `--log-format json`)."""
    if output.log_format == "json":
        _json_line("warning", "warning", message=one_line(message))
        return
    errors.print(f"[yellow]warning:[/] {escape(one_line(message))}")


def _json_line(name: str, level: str, **fields: Any) -> None:
    JsonLines(sys.stderr).event(name, level, **fields)


def one_line(message: object) -> str:
    """`message` on one line, without credentials (`redact`)."""
    return redact(" ".join(str(message).split()))


class RichProgress:
    """The pipeline's `Progress` for the CLI: bars and events on stderr, never on stdout.

    Bars are drawn only on a terminal, in the human format and without `-q`. Events go
    out as JSON lines under `--log-format json`; in the human format `-v` prints each
    one, and otherwise only the warnings the summary does not already show.
    """

    def __init__(self) -> None:
        bars_console = Console(stderr=True)
        self._show_bars = (
            bars_console.is_terminal and output.log_format == "human" and output.verbosity >= 0
        )
        self._bars = Progress(
            TextColumn("[bold]{task.description:<18}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total}"),
            TimeElapsedColumn(),
            console=bars_console,
            transient=False,
        )
        self._task: TaskID | None = None
        level = "warning" if output.verbosity < 0 else "info"
        self._json = JsonLines(sys.stderr, min_level=level) if output.log_format == "json" else None

    def __enter__(self) -> RichProgress:
        if self._show_bars:
            self._bars.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._show_bars:
            self._bars.stop()

    def step(self, name: str, total: int) -> None:
        """Start a bar for the step."""
        if self._show_bars:
            self._task = self._bars.add_task(name, total=max(total, 1))

    def advance(self, units: int = 1) -> None:
        """Move the current bar."""
        if self._task is not None:
            self._bars.advance(self._task, units)

    def event(self, name: str, level: str = "info", **fields: Any) -> None:
        """Log the event: a JSON line, or a human line when it is wanted."""
        if self._json is not None:
            self._json.event(name, level, **fields)
        elif output.verbosity > 0 and level != "debug":
            facts = " ".join(f"{k}={v}" for k, v in fields.items() if v not in ("", [], {}))
            self._bars.console.print(f"{level}: {name} {escape(facts)}", soft_wrap=True)
        elif level in {"warning", "error"} and name not in _SHOWN_BY_SUMMARY:
            warn(
                fields.get("message")
                or f"{name}: " + ", ".join(f"{k} {v}" for k, v in fields.items())
            )


#: Events whose facts the run summary prints anyway.
_SHOWN_BY_SUMMARY = frozenset({"file_rejected", "run_finished"})


def artifact_json(report: RunReport) -> None:
    """The run artifact as the only document on stdout (`run --json`)."""
    sys.stdout.write(json.dumps(report.artifact, indent=2, default=str) + "\n")
    sys.stdout.flush()


def interrupted(lease_seconds: int) -> NoReturn:
    """One line for Ctrl-C during a run, then exit 130."""
    line = (
        "interrupted: the run stopped; files it had claimed stay claimed until their lease "
        f"expires ({lease_seconds}s), and the next run resumes them. The run artifact "
        "under _state/runs/ says what was finished."
    )
    if output.log_format == "json":
        _json_line("interrupted", "error", message=line)
    else:
        errors.print(f"[red]interrupted:[/]{escape(line.split(':', 1)[1])}")
    raise typer.Exit(EXIT_INTERRUPTED)


def status_json(lake: LakeStatus, runs: Sequence[dict[str, Any]]) -> None:
    """The ledger, the recent runs and their artifacts as one JSON document on stdout."""
    doc = {
        "files": [asdict(r) for r in lake.files],
        "runs": [asdict(r) for r in lake.runs],
        "artifacts": list(runs),
        "flagged_days": lake.flagged_days,
        "landing": {
            "waiting": [i.key for i in lake.landing.waiting],
            "skipped": [{"key": s.key, "reason": s.reason} for s in lake.landing.skipped],
        },
    }
    sys.stdout.write(json.dumps(doc, indent=2, default=str) + "\n")


def run_summary(report: RunReport) -> None:
    """Files, rows and reasons of a run (`-q`: the one-line result and the errors only)."""
    if output.verbosity < 0:
        _quiet_summary(report)
        return
    dimension_summary(report)
    table = Table(title="Files", show_lines=False)
    for column in ("file", "status", "rows in", "valid", "bad", "days", "note"):
        table.add_column(
            column,
            justify="right" if column in {"rows in", "valid", "bad", "days"} else "left",
            overflow="fold" if column == "note" else "ellipsis",  # a note names a file in full
        )
    for f in report.files:
        note = f.error + (f": {f.message}" if f.message else "")
        table.add_row(
            f.key,
            f.status,
            str(f.rows_in),
            str(f.rows_valid),
            str(f.rows_bad),
            str(len(f.days)),
            note,
        )
    if report.files:
        console.print(table)
    console.print(_result_line(report))
    totals = report.totals
    if totals.valid > totals.loaded:
        console.print(
            f"Valid rows of rejected files, not loaded: {totals.valid - totals.loaded:,}."
        )
    if totals.bad_by_reason:
        console.print(
            "Bad rows by reason: "
            + ", ".join(f"{r} {n:,}" for r, n in totals.bad_by_reason.items())
        )
    if not report.files:
        console.print("Nothing new in raw/streams/.")
    _flagged_note(report.flagged_days, "this run")
    _landing_notes(report)


def _result_line(report: RunReport) -> str:
    totals = report.totals
    processed, failed = len(report.processed), len(report.failed)
    return (
        f"[bold]{processed}[/] file(s) processed, [bold]{failed}[/] failed; "
        f"{totals.rows_in:,} rows in, {totals.valid:,} valid ({totals.loaded:,} loaded), "
        f"{totals.bad:,} bad; {len(report.days)} day(s) recomputed."
    )


def _quiet_summary(report: RunReport) -> None:
    """Rejected inputs on stderr, then the one-line result."""
    for f in [*report.dimensions.files(), *report.files]:
        if f.status == "failed":
            errors.print(f"[red]rejected:[/] {escape(f.key)}: {f.error}: {escape(f.message)}")
    console.print(_result_line(report))


def _flagged_note(flagged: dict[str, int], when: str) -> None:
    """Days loaded without items the serving store could not write (never silently partial)."""
    if not flagged:
        return
    days = ", ".join(f"{day} ({n})" for day, n in sorted(flagged.items()))
    errors.print(
        f"[yellow]partial days:[/] {sum(flagged.values()):,} item(s) the serving store could "
        f"not write were skipped ({when}): {days}. The log names each key and reason; a "
        "reload of the day from fixed input clears the flag."
    )


def _landing_notes(report: RunReport) -> None:
    """Files left for later, entries never taken, versions a rebuild went on without."""
    for key in report.waiting:
        console.print(f"[yellow]waiting:[/] {key} is still being written; a later run takes it.")
    if report.skipped:
        console.print(
            f"[yellow]skipped:[/] {len(report.skipped)} entr(y/ies) in raw/streams/ are never "
            "taken (`music-etl status` lists them with the reason)."
        )
    for missing in report.missing:
        console.print(f"[red]missing:[/] {missing}: not in the archive, its rows are gone.")


def dimension_summary(report: RunReport) -> None:
    """One line per dimension file the run validated: accepted, or rejected and why."""
    for f in report.dimensions.files():
        reasons = ", ".join(f"{r} {n:,}" for r, n in sorted(f.bad_by_reason.items()))
        counts = f"{f.rows_in:,} rows in, {f.rows_valid:,} valid, {f.rows_bad:,} bad"
        line = f"{f.key}: {f.status}; {counts}" + (f" ({reasons})" if reasons else "")
        if f.error:
            errors.print(
                f"[red]rejected:[/] {line}. {f.error}: {f.message}. The previous catalogue "
                "stays in force and nothing loaded changed: fix the file and run again."
            )
        else:
            console.print(line)


def top_genres(rows: Sequence[dict[str, Any]], day: str) -> None:
    """The top genres of one day."""
    table = Table(title=f"Top genres on {day}")
    for column in ("rank", "genre", "listen_count"):
        table.add_column(column)
    for row in rows:
        table.add_row(str(row["rank"]), row["genre"], f"{row['listen_count']:,}")
    console.print(table)


def status(lake: LakeStatus) -> None:
    """The ledger and the latest runs."""
    files = Table(title="ProcessedStreams")
    columns = ("file", "hash", "status", "rows in", "valid", "bad", "days", "when", "error")
    for column in (*columns, "retry"):
        files.add_column(column)
    for r in lake.files:
        files.add_row(
            r.file_key,
            r.content_hash[:12],
            r.status,
            str(r.rows_in),
            str(r.rows_valid),
            str(r.rows_bad),
            _days(r.days),
            r.timestamp,
            r.error,
            retry_mode(r.error, r.judged_against, retryable=r.retryable),
        )
    console.print(files)
    for r in lake.files:
        if step := next_step(r.file_key, r.error, r.judged_against, retryable=r.retryable):
            console.print(f"Next step for {r.file_key}: {step}.")
    runs = Table(title="Recent runs")
    for column in ("started", "finished", "files", "rows in", "valid", "bad", "days", "status"):
        runs.add_column(column)
    for run in lake.runs:
        runs.add_row(
            run.started,
            run.finished,
            str(run.files),
            str(run.rows_in),
            str(run.rows_valid),
            str(run.rows_bad),
            str(run.days),
            run.status,
        )
    console.print(runs)
    _flagged_note(lake.flagged_days, "flagged in the serving store")
    _landing_table(lake)


def _landing_table(lake: LakeStatus) -> None:
    rows = [(info.key, "waiting: still being written") for info in lake.landing.waiting]
    rows += [(s.key, f"skipped: {s.reason}") for s in lake.landing.skipped]
    if not rows:
        return
    table = Table(title="Landing zone: not taken")
    table.add_column("entry")
    table.add_column("why")
    for key, why in rows:
        table.add_row(key, why)
    console.print(table)


def retry_summary(report: RetryReport) -> None:
    """The failed files `retry` reset, and the named files it left alone."""
    for r in report.reset:
        console.print(f"Reset {r.file_key} (failed: {r.error}): the next `music-etl run` takes it.")
    for r in report.left:
        console.print(f"Left {r.file_key} as it is: it is {r.status}, not failed.")
    if not report.reset and not report.left:
        console.print("No failed files to retry.")


def query_result(result: QueryResult, fmt: str) -> None:
    """Rows as a table, JSON lines or CSV."""
    if fmt == "json":
        for row in result.rows:
            print(json.dumps(dict(zip(result.columns, row, strict=True)), default=str))
    elif fmt == "csv":
        import csv
        import sys

        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(result.columns)
        writer.writerows(result.rows)
    else:
        table = Table()
        for column in result.columns:
            table.add_column(column)
        for row in result.rows:
            table.add_row(*(str(v) for v in row))
        console.print(table)


def _days(days: Sequence[str]) -> str:
    if len(days) <= 2:
        return ", ".join(days)
    return f"{days[0]} … {days[-1]} ({len(days)})"
