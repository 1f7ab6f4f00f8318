"""`music-etl`: each command parses, calls one library function, renders."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from types import FrameType
from typing import Annotated, Any

import typer

from music_etl.cli import aws, render, serve
from music_etl.errors import EXIT_REJECTED, ConfigError, Retryable
from music_etl.settings import Settings, load_cli_settings

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

#: A stream file was rejected (`errors.EXIT_REJECTED`); what was loaded is unchanged.
EXIT_FAILED_FILES = EXIT_REJECTED
#: `watch` waits at most this long between attempts after retryable errors.
MAX_BACKOFF_SECONDS = 300.0
_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


LogFormat = Annotated[
    str | None,
    typer.Option(
        "--log-format",
        help="human (default) or json: one JSON object per event on stderr "
        "(or env MUSIC_ETL_LOG_FORMAT).",
    ),
]


def _version(value: bool) -> None:
    if value:
        from music_etl import __version__

        typer.echo(f"music-etl {__version__}")
        raise typer.Exit


@app.callback()
def main_options(
    log_format: LogFormat = None,
    verbose: Annotated[
        bool, typer.Option("-v", "--verbose", help="Print every pipeline event on stderr.")
    ] = False,
    quiet: Annotated[
        bool, typer.Option("-q", "--quiet", help="Print only errors and the one-line result.")
    ] = False,
    _version_flag: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """Options for every command go before it: music-etl --log-format json run --lake ./lake."""
    chosen = (log_format or os.environ.get(render.LOG_FORMAT_ENV) or "human").lower()
    if chosen not in render.LOG_FORMATS:
        render.fail(
            ConfigError(f"--log-format / {render.LOG_FORMAT_ENV} is human or json, not {chosen!r}.")
        )
    render.output.log_format = chosen
    render.output.verbosity = -1 if quiet else int(verbose)


def _settings(lake: str | None, engine: str | None = None, config: Path | None = None) -> Settings:
    """The settings, or one line and exit 2 (a bad value, a missing `--config`)."""
    return render.guard(lambda: load_cli_settings(config=config, lake=lake, engine=engine))


@app.command()
def init(lake: Lake = None, config: Config = None) -> None:
    """Create the lake's folders and ledger.

    Example: music-etl init --lake ./lake
    """
    from music_etl.pipeline.lake import init_lake

    settings = _settings(lake, config=config)
    prefixes = render.guard(lambda: init_lake(settings))
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
    force: Annotated[
        bool, typer.Option("--force", help="Overwrite raw files of the same names.")
    ] = False,
    config: Config = None,
) -> None:
    """Write realistic users.csv, songs.csv and stream files into raw/.

    Refuses to overwrite files already in the lake (landed or archived) unless --force.

    Example: music-etl generate --lake ./lake --streams 1000000 --files 10 --days 30 --seed 1
    """
    settings = _settings(lake, config=config)
    options = {"streams": streams, "files": files, "days": days, "seed": seed}
    report = render.guard(
        lambda: _generate(settings, bad_share=bad_share, append=append, force=force, **options)
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
    force: bool,
) -> Any:
    from music_etl.adapters.storage import open_storage
    from music_etl.errors import ConfigError
    from music_etl.pipeline.lake import mark_lake
    from music_etl.sample.generator import generate as write_sample
    from music_etl.sample.generator import planned_keys

    if streams < 0 or files < 1 or days < 1 or append < 0 or not 0 <= bad_share < 1:
        raise ConfigError("--streams ≥ 0, --files ≥ 1, --days ≥ 1 and 0 ≤ --bad-share < 1, please.")
    storage = open_storage(settings.lake, endpoint=settings.aws_endpoint)
    taken = [k for k in planned_keys(files, append) if _holds(storage, k)]
    if taken and not force:
        raise ConfigError(
            f"{settings.lake} already holds {', '.join(taken[:3])}"
            + (f" and {len(taken) - 3} more" if len(taken) > 3 else "")
            + ": pass --force to overwrite, --append N to add new files, or pick another --lake."
        )
    mark_lake(storage)
    return write_sample(
        storage,
        streams=streams,
        files=files,
        days=days,
        seed=seed,
        bad_share=bad_share,
        append=append,
    )


def _holds(storage: Any, key: str) -> bool:
    from music_etl.logic import layout

    return bool(storage.exists(key) or storage.exists(layout.archive_key(key)))


@app.command()
def run(
    lake: Lake = None,
    engine: Engine = None,
    config: Config = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the run artifact (JSON) as the only stdout.")
    ] = False,
) -> None:
    """Process every pending stream file once, then exit (1 if a file failed, 130 on Ctrl-C).

    Each run writes its artifact to _state/runs/ in the lake.

    Example: music-etl run --lake ./lake --json > run.json
    """
    report = _run_with_progress(_settings(lake, engine, config))
    if as_json:
        render.artifact_json(report)
    else:
        render.run_summary(report)
    if report.rejected_input:
        raise typer.Exit(EXIT_FAILED_FILES)


def _run_with_progress(settings: Settings) -> Any:
    from music_etl.pipeline.run import run as run_pipeline

    try:
        with render.RichProgress() as progress:
            return render.guard(lambda: run_pipeline(settings, progress))
    except KeyboardInterrupt:
        render.interrupted(settings.lease_seconds)


@app.command()
def watch(
    lake: Lake = None,
    interval: Annotated[float, typer.Option(help="Seconds between looks at raw/streams/.")] = 5.0,
    engine: Engine = None,
    config: Config = None,
) -> None:
    """Keep processing files as they arrive; retry-later errors back off (at most 5 min).

    Ctrl-C or SIGTERM stops cleanly after the current run (exit 0); a configuration
    error stops it with exit 2.

    Example: music-etl watch --lake ./lake --interval 10
    """
    settings = _settings(lake, engine, config)
    render.console.print(
        f"Watching {settings.lake}/raw/streams/ every {interval:g}s; Ctrl-C to stop."
    )
    with _stop_on_signals() as stopped:
        _watch_loop(settings, interval, stopped)
    render.console.print("Stopped.")


def _watch_loop(settings: Settings, interval: float, stopped: Callable[[], bool]) -> None:
    """Run until `stopped`; retryable errors back off, anything else ends `watch` with its code.

    The first error of a streak reaches the notifier; retries of it do not, so a long
    `rebuild` holding the lock sends one message, not one per attempt.
    """
    from music_etl.pipeline.notify import notify_error
    from music_etl.pipeline.run import run as run_pipeline

    backoff = _Backoff(first=max(interval, 1.0), cap=MAX_BACKOFF_SECONDS)
    progress = render.RichProgress()
    while not stopped():
        try:
            report = run_pipeline(settings, progress, notify_errors=False)
        except Exception as exc:  # noqa: BLE001 - sorted below: retry, or exit with its code
            ours = render.translate(exc)
            if backoff.fresh:
                notify_error(settings, ours or exc, command="watch")
            if not isinstance(ours, Retryable):
                render.fail(exc)
            if stopped():
                return
            wait = backoff.next()
            render.warn(f"{ours} (retrying in {wait:g}s)")
            _sleep_unless(stopped, wait)
            continue
        backoff.reset()
        if report.files or report.dimensions.files():
            render.run_summary(report)
        _sleep_unless(stopped, interval)


class _Backoff:
    """Exponential delays: `first`, twice that, … at most `cap`; `reset` after a good run."""

    def __init__(self, *, first: float, cap: float) -> None:
        self.first, self.cap = first, cap
        self.attempt = 0

    @property
    def fresh(self) -> bool:
        """No error since the last good run."""
        return self.attempt == 0

    def next(self) -> float:
        """The next delay."""
        delay: float = min(self.cap, self.first * 2.0 ** min(self.attempt, 32))
        self.attempt += 1
        return delay

    def reset(self) -> None:
        """Start again from `first`."""
        self.attempt = 0


@contextmanager
def _stop_on_signals() -> Iterator[Callable[[], bool]]:
    """Ctrl-C (SIGINT) and SIGTERM both stop after the current run, which releases its lock."""
    flag = {"stop": False}

    def handler(_signum: int, _frame: FrameType | None) -> None:
        flag["stop"] = True
        render.console.print("Stopping after the current run…")

    previous = {sig: signal.signal(sig, handler) for sig in _STOP_SIGNALS}
    try:
        yield lambda: flag["stop"]
    finally:
        for sig, action in previous.items():
            signal.signal(sig, action)


def _sleep_unless(stopped: Callable[[], bool], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not stopped() and time.monotonic() < deadline:
        time.sleep(min(0.1, seconds))


@app.command()
def status(
    lake: Lake = None,
    config: Config = None,
    fmt: Annotated[str, typer.Option("--format", help="table or json.")] = "table",
) -> None:
    """Show the ledger (file, hash, status, rows, days, when) and recent runs.

    Example: music-etl status --lake ./lake --format json
    """
    from music_etl.pipeline.lake import lake_status

    if fmt not in {"table", "json"}:
        render.fail(ConfigError(f"--format is table or json, not {fmt!r}."))
    settings = _settings(lake, config=config)
    found = render.guard(lambda: lake_status(settings))
    if fmt == "json":
        render.status_json(found, render.guard(lambda: _recent_artifacts(settings)))
    else:
        render.status(found)


def _recent_artifacts(settings: Settings) -> list[dict[str, Any]]:
    from music_etl.adapters.storage import open_storage
    from music_etl.pipeline.artifacts import recent

    with closing(open_storage(settings.lake, endpoint=settings.aws_endpoint)) as storage:
        return recent(storage)


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
    """Run SQL over the lake with DuckDB (the local stand-in for Athena); also on S3.

    Example: music-etl query --lake ./lake "SELECT * FROM top_genres ORDER BY date, rank"
    (an s3://bucket/prefix lake needs the aws extra: docs/aws.md).
    """
    from music_etl.pipeline.query import query as run_query

    if fmt not in {"table", "json", "csv"}:
        render.fail(ConfigError(f"--format is table, json or csv, not {fmt!r}."))
    settings = _settings(lake, config=config)
    render.query_result(
        render.guard(lambda: run_query(settings.lake, sql, endpoint=settings.aws_endpoint)), fmt
    )


@app.command()
def rebuild(
    lake: Lake = None,
    engine: Engine = None,
    config: Config = None,
    allow_missing: Annotated[
        bool,
        typer.Option(
            "--allow-missing", help="Go on when archived versions are missing (their data goes)."
        ),
    ] = False,
) -> None:
    """Recreate validated, processed and the serving store from every archived version.

    Refuses (and changes nothing) when a processed version is missing from the archive,
    unless --allow-missing.

    Example: music-etl rebuild --lake ./lake
    """
    from music_etl.pipeline.rebuild import rebuild as rebuild_lake

    settings = _settings(lake, engine, config)
    try:
        with render.RichProgress() as progress:
            report = render.guard(
                lambda: rebuild_lake(settings, progress, allow_missing=allow_missing)
            )
    except KeyboardInterrupt:
        render.interrupted(settings.lease_seconds)
    render.run_summary(report)
    if report.rejected_input:
        raise typer.Exit(EXIT_FAILED_FILES)


@app.command()
def retry(
    keys: Annotated[
        list[str] | None,
        typer.Argument(help="Failed files, as `status` names them (default: every failed file)."),
    ] = None,
    lake: Lake = None,
    config: Config = None,
) -> None:
    """Let the next run process failed files again, once their cause is fixed.

    Done and claimed files are left as they are; a key the ledger does not know exits 2.

    Example: music-etl retry --lake ./lake raw/streams/streams_0001.csv
    """
    from music_etl.pipeline.retry import retry as retry_files

    settings = _settings(lake, config=config)
    render.retry_summary(render.guard(lambda: retry_files(settings, keys or [])))


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
app.command(name="serve")(serve.serve)


def main() -> None:
    """Entry point of the `music-etl` command."""
    app()
