"""Per-day pointers: which copy of a day in the serving tables is live (`docs/aws.md`).

A load of day `D` writes its items under the partition `D#<version>`, then flips the
day's pointer item (table `DailyGenreKPIs`, partition `__day__`, sort key `D`) to that
version in one transaction with every other day of the load. Attributes of a pointer:

- `live`: the version whose partition holds the day; absent for a day loaded before
  pointers existed (its plain partition `D` is live);
- `ranked`: how many `TopGenresPerDay` items the live copy has (`days()` lists the days
  with some), `skipped`: how many items its load skipped, `loaded_at`;
- `pending`: versions being written (a load records its version here before writing, so a
  crash leaves a name to sweep, never an orphan nobody knows of);
- `retired`: versions no longer live, kept for readers still on them until the next load
  of the day deletes them; `copied`: the version last copied into the plain partition.

Example:
    >>> pointers = Pointers(client, "dev-DailyGenreKPIs")  # doctest: +SKIP
    >>> pointers.get(["2024-06-01"])["2024-06-01"].partition  # doctest: +SKIP
    '2024-06-01#0000001733077600000000000-1f3a9c'
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from music_etl.adapters.aws.codec import decode, encode
from music_etl.adapters.aws.errors import CONDITION_FAILED, error_code, translated
from music_etl.errors import LoadConflict

POINTER_PARTITION = "__day__"
#: The pointer partition's item saying every pre-pointer day has a pointer (`adopt`).
MIGRATED = "__migrated__"
SEPARATOR = "#"
#: DynamoDB's limits: items per `TransactWriteItems` and keys per `BatchGetItem`.
TRANSACTION_ITEMS = 100
BATCH_GET_KEYS = 100
_NAMES = {
    "#live": "live",
    "#ranked": "ranked",
    "#skipped": "skipped",
    "#pending": "pending",
    "#retired": "retired",
    "#copied": "copied",
    "#loaded": "loaded_at",
}
_CANCELLED = "TransactionCanceledException"


def new_version() -> str:
    """A fresh version name: sortable by creation time, unique across loaders."""
    return f"{time.time_ns():020d}-{uuid.uuid4().hex[:6]}"


def version_partition(day: str, version: str) -> str:
    """The partition holding `day` as loaded under `version`."""
    return f"{day}{SEPARATOR}{version}"


def split_partition(partition: str) -> tuple[str, str]:
    """(day, version) of a partition; version '' for a plain day partition."""
    day, _, version = partition.partition(SEPARATOR)
    return day, version


@dataclass(frozen=True, kw_only=True)
class Pointer:
    """One day's pointer item as read (all defaults: no pointer item)."""

    day: str
    live: str = ""
    ranked: int = 0
    skipped: int = 0
    pending: frozenset[str] = field(default_factory=frozenset)
    retired: frozenset[str] = field(default_factory=frozenset)
    copied: str = ""
    exists: bool = False
    """Whether the pointer item exists at all."""

    @property
    def partition(self) -> str:
        """Where the live copy of the day is: its version partition, or the plain one."""
        return version_partition(self.day, self.live) if self.live else self.day

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> Pointer:
        """A pointer from its decoded item."""
        return cls(
            day=str(item["genre"]),
            live=str(item.get("live", "")),
            ranked=int(item.get("ranked", 0)),
            skipped=int(item.get("skipped", 0)),
            pending=frozenset(item.get("pending", ())),
            retired=frozenset(item.get("retired", ())),
            copied=str(item.get("copied", "")),
            exists=True,
        )


@dataclass(frozen=True, kw_only=True)
class Flip:
    """What one day's pointer becomes when its load commits."""

    day: str
    version: str
    old: str
    """The live version the loader read ('' when none): the flip's condition."""
    ranked: int
    skipped: int


class Pointers:
    """The pointer items of one `DailyGenreKPIs` table."""

    def __init__(self, client: Any, table: str) -> None:
        self.client = client
        self.table = table

    def get(self, days: Sequence[str]) -> dict[str, Pointer]:
        """The pointers of `days` (strongly consistent); a default one where none exists."""
        found = {day: Pointer(day=day) for day in days}
        for item in self._batch_get(list(dict.fromkeys(days))):
            pointer = Pointer.from_item(item)
            found[pointer.day] = pointer
        return found

    def all(self) -> tuple[dict[str, Pointer], bool]:
        """Every pointer (one `Query`), and whether pre-pointer days were adopted."""
        pages = self.client.get_paginator("query").paginate(
            TableName=self.table,
            KeyConditionExpression="#d = :p",
            ExpressionAttributeNames={"#d": "date"},
            ExpressionAttributeValues=encode({":p": POINTER_PARTITION}),
            ConsistentRead=True,
        )
        found: dict[str, Pointer] = {}
        with translated(f"Reading the day pointers of the DynamoDB table {self.table}"):
            for page in pages:
                for item in page.get("Items", []):
                    pointer = Pointer.from_item(decode(item))
                    found[pointer.day] = pointer
        migrated = found.pop(MIGRATED, None) is not None
        return found, migrated

    def adopt(self, ranked: dict[str, int]) -> None:
        """Give each pre-pointer day (plain partition, `ranked` items) a pointer; mark it done."""
        for day, count in ranked.items():
            self._update(day, "SET #ranked = if_not_exists(#ranked, :n)", {":n": count})
        self._update(MIGRATED, "SET #loaded = :t", {":t": _now()})

    def intend(self, day: str, version: str) -> None:
        """Record that `version` of `day` is being written (before any of its items)."""
        self._update(day, "ADD #pending :v", {":v": {version}})

    def retire(self, day: str, version: str) -> bool:
        """Move a version that is not live from `pending` to `retired`; False if it is live."""
        return self._update(
            day,
            "DELETE #pending :vs ADD #retired :vs",
            {":vs": {version}, ":v": version},
            condition="attribute_not_exists(#live) OR #live <> :v",
        )

    def forget(self, day: str, version: str) -> None:
        """Drop a retired version whose items are deleted."""
        self._update(day, "DELETE #retired :vs", {":vs": {version}})

    def mark_copied(self, day: str, version: str) -> bool:
        """Record that the plain partition holds `version`; False if another load flipped."""
        return self._update(day, "SET #copied = :v", {":v": version}, condition="#live = :v")

    def flip(self, flips: Sequence[Flip], token: dict[str, Any]) -> None:
        """Make every flip's version live, and write `token`, in one transaction per 99 days.

        Raises `LoadConflict` when another loader changed one of the pointers first.
        """
        step = TRANSACTION_ITEMS - 1
        for start in range(0, len(flips), step):
            chunk = flips[start : start + step]
            actions = [self._flip_action(each) for each in chunk]
            actions.append({"Put": {"TableName": self.table, "Item": encode(token)}})
            self._transact(chunk, actions)

    def _transact(self, chunk: Sequence[Flip], actions: list[dict[str, Any]]) -> None:
        from botocore.exceptions import ClientError

        with translated(f"Switching days to their new copies in {self.table}"):
            try:
                self.client.transact_write_items(TransactItems=actions)
            except ClientError as exc:
                if error_code(exc) != _CANCELLED:
                    raise
                if self._landed(chunk):  # a retry of our own transaction that had landed
                    return
                days = ", ".join(each.day for each in chunk)
                raise LoadConflict(
                    f"Another load changed the serving store's days ({days}) in "
                    f"{self.table} while this one wrote them; run again to load fresh data."
                ) from exc

    def _landed(self, chunk: Sequence[Flip]) -> bool:
        now = self.get([each.day for each in chunk])
        return all(now[each.day].live == each.version for each in chunk)

    def _flip_action(self, flip: Flip) -> dict[str, Any]:
        expression = "SET #live = :v, #ranked = :n, #skipped = :s, #loaded = :t DELETE #pending :vs"
        values: dict[str, Any] = {
            ":v": flip.version,
            ":vs": {flip.version},
            ":n": flip.ranked,
            ":s": flip.skipped,
            ":t": _now(),
        }
        condition = "contains(#pending, :v) AND "
        if flip.old:
            expression += " ADD #retired :olds"
            values |= {":old": flip.old, ":olds": {flip.old}}
            condition += "#live = :old"
        else:
            condition += "attribute_not_exists(#live)"
        return {
            "Update": {
                "TableName": self.table,
                "Key": encode(_key(flip.day)),
                "UpdateExpression": expression,
                "ConditionExpression": condition,
                "ExpressionAttributeNames": _used(expression + condition),
                "ExpressionAttributeValues": encode(values),
            }
        }

    def _update(
        self, day: str, expression: str, values: dict[str, Any], *, condition: str = ""
    ) -> bool:
        """One `UpdateItem` on `day`'s pointer; False when its condition failed."""
        from botocore.exceptions import ClientError

        options = {"ConditionExpression": condition} if condition else {}
        with translated(f"Updating the pointer of {day} in {self.table}"):
            try:
                self.client.update_item(
                    TableName=self.table,
                    Key=encode(_key(day)),
                    UpdateExpression=expression,
                    ExpressionAttributeNames=_used(expression + condition),
                    ExpressionAttributeValues=encode(values),
                    **options,
                )
            except ClientError as exc:
                if error_code(exc) != CONDITION_FAILED:
                    raise
                return False
        return True

    def _batch_get(self, days: list[str]) -> Iterator[dict[str, Any]]:
        for start in range(0, len(days), BATCH_GET_KEYS):
            keys = [encode(_key(day)) for day in days[start : start + BATCH_GET_KEYS]]
            request: dict[str, Any] = {self.table: {"Keys": keys, "ConsistentRead": True}}
            while request:
                with translated(f"Reading the day pointers of the DynamoDB table {self.table}"):
                    answer = self.client.batch_get_item(RequestItems=request)
                for item in answer.get("Responses", {}).get(self.table, []):
                    yield decode(item)
                request = answer.get("UnprocessedKeys") or {}
                if request:
                    time.sleep(0.05)


def _key(day: str) -> dict[str, str]:
    return {"date": POINTER_PARTITION, "genre": day}


def _used(expression: str) -> dict[str, str]:
    """The attribute names an expression uses (DynamoDB refuses unused ones)."""
    return {k: v for k, v in _NAMES.items() if k in expression}


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
