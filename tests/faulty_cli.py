"""Run the real `music-etl` CLI with one adapter wrapped in `adapters.faults.Faulty`.

Usage: python tests/faulty_cli.py ADAPTER METHOD NTH DELAY PREFIX -- music-etl arguments…

ADAPTER is `storage` or `serving`; DELAY 0 raises `InjectedFault` on the NTH matching
call, DELAY > 0 only makes that call wait DELAY seconds (to interrupt a run there).
"""

from __future__ import annotations

import sys
from dataclasses import replace
from typing import Any

from music_etl.adapters.faults import Faulty
from music_etl.cli import app
from music_etl.engines.registry import make_engine
from music_etl.pipeline import components, run


def _faulty_open(adapter: str, how: dict[str, Any]) -> Any:
    opened = components.open_components

    def open_faulty(settings: Any) -> Any:
        c = opened(settings)
        if adapter == "serving":
            return replace(c, serving=Faulty(c.serving, **how))
        storage = Faulty(c.storage, **how)
        return replace(c, storage=storage, engine=make_engine(c.settings.engine, storage))

    return open_faulty


def main(argv: list[str]) -> None:
    adapter, method, nth, delay, prefix = argv[:5]
    how = {"method": method, "nth": int(nth), "delay": float(delay), "prefix": prefix}
    run.open_components = _faulty_open(adapter, how)  # type: ignore[assignment]
    sys.argv = ["music-etl", *argv[argv.index("--") + 1 :]]
    app.main()


if __name__ == "__main__":
    main(sys.argv[1:])
