"""The DynamoDB tables of the AWS mode and how to create them (on-demand capacity).

Example:
    >>> create_tables(DynamoDBTarget(region="eu-west-1"), ALL_TABLES)  # doctest: +SKIP
    ['ProcessedStreams', 'DailyGenreKPIs', 'TopSongsPerGenre', 'TopGenresPerDay']
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from music_etl.adapters.aws.errors import translated
from music_etl.adapters.aws.session import DynamoDBTarget, make_client
from music_etl.logic.serving_model import SERVING_KEYS

LEDGER_TABLE = "ProcessedStreams"
#: Seconds between checks while a new table becomes active, and how many checks.
_WAIT_DELAY = 1
_WAIT_ATTEMPTS = 300


@dataclass(frozen=True, kw_only=True)
class TableSpec:
    """One table's name and key schema: (attribute, S|N) for the partition and sort keys."""

    name: str
    partition: tuple[str, str]
    sort: tuple[str, str] | None = None

    def definition(self, prefix: str) -> dict[str, Any]:
        """The `CreateTable` arguments, on-demand (PAY_PER_REQUEST)."""
        keys = [(self.partition, "HASH")] + ([(self.sort, "RANGE")] if self.sort else [])
        return {
            "TableName": prefix + self.name,
            "KeySchema": [{"AttributeName": a, "KeyType": kind} for (a, _), kind in keys],
            "AttributeDefinitions": [
                {"AttributeName": a, "AttributeType": t} for (a, t), _ in keys
            ],
            "BillingMode": "PAY_PER_REQUEST",
        }


#: `rank` is a number, every other key a string.
_KEY_TYPES = {"rank": "N"}
SERVING_TABLES = tuple(
    TableSpec(
        name=name, partition=(pk, _KEY_TYPES.get(pk, "S")), sort=(sk, _KEY_TYPES.get(sk, "S"))
    )
    for name, (pk, sk) in SERVING_KEYS.items()
)
LEDGER_TABLES = (TableSpec(name=LEDGER_TABLE, partition=("file_key", "S")),)
ALL_TABLES = LEDGER_TABLES + SERVING_TABLES


def create_tables(target: DynamoDBTarget, specs: Sequence[TableSpec]) -> list[str]:
    """Create each missing table of `specs`, wait until all are active; return the new names."""
    client = make_client("dynamodb", endpoint=target.endpoint, region=target.region)
    existing = _existing(client)
    created = []
    for spec in specs:
        name = target.table(spec.name)
        if name not in existing:
            with translated(f"Creating the DynamoDB table {name}"):
                client.create_table(**spec.definition(target.prefix))
            created.append(name)
    for spec in specs:
        _wait_active(client, target.table(spec.name))
    return created


def _existing(client: Any) -> set[str]:
    names: set[str] = set()
    with translated("Listing the DynamoDB tables"):
        for page in client.get_paginator("list_tables").paginate():
            names.update(page.get("TableNames", []))
    return names


def _wait_active(client: Any, name: str) -> None:
    waiter = client.get_waiter("table_exists")
    with translated(f"Waiting for the DynamoDB table {name} to become active"):
        waiter.wait(
            TableName=name, WaiterConfig={"Delay": _WAIT_DELAY, "MaxAttempts": _WAIT_ATTEMPTS}
        )
