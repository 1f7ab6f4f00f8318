"""Rich rendering for the CLI: progress bars, tables, summaries."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from music_etl.errors import MusicEtlError
from music_etl.pipeline.lake import LakeStatus
from music_etl.pipeline.query import QueryResult
from music_etl.pipeline.run import RunReport

console = Console()
errors = Console(stderr=True)
#: Exit code of a user mistake or an error this package raised on purpose.
EXIT_ERROR = 2
T = TypeVar("T")


def guard(action: Callable[[], T]) -> T:
    """Run `action`; our errors become one red line and exit code 2, never a traceback."""
    try:
        return action()
    except MusicEtlError as exc:
        errors.print(f"[red]error:[/] {exc}")
        raise typer.Exit(EXIT_ERROR) from None


class RichProgress:
    """The pipeline's `Progress` as Rich progress bars."""

    def __init__(self) -> None:
        self._bars = Progress(
            TextColumn("[bold]{task.description:<18}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total}"),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        )
        self._task: TaskID | None = None

    def __enter__(self) -> RichProgress:
        self._bars.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._bars.stop()

    def step(self, name: str, total: int) -> None:
        """Start a bar for the step."""
        self._task = self._bars.add_task(name, total=max(total, 1))

    def advance(self, units: int = 1) -> None:
        """Move the current bar."""
        if self._task is not None:
            self._bars.advance(self._task, units)


def run_summary(report: RunReport) -> None:
    """Files, rows and reasons of a run."""
    dimension_summary(report)
    table = Table(title="Files", show_lines=False)
    for column in ("file", "status", "rows in", "valid", "bad", "days", "note"):
        table.add_column(
            column, justify="right" if column in {"rows in", "valid", "bad", "days"} else "left"
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
    reasons: Counter[str] = Counter()
    for f in report.processed:
        reasons.update(f.bad_by_reason)
    rows_in = sum(f.rows_in for f in report.files)
    processed, failed = len(report.processed), len(report.failed)
    console.print(
        f"[bold]{processed}[/] file(s) processed, [bold]{failed}[/] failed; "
        f"{rows_in:,} rows in, {sum(f.rows_valid for f in report.processed):,} valid, "
        f"{sum(reasons.values()):,} bad; {len(report.days)} day(s) recomputed."
    )
    if reasons:
        console.print(
            "Bad rows by reason: " + ", ".join(f"{r} {n:,}" for r, n in sorted(reasons.items()))
        )
    if not report.files:
        console.print("Nothing new in raw/streams/.")


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
    for column in ("file", "hash", "status", "rows in", "valid", "bad", "days", "when", "error"):
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
        )
    console.print(files)
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
