"""`music-etl serve`: a read-only JSON API (and the dashboard page) over a lake.

Needs the `serve` extra (Starlette and uvicorn): `pip install 'music-streaming-etl[serve]'`.
"""

from __future__ import annotations

from music_etl.serve.app import create_app
from music_etl.serve.sources import Sources, open_sources

__all__ = ["Sources", "create_app", "open_sources"]
