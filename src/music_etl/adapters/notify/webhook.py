"""`WebhookNotifier`: POST `{"text": …}` to a Slack-compatible incoming webhook.

Slack, Mattermost, Rocket.Chat and Microsoft Teams' workflow webhooks accept this body.

Example:
    >>> WebhookNotifier("https://hooks.slack.com/services/T000/B000/XXXX")  # doctest: +SKIP
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from urllib.parse import urlsplit

from music_etl.adapters.notify.base import Notification
from music_etl.errors import ConfigError, ServiceError, ServiceUnavailable, redact, redact_url

#: Seconds to wait for the webhook to answer.
TIMEOUT_SECONDS = 10.0
_SERVER_ERROR = 500
_TOO_MANY_REQUESTS = 429


class WebhookNotifier:
    """Posts each notification's subject and text as one JSON `text` field."""

    def __init__(self, url: str, *, timeout: float = TIMEOUT_SECONDS) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ConfigError(f"A webhook notifier needs an http(s) URL, got {redact_url(url)!r}.")
        self.url = url
        self.timeout = timeout

    def send(self, notification: Notification) -> None:
        """POST the notification; 429 and 5xx answers are retryable, other errors are not."""
        text = f"*{slack_escape(notification.short_subject)}*\n{slack_escape(notification.text)}"
        request = urllib.request.Request(  # noqa: S310 - the scheme is checked in __init__
            self.url,
            data=json.dumps({"text": text}).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout):  # noqa: S310
                return
        except urllib.error.HTTPError as exc:
            exc.close()  # it holds the response's socket
            raise _http_error(self.describe(), exc) from exc
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            raise ServiceUnavailable(
                f"Posting to the webhook {self.describe()}: cannot reach it "
                f"({redact(str(exc))}); check the URL and the network."
            ) from exc

    def close(self) -> None:
        """Nothing to release: each `send` opens and closes its own connection."""

    def describe(self) -> str:
        """Scheme, host and port only: the path of a Slack webhook and any password are secret."""
        parts = urlsplit(self.url)
        port = f":{parts.port}" if parts.port else ""
        return f"{parts.scheme}://{parts.hostname}{port}/…"


def slack_escape(text: str) -> str:
    """`text` with Slack's control characters escaped: no `<!channel>`, no `<url|link>`.

    Example:
        >>> slack_escape("<!channel> a&b <http://x|y>")
        '&lt;!channel&gt; a&amp;b &lt;http://x|y&gt;'
    """
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _http_error(where: str, exc: urllib.error.HTTPError) -> ServiceError | ServiceUnavailable:
    reason = redact(str(exc.reason))
    message = f"Posting to the webhook {where}: it answered HTTP {exc.code} {reason}"
    if exc.code == _TOO_MANY_REQUESTS or exc.code >= _SERVER_ERROR:
        return ServiceUnavailable(message + "; try again later.")
    return ServiceError(message + "; check the webhook URL.")
