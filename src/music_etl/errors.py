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


class NotALake(ConfigError):
    """The lake path names no lake (a typo, or a folder `init` never made a lake)."""


class ArchiveIncomplete(Terminal):
    """`rebuild` found processed versions whose bytes are no longer in the archive."""


class DimensionError(Terminal):
    """`users.csv` or `songs.csv` is missing or unusable."""


class LockHeld(Retryable):
    """Another runner holds the lake's lock."""


class LockLost(Retryable):
    """This runner's lease on the lake lock ran out and another runner took it."""


class ClaimLost(Retryable):
    """Another runner took over a file this runner had claimed."""


class ServiceUnavailable(Retryable):
    """A cloud service throttled or failed transiently, and its retries ran out."""


class ServiceError(Terminal):
    """A cloud service refused a request in a way that retrying will not fix."""
