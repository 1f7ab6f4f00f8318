"""One error root for the whole package, marked retryable or terminal.

The Airflow and Glue wrappers retry `Retryable` errors and fail fast on `Terminal` ones.
"""

from __future__ import annotations

import errno
import re


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


class SourceChanged(StorageError):
    """An object was replaced or rewritten after it was read: it is not moved."""


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


class LoadConflict(Retryable):
    """Another load replaced the same serving-store days first; load again on fresh data."""


class ServiceUnavailable(Retryable):
    """A cloud service throttled or failed transiently, and its retries ran out."""


class ServiceError(Terminal):
    """A cloud service refused a request in a way that retrying will not fix."""


class DiskFull(Retryable):
    """The disk (or quota) holding the lake or its state is full."""


class CorruptState(Terminal):
    """A state file (the SQLite ledger or serving store) is not a readable database."""


#: Exit codes a scheduler can act on (README "Exit codes").
EXIT_OK = 0
#: An input file was rejected; what was loaded is unchanged. Fix the file, then run again.
EXIT_REJECTED = 1
#: A configuration or usage error (`Terminal`): retrying fails the same way.
EXIT_CONFIG = 2
#: Retry later (`Retryable`): a lock held, throttling, a lost lock, a full disk.
EXIT_RETRY = 3
#: Internal error: a bug. Set `MUSIC_ETL_DEBUG=1` for the traceback.
EXIT_INTERNAL = 4

_FULL = frozenset({errno.ENOSPC, errno.EDQUOT})
_READ_ONLY = frozenset({errno.EROFS, errno.EACCES, errno.EPERM})
_BUSY = frozenset({errno.EAGAIN, errno.EBUSY, errno.EINTR, errno.ETIMEDOUT, errno.ETXTBSY})


def exit_code_for(exc: BaseException) -> int:
    """The exit code that tells a scheduler what to do about `exc`.

    Example:
        >>> exit_code_for(LockHeld("busy")), exit_code_for(ConfigError("x"))
        (3, 2)
        >>> exit_code_for(KeyError("bug"))
        4
    """
    if isinstance(exc, Retryable):
        return EXIT_RETRY
    if isinstance(exc, Terminal):
        return EXIT_CONFIG
    if isinstance(exc, OSError):
        return exit_code_for(from_os_error(exc))
    return EXIT_INTERNAL


def from_os_error(exc: OSError, doing: str = "") -> MusicEtlError:
    """Our error for an `OSError`, chosen by its errno; `doing` says what failed.

    Raise it `from exc`. Example:
        >>> from_os_error(OSError(errno.ENOSPC, "No space left on device"), "Writing x")
        DiskFull('Writing x: No space left on device; free space, then run again.')
    """
    reason = exc.strerror or str(exc)
    if exc.filename:
        reason += f" ({exc.filename})"
    what = f"{doing or 'Accessing the lake'}: {reason}"
    if exc.errno in _FULL:
        return DiskFull(f"{what}; free space, then run again.")
    if exc.errno in _READ_ONLY:
        return StorageError(f"{what}; the lake must be writable: check --lake and permissions.")
    if exc.errno in _BUSY:
        return ServiceUnavailable(f"{what}; try again later.")
    if isinstance(exc, (FileNotFoundError, NotADirectoryError, IsADirectoryError)):
        return StorageError(f"{what}; check --lake and that the path is the lake's folder.")
    return StorageError(f"{what}; check the lake's disk and permissions.")


_URL = re.compile(
    r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://(?P<user>[^/\s@'\"]*@)?"
    r"(?P<host>[^/\s?#'\"]*)(?P<rest>[^\s'\"]*)"
)
_SECRET_PATH_SCHEMES = frozenset({"http", "https"})


def redact(text: str) -> str:
    """`text` without credentials: no `user:password@` in any URL, no http(s) path or query.

    A webhook's path is its secret; S3 and file paths are kept.

    Example:
        >>> redact("POST https://u:p@hooks.slack.com/services/T0/B0/XYZ?x=1 failed")
        'POST https://hooks.slack.com/… failed'
        >>> redact("s3://bucket/lake")
        's3://bucket/lake'
    """

    def clean(match: re.Match[str]) -> str:
        rest = match["rest"]
        if match["scheme"].lower() in _SECRET_PATH_SCHEMES and rest not in {"", "/"}:
            rest = "/…"
        return f"{match['scheme']}://{match['host']}{rest}"

    return _URL.sub(clean, text)


def redact_url(value: str) -> str:
    """A URL-like setting as safe to show, even mistyped: scheme and host, no path, no `user@`.

    Example:
        >>> redact_url("htp://user:pw@hooks.example.com/services/XYZ")
        'htp://hooks.example.com/…'
        >>> redact_url("htp:/hooks.example.com/services/XYZ"), redact_url("slack")
        ('htp:/…', 'slack')
    """
    scheme, sep, rest = value.partition("://")
    if not sep:
        scheme, rest = "", value
    head, slash, _ = rest.partition("/")
    shown = head.rpartition("@")[2] + ("/…" if slash else "")
    return f"{scheme}{sep}{shown}"
