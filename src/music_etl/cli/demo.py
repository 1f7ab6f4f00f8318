"""`music-etl demo`: sample data in, KPIs out, in one command."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from music_etl.adapters.storage.local import LocalStorage
from music_etl.cli import render
from music_etl.errors import ConfigError
from music_etl.pipeline.query import query
from music_etl.pipeline.run import run
from music_etl.sample.generator import generate
from music_etl.settings import load_settings

_MARKER = ".music-etl-demo"
_EXAMPLE_SQL = "SELECT * FROM daily_genre_kpis ORDER BY listen_count DESC LIMIT 5"


def run_demo(lake: str, streams: int) -> None:
    """Generate a landing zone in `lake` (a fresh folder), run the pipeline, show the results."""
    root = _fresh_folder(Path(lake))
    render.console.print(f"[bold]1.[/] Generating {streams:,} stream rows in {root}/raw/ …")
    generate(LocalStorage(root), streams=streams, files=3, days=7, seed=7)
    render.console.print("[bold]2.[/] Running the pipeline …")
    # Generated files are written atomically: no need to wait for them to settle.
    settings = load_settings(lake=str(root), settle_seconds=0)
    with render.RichProgress() as progress:
        report = run(settings, progress)
    render.run_summary(report)
    _show_top_genres(str(root))
    cli = _command()
    render.console.print(
        "\n[bold]Try next:[/]\n"
        f"  {cli} status --lake {root}\n"
        f'  {cli} query --lake {root} "{_EXAMPLE_SQL}"\n'
        f"  {cli} run --lake {root}        # again: nothing new, nothing changes\n"
        f"  {cli} generate --lake {root} --streams 20000 --files 1 --append 1"
        f" && {cli} run --lake {root}   # late data: only its days recomputed\n"
        f"  {cli} rebuild --lake {root}\n"
        f"\n[bold]See it:[/] {cli} serve --lake {root}   # then open http://127.0.0.1:8000/"
    )


def _command() -> str:
    """`music-etl` when it is on PATH, else the path this process was started as."""
    if shutil.which("music-etl"):
        return "music-etl"
    started = Path(sys.argv[0])
    return str(started) if started.name == "music-etl" else "music-etl"


def _show_top_genres(lake: str) -> None:
    latest = query(lake, "SELECT max(date) FROM top_genres").rows[0][0]
    if latest is None:
        return
    sql = f"SELECT rank, genre, listen_count FROM top_genres WHERE date = '{latest}' ORDER BY rank"
    result = query(lake, sql)
    render.top_genres([dict(zip(result.columns, r, strict=True)) for r in result.rows], str(latest))


def _fresh_folder(root: Path) -> Path:
    root = root.expanduser().resolve()
    if root.exists() and any(root.iterdir()):
        if not (root / _MARKER).exists():
            raise ConfigError(f"{root} is not empty and not a demo lake: pass another --lake.")
        shutil.rmtree(root)
    root.mkdir(parents=True, exist_ok=True)
    (root / _MARKER).write_text("made by music-etl demo; deleted by the next demo\n")
    return root
