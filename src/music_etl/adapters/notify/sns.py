"""`SNSNotifier`: publish to an SNS topic (`notifier = "sns://arn:aws:sns:…"`).

Example:
    >>> SNSNotifier("arn:aws:sns:eu-west-1:123456789012:music-etl-failures")  # doctest: +SKIP
"""

from __future__ import annotations

import json
from typing import Any

from music_etl.adapters.aws.errors import translated
from music_etl.adapters.aws.session import make_client
from music_etl.adapters.notify.base import Notification
from music_etl.errors import ConfigError

_ARN_PARTS = 6


def topic_region(topic_arn: str) -> str:
    """The region of `arn:aws:sns:<region>:<account>:<topic>`.

    Example:
        >>> topic_region("arn:aws:sns:eu-west-1:123456789012:failures")
        'eu-west-1'
    """
    parts = topic_arn.split(":")
    if len(parts) != _ARN_PARTS or parts[0] != "arn" or parts[2] != "sns" or not all(parts[3:]):
        raise ConfigError(
            f"Expected an SNS topic ARN like sns://arn:aws:sns:eu-west-1:123456789012:topic, "
            f"got {topic_arn!r}."
        )
    return parts[3]


class SNSNotifier:
    """Publishes each notification to one SNS topic: subject, text, then the details as JSON."""

    def __init__(self, topic_arn: str, *, endpoint: str = "") -> None:
        self.topic_arn = topic_arn
        self.client: Any = make_client("sns", endpoint=endpoint, region=topic_region(topic_arn))

    def send(self, notification: Notification) -> None:
        """Publish `notification`: the text, then its details as indented JSON."""
        body = notification.text
        if notification.details:
            body += "\n\n" + json.dumps(notification.details, indent=2, sort_keys=True)
        with translated(f"Publishing to the SNS topic {self.topic_arn}"):
            self.client.publish(
                TopicArn=self.topic_arn, Subject=notification.short_subject, Message=body
            )

    def describe(self) -> str:
        """The topic ARN."""
        return f"sns://{self.topic_arn}"

    def close(self) -> None:
        """Close the client's connections."""
        self.client.close()
