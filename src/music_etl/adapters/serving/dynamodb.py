"""The serving store in DynamoDB: `DailyGenreKPIs`, `TopSongsPerGenre`, `TopGenresPerDay`.

A reader never sees a day half replaced (`docs/aws.md`, "Loading a day"). A load of the
days `D…` records its version on each day's pointer item (`DailyGenreKPIs`, partition
`__day__`, sort key `D`, see `adapters/aws/dayswap.py`), writes the items under the
partition `D#<version>` (same tables, same sort keys), then flips every day's pointer to
the new version in one transaction that also rewrites the version item `__version__`
(two loaders of a day: the second flip fails, `LoadConflict`, retryable). The store's
readers (`read`, `scan`, `days`, `flagged_days`) follow the pointers. After the flip the
load copies the new items into the plain partition `D` (put, then delete the stale
keys), so a plain `GetItem`/`Query` on the seed's keys returns the day; only plain
readers can see a mix, during that copy. The next load of a day deletes the copies that
are not live: a crashed load's (before its flip) and the one retired by the last flip.
A day loaded before pointers existed is read from its plain partition; the first load by
this code gives every such day a pointer (`__day__`/`__migrated__` says it is done).

An item DynamoDB cannot store (a missing or empty key, a NaN, over 400 KB, anything it
answers `ValidationException` to) is skipped, logged with its key and reason, and the
rest of the day is written; the new copy simply lacks it. A day with skipped items is
flagged on its pointer (`skipped`, in the flip) and, for plain readers, by a marker item
in `DailyGenreKPIs` under the partition `__load__` (sort key: the day; `skipped`,
`issues`, `loaded_at`), which a clean reload removes. A plain `Query` on a date never
sees pointers, markers or versioned copies; `scan` returns the live copies only.

Example:
    >>> store = DynamoDBServingStore("dynamodb://?region=eu-west-1&prefix=dev-")  # doctest: +SKIP
    >>> store.scan("TopGenresPerDay")[0]  # doctest: +SKIP
    {'date': '2024-06-01', 'rank': 1, 'genre': 'pop', 'listen_count': 1234}
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from music_etl.adapters.aws.batch import Backoff, batch_write, delete_request, put_request
from music_etl.adapters.aws.codec import decode, encode
from music_etl.adapters.aws.dayswap import (
    MIGRATED,
    SEPARATOR,
    Flip,
    Pointer,
    Pointers,
    new_version,
    split_partition,
    version_partition,
)
from music_etl.adapters.aws.errors import translated
from music_etl.adapters.aws.items import item_problem
from music_etl.adapters.aws.session import make_client, parse_dynamodb_url
from music_etl.adapters.serving.base import SkippedItem
from music_etl.errors import LoadConflict
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

    @property
    def pointers(self) -> Pointers:
        """The per-day pointer items (on the current `client`)."""
        return Pointers(self.client, self.target.table(MARKER_TABLE))

    def replace_days(self, days: Sequence[str], items: dict[str, list[dict[str, Any]]]) -> None:
        """Make each of `days` hold exactly its `items` in every table; skip what cannot be.

        Writes a new copy of each day, flips the days' pointers to it in one transaction,
        then copies it into the plain partitions. Raises `LoadConflict` (retryable) when
        another load flipped one of the days first.
        """
        wanted = [day for day in dict.fromkeys(days) if not _internal(day)]
        self.last_skipped = []
        if not wanted:
            return
        version = new_version()
        before = self._prepare(wanted, version)
        written, skipped = self._write_version(wanted, version, items)
        flips = [
            Flip(
                day=day,
                version=version,
                old=before[day].live,
                ranked=sum(r["date"] == day for r in written[TOP_GENRES_PER_DAY]),
                skipped=sum(s.day == day for s in skipped),
            )
            for day in wanted
        ]
        try:
            self.pointers.flip(flips, {**VERSION_KEY, "token": version})
        except LoadConflict:
            for day in wanted:  # the copy may have been written after a rival swept it
                self._drop(day, version)
            raise
        self._publish(wanted, version, written)
        self._mark(wanted, skipped)
        self.last_skipped = skipped

    def flagged_days(self) -> dict[str, int]:
        """Every day whose live copy was loaded with skipped items: day -> how many."""
        pointers, _ = self.pointers.all()
        flagged = {day: p.skipped for day, p in pointers.items() if p.live and p.skipped}
        for item in self._query(MARKER_TABLE, MARKER_PARTITION, "flagged days"):
            day = str(item["genre"])
            if not pointers.get(day, Pointer(day=day)).live:  # loaded before pointers
                flagged[day] = int(item["skipped"])
        return dict(sorted(flagged.items()))

    def scan(self, table: str) -> list[dict[str, Any]]:
        """The live copy of every day of `table`, ordered by key (no bookkeeping items)."""
        pk, sk = SERVING_KEYS[table]
        pointers, _ = self.pointers.all()
        rows = []
        for item in self._scan(table):
            row = decode(item, floats=FLOAT_ATTRIBUTES)
            day, version = split_partition(row[pk])
            if not _internal(day) and version == pointers.get(day, Pointer(day=day)).live:
                rows.append({**row, pk: day})
        return sorted(rows, key=lambda row: (row[pk], row[sk]))

    def days(self) -> list[str]:
        """Every day with a `TopGenresPerDay` item, ascending: one `Query` of the pointers.

        A store with days loaded before pointers existed and not yet adopted by a load
        also needs a key-only scan of `TopGenresPerDay`.
        """
        pointers, migrated = self.pointers.all()
        found = {day for day, p in pointers.items() if p.ranked > 0}
        if not migrated:
            plain = self._plain_days()
            found |= {d for d in plain if not pointers.get(d, Pointer(day=d)).live}
        return sorted(found)

    def read(
        self, table: str, days: Sequence[str], *, sort_key: str | int | None = None
    ) -> list[dict[str, Any]]:
        """The live items of `table` on `days`: their pointers, then one `Query` per day."""
        pk, sk = SERVING_KEYS[table]
        wanted = sorted(day for day in set(days) if not _internal(day))
        live = self.pointers.get(wanted) if wanted else {}
        rows: list[dict[str, Any]] = []
        for day in wanted:
            partition = live[day].partition
            for item in self._query(table, partition, f"Reading {day}", sort_key=sort_key):
                floats = {k: float(item[k]) for k in FLOAT_ATTRIBUTES & item.keys()}
                rows.append({**item, **floats, pk: day})
        return sorted(rows, key=lambda row: (row[pk], row[sk]))

    def version(self) -> str:
        """The token of the version item, which every load's flip writes."""
        name = self.target.table(MARKER_TABLE)
        with translated(f"Reading the version item of {name}"):
            answer = self.client.get_item(
                TableName=name, Key=encode(VERSION_KEY), ConsistentRead=True
            )
        return str(decode(answer.get("Item", {})).get("token", "empty"))

    # ----------------------------------------------------------------------- loading

    def _prepare(self, days: list[str], version: str) -> dict[str, Pointer]:
        """Read the days' pointers, adopt pre-pointer days once, sweep, record the intent."""
        pointers = self.pointers
        found = pointers.get([*days, MIGRATED])
        if not found.pop(MIGRATED).exists:
            pointers.adopt(self._plain_days())
        for day in days:
            self._sweep(day, found[day])
            pointers.intend(day, version)
        return found

    def _sweep(self, day: str, pointer: Pointer) -> None:
        """Delete the copies of `day` that are not live: crashed loads and retired ones."""
        for version in sorted(pointer.pending):
            if self.pointers.retire(day, version):
                self._drop(day, version)
        for version in sorted(pointer.retired):
            self._drop(day, version)

    def _drop(self, day: str, version: str) -> None:
        """Delete the items of one retired copy of `day`, then forget it."""
        partition = version_partition(day, version)
        for table, keys in SERVING_KEYS.items():
            found = self._query(table, partition, f"Sweeping {partition}", project=True)
            requests = [delete_request({k: item[k] for k in keys}) for item in found]
            batch_write(self.client, self.target.table(table), requests, self.backoff)
        self.pointers.forget(day, version)

    def _write_version(
        self, days: list[str], version: str, items: dict[str, list[dict[str, Any]]]
    ) -> tuple[dict[str, list[dict[str, Any]]], list[SkippedItem]]:
        """Write every storable item under its day's `version` partition."""
        written: dict[str, list[dict[str, Any]]] = {}
        skipped: list[SkippedItem] = []
        for table in SERVING_KEYS:
            good, bad = _sorted_out(table, days, items.get(table, []))
            refused = self._put_versioned(table, days, version, good)
            skipped += bad + refused
            lost = {_key_of(table, s.key) for s in refused}
            written[table] = [item for item in good if _key_of(table, item) not in lost]
        for each in skipped:
            log.warning(
                "Skipped an item of %s for %s, key %s: %s",
                self.target.table(each.table),
                each.day,
                each.key,
                each.reason,
            )
        return written, skipped

    def _put_versioned(
        self, table: str, days: list[str], version: str, good: list[dict[str, Any]]
    ) -> list[SkippedItem]:
        """Put `good` under `version`; what DynamoDB refused."""
        refused: list[SkippedItem] = []

        def on_rejected(request: dict[str, Any], reason: str) -> None:
            item = decode(request["PutRequest"]["Item"])
            item["date"] = split_partition(str(item["date"]))[0]
            refused.extend(_skipped(table, days, item, f"DynamoDB refused it: {reason}"))

        requests = [
            put_request({**item, "date": version_partition(item["date"], version)}) for item in good
        ]
        name = self.target.table(table)
        batch_write(self.client, name, requests, self.backoff, on_rejected=on_rejected)
        return refused

    def _publish(
        self, days: list[str], version: str, written: dict[str, list[dict[str, Any]]]
    ) -> None:
        """Copy the new live copies into the plain partitions, for plain `Query` readers."""
        for table, rows in written.items():
            self._copy_plain(table, days, rows)
        for day in days:
            if not self.pointers.mark_copied(day, version):
                self._recopy(day)  # another load flipped it meanwhile: copy what is live

    def _recopy(self, day: str) -> None:
        """Copy the live copy of `day`, whatever load made it, into its plain partition."""
        pointer = self.pointers.get([day])[day]
        if not pointer.live:
            return
        for table in SERVING_KEYS:
            rows = self._query(table, pointer.partition, f"Copying {day}")
            self._copy_plain(table, [day], [{**row, "date": day} for row in rows])
        self.pointers.mark_copied(day, pointer.live)

    def _copy_plain(self, table: str, days: list[str], rows: list[dict[str, Any]]) -> None:
        keys = SERVING_KEYS[table]
        keep = {_key_of(table, row) for row in rows}
        stale = [key for day in days for key in self._day_keys(table, day) if key not in keep]
        requests = [put_request(row) for row in rows]
        requests += [delete_request(dict(zip(keys, key, strict=True))) for key in stale]
        batch_write(self.client, self.target.table(table), requests, self.backoff)

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

    # ----------------------------------------------------------------------- reading

    def _plain_days(self) -> dict[str, int]:
        """Plain day partitions of `TopGenresPerDay` -> items (a key-only scan)."""
        name = self.target.table(TOP_GENRES_PER_DAY)
        pages = self.client.get_paginator("scan").paginate(
            TableName=name,
            ProjectionExpression="#d",
            ExpressionAttributeNames={"#d": "date"},
            ConsistentRead=True,
        )
        found: Counter[str] = Counter()
        with translated(f"Listing the days of the DynamoDB table {name}"):
            for page in pages:
                found.update(decode(item)["date"] for item in page.get("Items", []))
        return {day: n for day, n in found.items() if not _internal(day)}

    def _day_keys(self, table: str, day: str) -> Iterator[tuple[Any, Any]]:
        """The (partition, sort) keys `table` holds in the plain partition of `day`."""
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
    """Not a day: bookkeeping (`__load__`, `__day__`, `__version__`) or a day's copy."""
    return partition.startswith("__") or SEPARATOR in partition


def _sorted_out(
    table: str, days: Sequence[str], items: list[dict[str, Any]]
) -> tuple[list[dict[str, Any]], list[SkippedItem]]:
    """The items DynamoDB can store, and the others with the reason why not."""
    keys = SERVING_KEYS[table]
    good: list[dict[str, Any]] = []
    skipped: list[SkippedItem] = []
    for item in items:
        problem = item_problem(item, keys) or _foreign(item, days)
        if problem:
            skipped += _skipped(table, days, item, problem)
        else:
            good.append(item)
    return good, skipped


def _foreign(item: Mapping[str, Any], days: Sequence[str]) -> str:
    """Why an item is not part of the days loaded (its date is another day's)."""
    date = item.get("date")
    return "" if date in days else f"its date {date!r} is not one of the days loaded"


def _skipped(
    table: str, days: Sequence[str], item: dict[str, Any], reason: str
) -> list[SkippedItem]:
    """The skipped item, under its day; under every day loaded when its date is not one."""
    key = {name: item.get(name) for name in SERVING_KEYS[table]}
    date = item.get("date")
    owners = [date] if isinstance(date, str) and date in days else list(days)
    return [SkippedItem(table=table, day=day, key=key, reason=reason) for day in owners]


def _key_of(table: str, item: Mapping[str, Any]) -> tuple[Any, Any]:
    """The (partition, sort) key of an item of `table`."""
    pk, sk = SERVING_KEYS[table]
    return item.get(pk), item.get(sk)


def _printable(key: dict[str, Any]) -> str:
    """A key as text for the marker item (it may hold values DynamoDB cannot store)."""
    return ", ".join(f"{name}={value!r}" for name, value in key.items())
