"""`BatchWriteItem` in chunks of 25, resending unprocessed items with backoff and jitter.

boto3's `batch_writer` resends `UnprocessedItems` at once, which under throttling only
adds load; this loop waits `uniform(0, min(cap, base * 2**attempt))` seconds first
("full jitter"), and treats throttling errors that outlived botocore's retries the same.

DynamoDB refuses a whole `BatchWriteItem` when one item in it is invalid
(`ValidationException`). Given `on_rejected`, such a chunk is resent one request at a
time and each request DynamoDB refuses is handed to `on_rejected` with the reason; the
others are written. Throttling and 5xx answers are retried, never handed over.

Example:
    >>> batch_write(client, "dev-DailyGenreKPIs", [put_request(item)])  # doctest: +SKIP
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from music_etl.adapters.aws.codec import encode
from music_etl.adapters.aws.errors import error_code, is_transient, translated
from music_etl.errors import ServiceUnavailable

#: DynamoDB's limit of requests per `BatchWriteItem`.
BATCH_SIZE = 25


@dataclass(frozen=True, kw_only=True)
class Backoff:
    """Exponential backoff with full jitter for our own retry loops."""

    base: float = 0.05
    """Seconds of the first wait's upper bound."""
    cap: float = 5.0
    """No wait is longer than this."""
    attempts: int = 10
    """Calls per chunk before giving up with `ServiceUnavailable`."""
    sleep: Callable[[float], None] = time.sleep
    rng: random.Random = field(default_factory=random.Random)

    def wait(self, attempt: int) -> None:
        """Sleep before retry number `attempt` (0 for the first retry)."""
        self.sleep(self.rng.uniform(0, min(self.cap, self.base * 2**attempt)))


def put_request(item: Mapping[str, Any]) -> dict[str, Any]:
    """A `PutRequest` for a plain item."""
    return {"PutRequest": {"Item": encode(item)}}


def delete_request(key: Mapping[str, Any]) -> dict[str, Any]:
    """A `DeleteRequest` for a plain key."""
    return {"DeleteRequest": {"Key": encode(key)}}


#: Called with a request DynamoDB refused and its reason.
OnRejected = Callable[[dict[str, Any], str], None]
_INVALID = "ValidationException"


class _ChunkRefused(Exception):
    """DynamoDB refused a whole chunk because of some invalid request in it."""


def batch_write(
    client: Any,
    table: str,
    requests: Sequence[dict[str, Any]],
    backoff: Backoff | None = None,
    *,
    on_rejected: OnRejected | None = None,
) -> None:
    """Send every request to `table`; raises `ServiceUnavailable` if some never go through.

    Without `on_rejected`, a request DynamoDB refuses fails the write (`ServiceError`).
    """
    policy = backoff or Backoff()
    for chunk in _chunks(requests, BATCH_SIZE):
        if on_rejected is None:
            _write_chunk(client, table, chunk, policy, lenient=False)
            continue
        try:
            _write_chunk(client, table, chunk, policy, lenient=True)
        except _ChunkRefused:
            _write_singly(client, table, chunk, on_rejected)


def _write_singly(
    client: Any, table: str, chunk: list[dict[str, Any]], on_rejected: OnRejected
) -> None:
    """Send each request alone; hand the ones DynamoDB refuses to `on_rejected`."""
    from botocore.exceptions import ClientError

    for request in chunk:
        with translated(f"Writing to the DynamoDB table {table}"):
            try:
                if "PutRequest" in request:
                    client.put_item(TableName=table, Item=request["PutRequest"]["Item"])
                else:
                    client.delete_item(TableName=table, Key=request["DeleteRequest"]["Key"])
            except ClientError as exc:
                if error_code(exc) != _INVALID:
                    raise
                on_rejected(request, str(exc.response.get("Error", {}).get("Message", exc)))


def _write_chunk(
    client: Any, table: str, chunk: list[dict[str, Any]], policy: Backoff, *, lenient: bool
) -> None:
    """Write `chunk`; `lenient`: a `ValidationException` raises `_ChunkRefused`."""
    pending: dict[str, Any] = {table: chunk}
    for attempt in range(policy.attempts):
        if attempt:
            policy.wait(attempt - 1)
        pending = _send(client, table, pending, lenient=lenient)
        if not pending:
            return
    left = len(pending.get(table, []))
    raise ServiceUnavailable(
        f"Writing to the DynamoDB table {table}: {left} item(s) still unprocessed after "
        f"{policy.attempts} attempts (throttled); try again later."
    )


def _send(client: Any, table: str, pending: dict[str, Any], *, lenient: bool) -> dict[str, Any]:
    """One `BatchWriteItem`; what is left to send (all of it after a transient error)."""
    from botocore.exceptions import ClientError

    with translated(f"Writing to the DynamoDB table {table}"):
        try:
            response = client.batch_write_item(RequestItems=pending)
        except ClientError as exc:
            if is_transient(exc):
                return pending
            if lenient and error_code(exc) == _INVALID:
                raise _ChunkRefused from exc
            raise
    unprocessed: dict[str, Any] = response.get("UnprocessedItems") or {}
    return unprocessed


def _chunks(items: Sequence[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    for start in range(0, len(items), size):
        yield list(items[start : start + size])
