"""The DynamoDB tables of the AWS mode and how to create them.

One definition serves `music-etl aws init`, the pipeline and the Glue load job (which
create any missing table themselves) and matches `infra/music-etl.yaml` (a test holds
them equal): on-demand capacity, encryption at rest with the AWS managed key, and
point-in-time recovery, turned on once the table is active.

Creating is safe to race: a `ResourceInUseException` from `CreateTable` means another
process created the table first; both then wait until it is active.

Example:
    >>> create_tables(DynamoDBTarget(region="eu-west-1"), ALL_TABLES)  # doctest: +SKIP
    ['ProcessedStreams', 'DailyGenreKPIs', 'TopSongsPerGenre', 'TopGenresPerDay']
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from music_etl.adapters.aws.errors import error_code, translated
from music_etl.adapters.aws.session import DynamoDBTarget, make_client
from music_etl.logic.serving_model import SERVING_KEYS

LEDGER_TABLE = "ProcessedStreams"
#: Seconds between checks while a new table becomes active, and how many checks.
_WAIT_DELAY = 1
_WAIT_ATTEMPTS = 300
#: Right after creation AWS may refuse to turn on backups for a while.
_BACKUPS_NOT_YET = "ContinuousBackupsUnavailableException"
_BACKUP_ATTEMPTS = 30


@dataclass(frozen=True, kw_only=True)
class TableSpec:
    """One table's name and key schema: (attribute, S|N) for the partition and sort keys."""

    name: str
    partition: tuple[str, str]
    sort: tuple[str, str] | None = None

    def definition(self, prefix: str) -> dict[str, Any]:
        """The `CreateTable` arguments: on-demand (PAY_PER_REQUEST), encrypted (KMS, AWS key)."""
        keys = [(self.partition, "HASH")] + ([(self.sort, "RANGE")] if self.sort else [])
        return {
            "TableName": prefix + self.name,
            "KeySchema": [{"AttributeName": a, "KeyType": kind} for (a, _), kind in keys],
            "AttributeDefinitions": [
                {"AttributeName": a, "AttributeType": t} for (a, t), _ in keys
            ],
            "BillingMode": "PAY_PER_REQUEST",
            "SSESpecification": {"Enabled": True},
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


def create_tables(
    target: DynamoDBTarget, specs: Sequence[TableSpec], *, client: Any = None
) -> list[str]:
    """Create each missing table of `specs`, wait until all are active; return the new names.

    A table another process is creating at the same time is waited for, not created.
    """
    client = client or make_client("dynamodb", endpoint=target.endpoint, region=target.region)
    created, raced = [], []
    for spec in specs:
        name = target.table(spec.name)
        if _exists(client, name):
            continue
        if _create(client, spec.definition(target.prefix)):
            created.append(name)
        else:
            raced.append(name)
    for spec in specs:
        _wait_active(client, target.table(spec.name))
    for name in [*created, *raced]:
        enable_point_in_time_recovery(client, name)
    return created


def _exists(client: Any, name: str) -> bool:
    from botocore.exceptions import ClientError

    with translated(f"Looking up the DynamoDB table {name}"):
        try:
            client.describe_table(TableName=name)
        except ClientError as exc:
            if error_code(exc) != "ResourceNotFoundException":
                raise
            return False
    return True


def _create(client: Any, definition: dict[str, Any]) -> bool:
    """Create a table; False when another process created it first."""
    from botocore.exceptions import ClientError

    with translated(f"Creating the DynamoDB table {definition['TableName']}"):
        try:
            client.create_table(**definition)
        except ClientError as exc:
            if error_code(exc) != "ResourceInUseException":
                raise
            return False
    return True


def enable_point_in_time_recovery(client: Any, name: str) -> None:
    """Turn on point-in-time recovery for `name` (idempotent), waiting while AWS is not ready."""
    from botocore.exceptions import ClientError

    spec = {"PointInTimeRecoveryEnabled": True}
    with translated(f"Turning on point-in-time recovery for the DynamoDB table {name}"):
        for attempt in range(_BACKUP_ATTEMPTS):
            try:
                client.update_continuous_backups(
                    TableName=name, PointInTimeRecoverySpecification=spec
                )
            except ClientError as exc:
                if error_code(exc) != _BACKUPS_NOT_YET or attempt + 1 == _BACKUP_ATTEMPTS:
                    raise
                time.sleep(_WAIT_DELAY)
            else:
                return


def _wait_active(client: Any, name: str) -> None:
    waiter = client.get_waiter("table_exists")
    with translated(f"Waiting for the DynamoDB table {name} to become active"):
        waiter.wait(
            TableName=name, WaiterConfig={"Delay": _WAIT_DELAY, "MaxAttempts": _WAIT_ATTEMPTS}
        )
