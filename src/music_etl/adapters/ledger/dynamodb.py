"""`ProcessedStreams` in DynamoDB: every claim and status change is a conditional write.

One table, partition key `file_key`. Besides one item per stream file it holds the lake
lock (`__lock__#<name>`), finished runs (`__run__#<run id>`) and a counter (`__seq__`)
that orders the records like SQLite's `seq`.

A claim reads the record, applies `is_claimable` (which also frees claims of dead
processes on this host), then writes on the condition that the record is still the
version it read (its `seq`), so of two runners only one wins. `save` writes on the
condition that the caller still owns the claim; `mark_retryable` on the condition that
the failed record is still the version it read. When botocore retries a conditional
write whose first attempt landed, the retry's condition fails; the ledger then reads
the item back and recognises its own write.

Example:
    >>> ledger = DynamoDBLedger("dynamodb://?region=eu-west-1")  # doctest: +SKIP
    >>> ledger.claim("raw/streams/a.csv", "9f86d0…", new_owner(), 900)  # doctest: +SKIP
    True
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, fields, replace
from typing import Any

from music_etl.adapters.aws.batch import batch_write, delete_request
from music_etl.adapters.aws.codec import decode, encode
from music_etl.adapters.aws.errors import CONDITION_FAILED, error_code, translated
from music_etl.adapters.aws.session import make_client, parse_dynamodb_url
from music_etl.adapters.aws.tables import LEDGER_TABLE
from music_etl.adapters.ledger.base import (
    CLAIMED,
    FAILED,
    FileRecord,
    FileStatus,
    RunRecord,
    RunStatus,
    is_claimable,
    lock_is_free,
    utcnow,
)
from music_etl.errors import ClaimLost

KEY = "file_key"
LOCK_PREFIX = "__lock__#"
RUN_PREFIX = "__run__#"
SEQ_KEY = "__seq__"
#: Keys of items that are not stream files (those all start with `raw/`).
_INTERNAL = "__"
#: How long `version()` holds: DynamoDB has no cheap change token (the `__seq__` counter
#: misses deletes, runs and locks), so answers kept by `serve` are at most this stale.
VERSION_SECONDS = 10.0
_FILE_FIELDS = tuple(f.name for f in fields(FileRecord))
_RUN_FIELDS = tuple(f.name for f in fields(RunRecord))
#: A condition expression and its placeholder values (DynamoDB attribute values).
Condition = tuple[str, dict[str, Any]]


class DynamoDBLedger:
    """The ledger in one DynamoDB table, safe for runners on any number of hosts."""

    def __init__(self, url: str, *, endpoint: str = "", client: Any = None) -> None:
        self.target = parse_dynamodb_url(url, endpoint=endpoint)
        self.table = self.target.table(LEDGER_TABLE)
        self.client: Any = client or make_client(
            "dynamodb", endpoint=self.target.endpoint, region=self.target.region
        )
        """The boto3 DynamoDB client (tests hook its events to inject faults)."""
        self._nonce = uuid.uuid4().hex[:12]

    def close(self) -> None:
        """Close the client's connections."""
        self.client.close()

    def get(self, file_key: str) -> FileRecord | None:
        """The record of `file_key`, if any (a strongly consistent read)."""
        item = self._get(file_key)
        return None if item is None else _to_record(item)

    def records(self) -> list[FileRecord]:
        """Every file record in the order their status last changed."""
        items = [i for i in self._scan() if not i[KEY]["S"].startswith(_INTERNAL)]
        return [_to_record(i) for i in sorted(items, key=lambda i: int(i["seq"]["N"]))]

    def version(self) -> str:
        """A token that moves every `VERSION_SECONDS` (no read: see `VERSION_SECONDS`)."""
        return f"{self._nonce}-ttl-{int(time.monotonic() // VERSION_SECONDS)}"

    def claim(self, file_key: str, content_hash: str, owner: str, lease_seconds: int) -> bool:
        """Claim the file if `is_claimable` says so and nobody wrote it since we read it."""
        current = self._get(file_key)
        previous = None if current is None else _to_record(current)
        if not is_claimable(previous, content_hash, time.time()):
            return False
        base = previous or FileRecord(file_key=file_key, content_hash="", status=CLAIMED)
        claimed = replace(
            base,
            content_hash=content_hash,
            status=CLAIMED,
            owner=owner,
            lease_until=time.time() + lease_seconds,
            timestamp=utcnow(),
            error="",
            retryable=False,
        )
        return self._put_record(claimed, _unchanged(current))

    def save(self, record: FileRecord) -> None:
        """Write `record` if its owner still holds the claim, else raise `ClaimLost`."""
        holds = (
            "#owner = :owner AND #status = :claimed",
            encode({":owner": record.owner, ":claimed": CLAIMED}),
        )
        if not self._put_record(record, holds):
            raise ClaimLost(
                f"{record.file_key} was claimed by another runner; this runner stops on it."
            )

    def unclaim(self, file_key: str, owner: str, previous: FileRecord | None) -> None:
        """Put `previous` back (or delete the item) if `owner` still holds the claim."""
        from botocore.exceptions import ClientError

        holds = "#owner = :owner AND #status = :claimed"
        values = encode({":owner": owner, ":claimed": CLAIMED})
        if previous is not None:
            self._put_record(previous, (holds, values))
            return
        with translated(f"Releasing {file_key} in the DynamoDB table {self.table}"):
            try:
                self.client.delete_item(
                    TableName=self.table,
                    Key=encode({KEY: file_key}),
                    ConditionExpression=holds,
                    ExpressionAttributeNames={"#owner": "owner", "#status": "status"},
                    ExpressionAttributeValues=values,
                )
            except ClientError as exc:
                if error_code(exc) != CONDITION_FAILED:
                    raise

    def acquire_lock(self, name: str, owner: str, lease_seconds: int) -> bool:
        """Take or renew the lock unless another live owner holds it."""
        key = LOCK_PREFIX + name
        current = self._get(key)
        held = {} if current is None else decode(current, floats={"lease_until"})
        free = lock_is_free(owner, held.get("owner", ""), held.get("lease_until", 0.0), time.time())
        if not free:
            return False
        lock = {KEY: key, "owner": owner, "lease_until": time.time() + lease_seconds}
        if self._put_if(lock, _lock_unchanged(current)):
            return True
        latest = self._get(key)
        return latest is not None and latest.get("owner", {}).get("S") == owner

    def release_lock(self, name: str, owner: str) -> None:
        """Delete the lock if `owner` holds it."""
        from botocore.exceptions import ClientError

        with translated(f"Releasing the lock {name} in the DynamoDB table {self.table}"):
            try:
                self.client.delete_item(
                    TableName=self.table,
                    Key=encode({KEY: LOCK_PREFIX + name}),
                    ConditionExpression="#owner = :owner",
                    ExpressionAttributeNames={"#owner": "owner"},
                    ExpressionAttributeValues=encode({":owner": owner}),
                )
            except ClientError as exc:
                if error_code(exc) != CONDITION_FAILED:
                    raise

    def add_run(self, run: RunRecord) -> None:
        """Remember a finished run."""
        item = encode({KEY: RUN_PREFIX + run.run_id, **asdict(run)})
        with translated(f"Recording a run in the DynamoDB table {self.table}"):
            self.client.put_item(TableName=self.table, Item=item)

    def runs(self, limit: int) -> list[RunRecord]:
        """The latest runs, newest first."""
        items = [decode(i) for i in self._scan() if i[KEY]["S"].startswith(RUN_PREFIX)]
        runs = [_to_run(item) for item in items]
        return sorted(runs, key=lambda run: run.started, reverse=True)[:limit]

    def forget_files(self) -> None:
        """Delete every file record (locks, runs and the counter stay)."""
        keys = [i[KEY]["S"] for i in self._scan() if not i[KEY]["S"].startswith(_INTERNAL)]
        batch_write(self.client, self.table, [delete_request({KEY: k}) for k in keys])

    def mark_retryable(self, file_key: str) -> bool:
        """Mark a failed record retryable on the condition that nobody wrote it since the read."""
        current = self._get(file_key)
        record = None if current is None else _to_record(current)
        if record is None or record.status != FAILED:
            return False
        retry = replace(record, retryable=True, timestamp=utcnow())
        if self._put_record(retry, _unchanged(current)):
            return True
        latest = self.get(file_key)
        return latest is not None and latest.status == FAILED and latest.retryable

    def _put_record(self, record: FileRecord, condition: Condition) -> bool:
        """Write `record` under `condition`; True if it is now in the table."""
        item = {**asdict(record), "seq": self._next_seq()}
        if self._put_if(item, condition):
            return True
        latest = self._get(record.file_key)
        return latest is not None and _to_record(latest) == record

    def _put_if(self, item: dict[str, Any], condition: Condition) -> bool:
        """`PutItem` under `condition`; False when the condition fails."""
        from botocore.exceptions import ClientError

        expression, values = condition
        options: dict[str, Any] = {"ConditionExpression": expression}
        if names := _names(expression):
            options["ExpressionAttributeNames"] = names
        if values:
            options["ExpressionAttributeValues"] = values
        with translated(f"Writing {item[KEY]} to the DynamoDB table {self.table}"):
            try:
                self.client.put_item(TableName=self.table, Item=encode(item), **options)
            except ClientError as exc:
                if error_code(exc) == CONDITION_FAILED:
                    return False
                raise
        return True

    def _next_seq(self) -> int:
        """The next value of the table's change counter."""
        with translated(f"Counting changes in the DynamoDB table {self.table}"):
            response = self.client.update_item(
                TableName=self.table,
                Key=encode({KEY: SEQ_KEY}),
                UpdateExpression="ADD #value :one",
                ExpressionAttributeNames={"#value": "value"},
                ExpressionAttributeValues=encode({":one": 1}),
                ReturnValues="UPDATED_NEW",
            )
        return int(response["Attributes"]["value"]["N"])

    def _get(self, key: str) -> dict[str, Any] | None:
        """The raw item stored under `key`."""
        with translated(f"Reading {key} from the DynamoDB table {self.table}"):
            response = self.client.get_item(
                TableName=self.table, Key=encode({KEY: key}), ConsistentRead=True
            )
        item: dict[str, Any] | None = response.get("Item")
        return item

    def _scan(self) -> Iterator[dict[str, Any]]:
        pages = self.client.get_paginator("scan").paginate(
            TableName=self.table, ConsistentRead=True
        )
        with translated(f"Scanning the DynamoDB table {self.table}"):
            for page in pages:
                yield from page.get("Items", [])


def _unchanged(current: dict[str, Any] | None) -> Condition:
    """The item is still absent, or still the version (`seq`) that was read."""
    if current is None:
        return f"attribute_not_exists({KEY})", {}
    return "#seq = :seq", {":seq": current["seq"]}


def _lock_unchanged(current: dict[str, Any] | None) -> Condition:
    """The lock item is still absent, or still held as it was read."""
    if current is None:
        return f"attribute_not_exists({KEY})", {}
    return (
        "#owner = :held AND #lease_until = :until",
        {":held": current["owner"], ":until": current["lease_until"]},
    )


def _names(expression: str) -> dict[str, str]:
    """`#name` placeholders of `expression` (every attribute is named through one)."""
    found = {part.strip("(),") for part in expression.split() if part.startswith("#")}
    return {placeholder: placeholder[1:] for placeholder in sorted(found)}


def _to_record(item: dict[str, Any]) -> FileRecord:
    values = decode(item, floats={"lease_until"})
    values["days"] = tuple(values.get("days", ()))
    values["status"] = FileStatus(values["status"])
    return FileRecord(**{name: values[name] for name in _FILE_FIELDS if name in values})


def _to_run(item: dict[str, Any]) -> RunRecord:
    values = {name: item[name] for name in _RUN_FIELDS}
    return RunRecord(**{**values, "status": RunStatus(values["status"])})
