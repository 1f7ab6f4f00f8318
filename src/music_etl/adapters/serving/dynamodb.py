"""The serving store in DynamoDB: `DailyGenreKPIs`, `TopSongsPerGenre`, `TopGenresPerDay`.

A day is replaced by putting its new items, then deleting the keys it had that the new
set lacks. DynamoDB has no transaction that large, so a reader may briefly see a day
half replaced; a crash in between leaves the day recorded in the ledger's claim, and the
next run recomputes and replaces it again.

An item DynamoDB cannot store (a missing or empty key, a NaN, over 400 KB, anything it
answers `ValidationException` to) is skipped, logged with its key and reason, and the
rest of the day is written; its key no longer holds an old value. A day with skipped
items is flagged by a marker item in `DailyGenreKPIs` under the partition `__load__`
(sort key: the day; `skipped`, `issues`, `loaded_at`), which a clean reload removes.
A plain `Query` on a date never sees a marker; `scan` leaves them out.

Example:
    >>> store = DynamoDBServingStore("dynamodb://?region=eu-west-1&prefix=dev-")  # doctest: +SKIP
    >>> store.scan("TopGenresPerDay")[0]  # doctest: +SKIP
    {'date': '2024-06-01', 'rank': 1, 'genre': 'pop', 'listen_count': 1234}
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

from music_etl.adapters.aws.batch import Backoff, batch_write, delete_request, put_request
from music_etl.adapters.aws.codec import decode, encode
from music_etl.adapters.aws.errors import translated
from music_etl.adapters.aws.items import item_problem
from music_etl.adapters.aws.session import make_client, parse_dynamodb_url
from music_etl.adapters.serving.base import SkippedItem
from music_etl.logic.contract import KPI_METRICS
from music_etl.logic.serving_model import DAILY_GENRE_KPIS, SERVING_KEYS, TOP_GENRES_PER_DAY

log = logging.getLogger(__name__)

#: Attributes stored as numbers that are floats even when integral (SQLite's REAL columns).
FLOAT_ATTRIBUTES = frozenset(m.name for m in KPI_METRICS if m.op == "ratio")
#: The table and partition holding one marker item per day loaded with skipped items.
MARKER_TABLE = DAILY_GENRE_KPIS
MARKER_PARTITION = "__load__"
#: The item whose `token` changes at every `replace_days` (partition, sort key).
VERSION_KEY = {"date": "__version__", "genre": "serving"}
#: Issues kept on a marker item (the count is always complete; the log has every one).
MARKER_ISSUES = 20


class DynamoDBServingStore:
    """The three serving tables, optionally behind a name prefix."""

    def __init__(
        self, url: str, *, endpoint: str = "", client: Any = None, backoff: Backoff | None = None
    ) -> None:
        self.target = parse_dynamodb_url(url, endpoint=endpoint)
        self.client: Any = client or make_client(
            "dynamodb", endpoint=self.target.endpoint, region=self.target.region
        )
        """The boto3 DynamoDB client (tests hook its events to inject faults)."""
        self.backoff = backoff or Backoff()
        self.last_skipped: list[SkippedItem] = []
        """What the last `replace_days` skipped."""

    def close(self) -> None:
        """Close the client's connections."""
        self.client.close()

    def replace_days(self, days: Sequence[str], items: dict[str, list[dict[str, Any]]]) -> None:
        """Make each of `days` hold exactly its `items` in every table; skip what cannot be."""
        skipped: list[SkippedItem] = []
        for table in SERVING_KEYS:
            skipped += self._replace(table, days, items.get(table, []))
        self._mark(days, skipped)
        self.last_skipped = skipped
        token = {**VERSION_KEY, "token": f"{time.time_ns()}-{uuid.uuid4().hex[:12]}"}
        with translated(f"Writing the version item of {self.target.table(MARKER_TABLE)}"):
            self.client.put_item(TableName=self.target.table(MARKER_TABLE), Item=encode(token))

    def flagged_days(self) -> dict[str, int]:
        """Every day loaded with skipped items: day -> how many were skipped."""
        return {
            item["genre"]: int(item["skipped"])
            for item in self._query(MARKER_TABLE, MARKER_PARTITION, "flagged days")
        }

    def scan(self, table: str) -> list[dict[str, Any]]:
        """Every item of `table` as plain Python values, ordered by key (no markers)."""
        pk, sk = SERVING_KEYS[table]
        rows = [decode(item, floats=FLOAT_ATTRIBUTES) for item in self._scan(table)]
        rows = [row for row in rows if not _internal(row[pk])]
        return sorted(rows, key=lambda row: (row[pk], row[sk]))

    def days(self) -> list[str]:
        """Every day with a `TopGenresPerDay` item, ascending (a key-only scan)."""
        name = self.target.table(TOP_GENRES_PER_DAY)
        pages = self.client.get_paginator("scan").paginate(
            TableName=name, ProjectionExpression="#d", ExpressionAttributeNames={"#d": "date"}
        )
        found: set[str] = set()
        with translated(f"Listing the days of the DynamoDB table {name}"):
            for page in pages:
                found.update(decode(item)["date"] for item in page.get("Items", []))
        return sorted(day for day in found if not _internal(day))

    def read(
        self, table: str, days: Sequence[str], *, sort_key: str | int | None = None
    ) -> list[dict[str, Any]]:
        """The items of `table` on `days` (one `Query` per day), ordered by key."""
        pk, sk = SERVING_KEYS[table]
        rows: list[dict[str, Any]] = []
        for day in sorted(set(days)):
            if _internal(day):
                continue
            for item in self._query(table, day, f"Reading {day}", sort_key=sort_key):
                rows.append({**item, **{k: float(item[k]) for k in FLOAT_ATTRIBUTES & item.keys()}})
        return sorted(rows, key=lambda row: (row[pk], row[sk]))

    def version(self) -> str:
        """The token of the version item, which every `replace_days` rewrites last."""
        name = self.target.table(MARKER_TABLE)
        with translated(f"Reading the version item of {name}"):
            answer = self.client.get_item(
                TableName=name, Key=encode(VERSION_KEY), ConsistentRead=True
            )
        return str(decode(answer.get("Item", {})).get("token", "empty"))

    def _replace(
        self, table: str, days: Sequence[str], items: list[dict[str, Any]]
    ) -> list[SkippedItem]:
        keys = SERVING_KEYS[table]
        good, skipped = _sorted_out(table, days, items)
        rejected: list[dict[str, Any]] = []
        keep = {(item[keys[0]], item[keys[1]]) for item in good}
        stale = [key for day in days for key in self._day_keys(table, day) if key not in keep]
        requests = [put_request(item) for item in good]
        requests += [delete_request(dict(zip(keys, key, strict=True))) for key in stale]
        name = self.target.table(table)

        def refused(request: dict[str, Any], reason: str) -> None:
            rejected.append(request)
            item = decode(request["PutRequest"]["Item"]) if "PutRequest" in request else {}
            skipped.extend(_skipped(table, days, item, f"DynamoDB refused it: {reason}"))

        batch_write(self.client, name, requests, self.backoff, on_rejected=refused)
        # A refused item's key must not keep the old value: the day is flagged, not stale.
        old = [_key_request(r, keys) for r in rejected if "PutRequest" in r]
        batch_write(self.client, name, old, self.backoff, on_rejected=lambda *_: None)
        for each in skipped:
            log.warning(
                "Skipped an item of %s for %s, key %s: %s", name, each.day, each.key, each.reason
            )
        return skipped

    def _mark(self, days: Sequence[str], skipped: list[SkippedItem]) -> None:
        """Flag the days with skipped items; clear the flag of the days loaded whole."""
        now = datetime.now(UTC).isoformat(timespec="seconds")
        requests = []
        for day in days:
            issues = [s for s in skipped if s.day == day]
            key = {"date": MARKER_PARTITION, "genre": day}
            if not issues:
                requests.append(delete_request(key))
                continue
            listed = [
                {"table": s.table, "key": _printable(s.key), "reason": s.reason}
                for s in issues[:MARKER_ISSUES]
            ]
            marker = {**key, "skipped": len(issues), "issues": listed, "loaded_at": now}
            requests.append(put_request(marker))
        batch_write(self.client, self.target.table(MARKER_TABLE), requests, self.backoff)

    def _day_keys(self, table: str, day: str) -> Iterator[tuple[Any, Any]]:
        """The (partition, sort) keys `table` holds for `day`."""
        pk, sk = SERVING_KEYS[table]
        for key in self._query(table, day, f"Reading {day}", project=True):
            yield key[pk], key[sk]

    def _query(
        self,
        table: str,
        partition: str,
        what: str,
        *,
        project: bool = False,
        sort_key: str | int | None = None,
    ) -> Iterator[dict[str, Any]]:
        pk, sk = SERVING_KEYS[table]
        name = self.target.table(table)
        options: dict[str, Any] = {"ProjectionExpression": "#pk, #sk"} if project else {}
        names = {"#pk": pk, "#sk": sk} if project or sort_key is not None else {"#pk": pk}
        condition = "#pk = :partition"
        values: dict[str, str | int] = {":partition": partition}
        if sort_key is not None:
            condition += " AND #sk = :sort"
            values[":sort"] = sort_key
        pages = self.client.get_paginator("query").paginate(
            TableName=name,
            KeyConditionExpression=condition,
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=encode(values),
            ConsistentRead=True,
            **options,
        )
        with translated(f"{what} from the DynamoDB table {name}"):
            for page in pages:
                for item in page.get("Items", []):
                    yield decode(item)

    def _scan(self, table: str) -> Iterator[dict[str, Any]]:
        name = self.target.table(table)
        pages = self.client.get_paginator("scan").paginate(TableName=name, ConsistentRead=True)
        with translated(f"Scanning the DynamoDB table {name}"):
            for page in pages:
                yield from page.get("Items", [])


def _internal(partition: str) -> bool:
    """A partition of the store's own bookkeeping (`__load__`, `__version__`), not a day."""
    return partition.startswith("__")


def _sorted_out(
    table: str, days: Sequence[str], items: list[dict[str, Any]]
) -> tuple[list[dict[str, Any]], list[SkippedItem]]:
    """The items DynamoDB can store, and the others with the reason why not."""
    keys = SERVING_KEYS[table]
    good: list[dict[str, Any]] = []
    skipped: list[SkippedItem] = []
    for item in items:
        problem = item_problem(item, keys)
        if problem:
            skipped += _skipped(table, days, item, problem)
        else:
            good.append(item)
    return good, skipped


def _skipped(
    table: str, days: Sequence[str], item: dict[str, Any], reason: str
) -> list[SkippedItem]:
    """The skipped item, under its day; under every day loaded when its date is not one."""
    key = {name: item.get(name) for name in SERVING_KEYS[table]}
    date = item.get("date")
    owners = [date] if isinstance(date, str) and date in days else list(days)
    return [SkippedItem(table=table, day=day, key=key, reason=reason) for day in owners]


def _key_request(request: dict[str, Any], keys: tuple[str, str]) -> dict[str, Any]:
    """A `DeleteRequest` for the key of a refused `PutRequest`."""
    item = request["PutRequest"]["Item"]
    return {"DeleteRequest": {"Key": {k: item[k] for k in keys}}}


def _printable(key: dict[str, Any]) -> str:
    """A key as text for the marker item (it may hold values DynamoDB cannot store)."""
    return ", ".join(f"{name}={value!r}" for name, value in key.items())
