"""One error root for the whole package, marked retryable or terminal.

The Airflow and Glue wrappers retry `Retryable` errors and fail fast on `Terminal` ones.
"""

from __future__ import annotations


class MusicEtlError(Exception):
    """Base of every error this package raises on purpose."""


class Retryable(MusicEtlError):
    """Trying again later may succeed (a lock held elsewhere, a throttled service)."""


class Terminal(MusicEtlError):
    """Trying again will fail the same way until someone changes the input or settings."""


class ConfigError(Terminal):
    """A setting is missing or malformed."""


class StorageError(Terminal):
    """The lake cannot be read or written as asked."""


class UnreadableFile(StorageError):
    """A derived lake file (validated/, processed/, bad-records/) cannot be read.

    Derived files are a pure function of the archive, so `rebuild` recreates them.
    """

    def __init__(self, key: str, lake: str) -> None:
        super().__init__(
            f"Cannot read {key} in the lake {lake} (truncated or corrupt Parquet): "
            f"`music-etl rebuild --lake {lake}` recreates it from the archive."
        )
        self.key = key


class NotALake(ConfigError):
    """The lake path names no lake (a typo, or a folder `init` never made a lake)."""


class DimensionError(Terminal):
    """`users.csv` or `songs.csv` is missing or unusable."""


class LockHeld(Retryable):
    """Another runner holds the lake's lock."""


class ClaimLost(Retryable):
    """Another runner took over a file this runner had claimed."""


class ServiceUnavailable(Retryable):
    """A cloud service throttled or failed transiently, and its retries ran out."""


class ServiceError(Terminal):
    """A cloud service refused a request in a way that retrying will not fix."""
