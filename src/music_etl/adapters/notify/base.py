"""The notifier contract: tell someone that files failed or a run broke.

A notifier only delivers; what to say is composed by the caller
(`music_etl.pipeline.notify` for a run's failed files, the Airflow callback for a task).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

#: SNS accepts subjects up to 100 characters.
SUBJECT_LIMIT = 100


@dataclass(frozen=True, kw_only=True)
class Notification:
    """One message: a short subject, a readable text and machine-readable details."""

    subject: str
    """One line, e.g. `music-etl: 2 of 5 files failed in s3://bucket/lake`."""
    text: str
    """The full message, one line per failed file with its reason and counts."""
    details: dict[str, object] = field(default_factory=dict)
    """The same facts as plain JSON values, for subscribers that parse them."""

    @property
    def short_subject(self) -> str:
        """The subject cut to what SNS accepts, on one line."""
        line = " ".join(self.subject.split())
        return line if len(line) <= SUBJECT_LIMIT else line[: SUBJECT_LIMIT - 1] + "…"


class Notifier(Protocol):
    """Delivers a notification or raises one of our errors."""

    def send(self, notification: Notification) -> None:
        """Deliver `notification` once; raise `ServiceUnavailable` or a `Terminal` error."""
        ...

    def describe(self) -> str:
        """Where notifications go, without secrets (a webhook's path is a credential)."""
        ...

    def close(self) -> None:
        """Release what the backend holds (connections, clients); idempotent."""
        ...
