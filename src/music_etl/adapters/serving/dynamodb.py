"""The serving store in DynamoDB: `DailyGenreKPIs`, `TopSongsPerGenre`, `TopGenresPerDay`.

A day is replaced by putting its new items, then deleting the keys it had that the new
set lacks. DynamoDB has no transaction that large, so a reader may briefly see a day
half replaced; a crash in between leaves the day recorded in the ledger's claim, and the
next run recomputes and replaces it again.

Example:
    >>> store = DynamoDBServingStore("dynamodb://?region=eu-west-1&prefix=dev-")  # doctest: +SKIP
    >>> store.scan("TopGenresPerDay")[0]  # doctest: +SKIP
    {'date': '2024-06-01', 'rank': 1, 'genre': 'pop', 'listen_count': 1234}
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from music_etl.adapters.aws.batch import Backoff, batch_write, delete_request, put_request
from music_etl.adapters.aws.codec import decode, encode
from music_etl.adapters.aws.errors import translated
from music_etl.adapters.aws.session import make_client, parse_dynamodb_url
from music_etl.logic.contract import KPI_METRICS
from music_etl.logic.serving_model import SERVING_KEYS

#: Attributes stored as numbers that are floats even when integral (SQLite's REAL columns).
FLOAT_ATTRIBUTES = frozenset(m.name for m in KPI_METRICS if m.op == "ratio")


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

    def close(self) -> None:
        """Close the client's connections."""
        self.client.close()

    def replace_days(self, days: Sequence[str], items: dict[str, list[dict[str, Any]]]) -> None:
        """Make each of `days` hold exactly its `items` in every table."""
        for table in SERVING_KEYS:
            self._replace(table, days, items.get(table, []))

    def scan(self, table: str) -> list[dict[str, Any]]:
        """Every item of `table` as plain Python values, ordered by key."""
        pk, sk = SERVING_KEYS[table]
        rows = [decode(item, floats=FLOAT_ATTRIBUTES) for item in self._scan(table)]
        return sorted(rows, key=lambda row: (row[pk], row[sk]))

    def _replace(self, table: str, days: Sequence[str], items: list[dict[str, Any]]) -> None:
        pk, sk = SERVING_KEYS[table]
        keep = {(item[pk], item[sk]) for item in items}
        stale = [key for day in days for key in self._day_keys(table, day) if key not in keep]
        requests = [put_request(item) for item in items]
        requests += [delete_request({pk: key[0], sk: key[1]}) for key in stale]
        batch_write(self.client, self.target.table(table), requests, self.backoff)

    def _day_keys(self, table: str, day: str) -> Iterator[tuple[Any, Any]]:
        """The (partition, sort) keys `table` holds for `day`."""
        pk, sk = SERVING_KEYS[table]
        name = self.target.table(table)
        paginator = self.client.get_paginator("query")
        pages = paginator.paginate(
            TableName=name,
            KeyConditionExpression="#pk = :day",
            ProjectionExpression="#pk, #sk",
            ExpressionAttributeNames={"#pk": pk, "#sk": sk},
            ExpressionAttributeValues=encode({":day": day}),
            ConsistentRead=True,
        )
        with translated(f"Reading {day} from the DynamoDB table {name}"):
            for page in pages:
                for item in page.get("Items", []):
                    key = decode(item)
                    yield key[pk], key[sk]

    def _scan(self, table: str) -> Iterator[dict[str, Any]]:
        name = self.target.table(table)
        pages = self.client.get_paginator("scan").paginate(TableName=name, ConsistentRead=True)
        with translated(f"Scanning the DynamoDB table {name}"):
            for page in pages:
                yield from page.get("Items", [])
