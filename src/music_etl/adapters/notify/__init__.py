"""Notifiers, chosen by the `notifier` setting.

| setting | notifier |
|---|---|
| `""` | none (the log and the ledger only) |
| `sns://arn:aws:sns:<region>:<account>:<topic>` | `SNSNotifier` |
| `https://hooks.slack.com/…` (any http(s) URL) | `WebhookNotifier` |
"""

from __future__ import annotations

from music_etl.adapters.notify.base import Notification, Notifier
from music_etl.errors import ConfigError, redact_url

__all__ = ["Notification", "Notifier", "open_notifier"]

SNS_SCHEME = "sns://"


def open_notifier(url: str, *, endpoint: str = "") -> Notifier | None:
    """The notifier `url` names, or None for an empty URL.

    `endpoint` overrides the SNS endpoint (moto, LocalStack).

    Example:
        >>> open_notifier("") is None
        True
    """
    if not url:
        return None
    if url.startswith(SNS_SCHEME):
        from music_etl.adapters.notify.sns import SNSNotifier

        return SNSNotifier(url.removeprefix(SNS_SCHEME), endpoint=endpoint)
    if url.startswith(("https://", "http://")):
        from music_etl.adapters.notify.webhook import WebhookNotifier

        return WebhookNotifier(url)
    raise ConfigError(
        f"Unsupported notifier {redact_url(url)!r}: use "
        "sns://arn:aws:sns:<region>:<account>:<topic>, "
        "an https:// webhook URL, or leave it empty."
    )
