"""Run the pipeline on an AWS lake (settings from `MUSIC_ETL_*`) and die at a named point.

Usage: python tests/aws/aws_runner.py POINT

A crash exits with 137 through `os._exit`, as `kill -9` would: no `finally`, no lock
release, no rollback; the claims stay `claimed` by an owner that no longer runs.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import replace

from music_etl.adapters.faults import Faulty
from music_etl.engines.registry import make_engine
from music_etl.logic import layout
from music_etl.pipeline.components import Components, open_components
from music_etl.pipeline.progress import Silent
from music_etl.pipeline.run import run_with
from music_etl.settings import load_settings


def _mid_serving_load(c: Components) -> Components:
    """Die at the third `BatchWriteItem` of the load: some items written, most not."""
    serving = c.serving
    serving.client = Faulty(serving.client, method="batch_write_item", nth=3, crash=True)  # type: ignore[attr-defined]
    return c


def _mid_archive(c: Components) -> Components:
    """Die moving the second file to the archive: one archived, one done, one claimed."""
    storage = Faulty(c.storage, method="move", nth=2, prefix=layout.RAW_STREAMS, crash=True)
    return replace(c, storage=storage, engine=make_engine(c.settings.engine, storage))


POINTS: dict[str, Callable[[Components], Components]] = {
    "mid_serving_load": _mid_serving_load,
    "mid_archive": _mid_archive,
}


def main(point: str) -> int:
    """Run with the fault injected; returns only if the crash point was never reached."""
    components = POINTS[point](open_components(load_settings()))
    run_with(components, Silent())
    print(f"crash point {point} was never reached", file=sys.stderr)
    return 3


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
