"""music-streaming-etl: exactly-once ETL for music-streaming events.

Example:
    >>> from music_etl import load_settings, run
    >>> report = run(load_settings(lake="./lake"))  # doctest: +SKIP
"""

from __future__ import annotations

from music_etl._version import __version__ as __version__
from music_etl.errors import MusicEtlError, Retryable, Terminal
from music_etl.pipeline.query import query
from music_etl.pipeline.rebuild import rebuild
from music_etl.pipeline.run import RunReport, run
from music_etl.settings import Settings, load_settings

__all__ = [
    "MusicEtlError",
    "Retryable",
    "RunReport",
    "Settings",
    "Terminal",
    "load_settings",
    "query",
    "rebuild",
    "run",
]
