"""`music-etl`: each command parses, calls one library function, renders."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Annotated, Any

import typer

from music_etl.cli import aws, render
from music_etl.settings import Settings, load_settings

app = typer.Typer(
    name="music-etl",
    help="Exactly-once ETL for music-streaming events: validate, compute daily genre KPIs, serve.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

Lake = Annotated[str | None, typer.Option("--lake", help="Lake root folder (default ./lake).")]
Engine = Annotated[str | None, typer.Option("--engine", help="Engine: polars (default) or spark.")]
Config = Annotated[
    Path | None, typer.Option("--config", help="Settings file (default ./music-etl.toml).")
]

EXIT_FAILED_FILES = 1


def _settings(lake: str | None, engine: str | None = None, config: Path | None = None) -> Settings:
    return load_settings(config=config, lake=lake, engine=engine)


@app.command()
def init(lake: Lake = None, config: Config = None) -> None:
    """Create the lake's folders and ledger.

    Example: music-etl init --lake ./lake
    """
    from music_etl.pipeline.lake import init_lake

    prefixes = render.guard(lambda: init_lake(_settings(lake, config=config)))
    render.console.print("Created " + ", ".join(prefixes))


@app.command()
def generate(  # noqa: PLR0917 - Typer maps parameters to options
    lake: Lake = None,
    streams: Annotated[int, typer.Option(help="Stream rows in total.")] = 100_000,
    files: Annotated[int, typer.Option(help="Stream files to split them into.")] = 3,
    days: Annotated[int, typer.Option(help="Days the listens span.")] = 7,
    seed: Annotated[int, typer.Option(help="Random seed: same seed, same bytes.")] = 7,
    bad_share: Annotated[float, typer.Option(help="Share of deliberately bad rows.")] = 0.02,
    append: Annotated[
        int, typer.Option(help="Add only stream files, batch N, for the same users and songs.")
    ] = 0,
    config: Config = None,
) -> None:
    """Write realistic users.csv, songs.csv and stream files into raw/.

    Example: music-etl generate --lake ./lake --streams 1000000 --files 10 --days 30 --seed 1
    """
    settings = _settings(lake, config=config)
    options = {"streams": streams, "files": files, "days": days, "seed": seed}
    report = render.guard(
        lambda: _generate(settings, bad_share=bad_share, append=append, **options)
    )
    render.console.print(f"Wrote {', '.join(report.keys)} under {settings.lake}.")


def _generate(
    settings: Settings,
    *,
    streams: int,
    files: int,
    days: int,
    seed: int,
    bad_share: float,
    append: int,
) -> Any:
    from music_etl.adapters.storage import open_storage
    from music_etl.errors import ConfigError
    from music_etl.sample.generator import generate as write_sample

    if streams < 0 or files < 1 or days < 1 or append < 0 or not 0 <= bad_share < 1:
        raise ConfigError("--streams ≥ 0, --files ≥ 1, --days ≥ 1 and 0 ≤ --bad-share < 1, please.")
    storage = open_storage(settings.lake, endpoint=settings.aws_endpoint)
    return write_sample(
        storage,
        streams=streams,
        files=files,
        days=days,
        seed=seed,
        bad_share=bad_share,
        append=append,
    )


@app.command()
def run(lake: Lake = None, engine: Engine = None, config: Config = None) -> None:
    """Process every pending stream file once, then exit (1 if a file failed).

    Example: music-etl run --lake ./lake
    """
    report = _run_with_progress(_settings(lake, engine, config))
    render.run_summary(report)
    if report.rejected_input:
        raise typer.Exit(EXIT_FAILED_FILES)


def _run_with_progress(settings: Settings) -> Any:
    from music_etl.pipeline.run import run as run_pipeline

    with render.RichProgress() as progress:
        return render.guard(lambda: run_pipeline(settings, progress))


@app.command()
def watch(
    lake: Lake = None,
    interval: Annotated[float, typer.Option(help="Seconds between looks at raw/streams/.")] = 5.0,
    engine: Engine = None,
    config: Config = None,
) -> None:
    """Keep processing files as they arrive; Ctrl-C stops cleanly after the current run.

    Example: music-etl watch --lake ./lake --interval 10
    """
    from music_etl.pipeline.run import run as run_pipeline

    settings = _settings(lake, engine, config)
    render.console.print(
        f"Watching {settings.lake}/raw/streams/ every {interval:g}s; Ctrl-C to stop."
    )
    with _stop_on_interrupt() as stopped:
        while not stopped():
            report = render.guard(lambda: run_pipeline(settings))
            if report.files:
                render.run_summary(report)
            _sleep_unless(stopped, interval)
    render.console.print("Stopped.")


@contextmanager
def _stop_on_interrupt() -> Iterator[Callable[[], bool]]:
    flag = {"stop": False}

    def handler(_signum: int, _frame: FrameType | None) -> None:
        flag["stop"] = True
        render.console.print("Stopping after the current run…")

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield lambda: flag["stop"]
    finally:
        signal.signal(signal.SIGINT, previous)


def _sleep_unless(stopped: Callable[[], bool], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not stopped() and time.monotonic() < deadline:
        time.sleep(min(0.1, seconds))


@app.command()
def status(lake: Lake = None, config: Config = None) -> None:
    """Show the ledger (file, hash, status, rows, days, when) and recent runs.

    Example: music-etl status --lake ./lake
    """
    from music_etl.pipeline.lake import lake_status

    render.status(render.guard(lambda: lake_status(_settings(lake, config=config))))


@app.command()
def query(
    sql: Annotated[
        str,
        typer.Argument(
            help="SQL over streams, bad_records, daily_genre_kpis, top_songs, top_genres."
        ),
    ],
    lake: Lake = None,
    fmt: Annotated[str, typer.Option("--format", help="table, json or csv.")] = "table",
    config: Config = None,
) -> None:
    """Run SQL over the lake with DuckDB (the local stand-in for Athena).

    Example: music-etl query --lake ./lake "SELECT * FROM top_genres ORDER BY date, rank"
    """
    from music_etl.pipeline.query import query as run_query

    if fmt not in {"table", "json", "csv"}:
        render.errors.print(f"[red]error:[/] --format is table, json or csv, not {fmt!r}.")
        raise typer.Exit(render.EXIT_ERROR)
    render.query_result(
        render.guard(lambda: run_query(_settings(lake, config=config).lake, sql)), fmt
    )


@app.command()
def rebuild(lake: Lake = None, engine: Engine = None, config: Config = None) -> None:
    """Recreate validated, processed and the serving store from the archived and pending files.

    Example: music-etl rebuild --lake ./lake
    """
    from music_etl.pipeline.rebuild import rebuild as rebuild_lake

    settings = _settings(lake, engine, config)
    with render.RichProgress() as progress:
        report = render.guard(lambda: rebuild_lake(settings, progress))
    render.run_summary(report)
    if report.rejected_input:
        raise typer.Exit(EXIT_FAILED_FILES)


@app.command()
def demo(
    lake: Annotated[
        str, typer.Option("--lake", help="Where to build the demo lake.")
    ] = "./demo-lake",
    streams: Annotated[int, typer.Option(help="Stream rows to generate.")] = 300_000,
) -> None:
    """Generate a sample landing zone, run the whole pipeline and show what came out.

    Example: music-etl demo --lake ./demo-lake --streams 1000000
    """
    from music_etl.cli.demo import run_demo

    render.guard(lambda: run_demo(lake, streams))


app.add_typer(aws.app, name="aws")


def main() -> None:
    """Entry point of the `music-etl` command."""
    app()
