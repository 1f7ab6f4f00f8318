"""What the AWS tests share: the lake under test, state snapshots and fault hooks."""

from __future__ import annotations

import functools
import io
import json
import threading
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from lake_snapshot import archive_parts
from music_etl.adapters.aws.session import DynamoDBTarget
from music_etl.adapters.aws.tables import ALL_TABLES, create_tables
from music_etl.adapters.ledger.base import Ledger
from music_etl.adapters.ledger.dynamodb import DynamoDBLedger
from music_etl.adapters.serving.base import ServingStore
from music_etl.adapters.serving.dynamodb import DynamoDBServingStore
from music_etl.adapters.storage.base import Storage
from music_etl.adapters.storage.local import LocalStorage
from music_etl.adapters.storage.s3 import S3Storage
from music_etl.logic import layout
from music_etl.logic.serving_model import SERVING_KEYS
from music_etl.pipeline.components import Components
from music_etl.sample.generator import GenerateReport, generate
from music_etl.settings import Settings, load_settings

NOW = "2024-07-01T00:00:00Z"
REGION = "us-east-1"
#: Nothing listens here (the discard port): the endpoint of clients that should not exist.
NOWHERE = "http://127.0.0.1:9"
#: The generated landing zone every pipeline test uses (small: HTTP calls dominate).
SAMPLE = {"streams": 2_000, "files": 3, "days": 2, "seed": 11, "songs": 60, "users": 100}


@functools.cache
def _session() -> Any:
    import boto3

    return boto3.session.Session()


@functools.cache
def client(service: str, endpoint: str) -> Any:
    """A shared plain boto3 client for setting up and inspecting the moto server."""
    return new_client(service, endpoint)


def new_client(service: str, endpoint: str, max_attempts: int = 3) -> Any:
    """A boto3 client of its own (to hook events on), with `max_attempts` per call."""
    from botocore.config import Config

    retries = Config(retries={"mode": "standard", "total_max_attempts": max_attempts})
    return _session().client(service, endpoint_url=endpoint, region_name=REGION, config=retries)


def seed_objects(storage: Storage, keys: Sequence[str], data: bytes) -> None:
    """Write `data` at each key fast: as plain files, or straight into moto's memory.

    The moto server runs in this process, so a thousand objects can be put into its
    backend without a thousand HTTP round trips; listing them still goes over HTTP.
    """
    if isinstance(storage, LocalStorage):
        for key in keys:
            path = storage.path(key)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        return
    assert isinstance(storage, S3Storage)
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.s3.models import s3_backends

    backend = s3_backends[DEFAULT_ACCOUNT_ID]["aws"]
    for key in keys:
        backend.put_object(storage.bucket, f"{storage.prefix}/{key}", data)


@dataclass(frozen=True, kw_only=True)
class AwsLake:
    """A bucket and a table prefix of their own, both named `name`."""

    endpoint: str
    name: str
    tmp: Path

    @property
    def bucket(self) -> str:
        return self.name

    @property
    def lake(self) -> str:
        return f"s3://{self.bucket}/lake"

    @property
    def dynamodb(self) -> str:
        return f"dynamodb://?prefix={self.name}-"

    def settings(self, **overrides: object) -> Settings:
        """Settings for this lake with the fixed test clock, ignoring the environment."""
        values: dict[str, object] = {
            "lake": self.lake,
            "serving": self.dynamodb,
            "ledger": self.dynamodb,
            "aws_endpoint": self.endpoint,
            "now": NOW,
            **overrides,
        }
        return load_settings(env={}, config=self.tmp / "no-config.toml", **values)

    def env(self) -> dict[str, str]:
        """The same settings as `MUSIC_ETL_*` variables, for subprocesses and the CLI."""
        return {
            "MUSIC_ETL_LAKE": self.lake,
            "MUSIC_ETL_SERVING": self.dynamodb,
            "MUSIC_ETL_LEDGER": self.dynamodb,
            "MUSIC_ETL_AWS_ENDPOINT": self.endpoint,
            "MUSIC_ETL_NOW": NOW,
        }

    def create_tables(self) -> list[str]:
        target = DynamoDBTarget(endpoint=self.endpoint, prefix=f"{self.name}-")
        return create_tables(target, ALL_TABLES)

    def storage(self) -> S3Storage:
        return S3Storage(self.lake, endpoint=self.endpoint)

    def serving(self) -> DynamoDBServingStore:
        return DynamoDBServingStore(self.dynamodb, endpoint=self.endpoint)

    def ledger(self) -> DynamoDBLedger:
        return DynamoDBLedger(self.dynamodb, endpoint=self.endpoint)

    def state(self) -> dict[str, Any]:
        return lake_state(self.storage(), self.serving(), self.ledger())


def generate_sample(storage: Storage) -> GenerateReport:
    """The standard small landing zone, written through `storage`."""
    return generate(storage, **SAMPLE)


# --------------------------------------------------------------------------- state


def typed(value: Any) -> Any:
    """`value` with each scalar paired with its type name, so 1 and 1.0 differ."""
    if isinstance(value, dict):
        return {k: typed(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [typed(v) for v in value]
    return (type(value).__name__, value)


def lake_state(storage: Storage, serving: ServingStore, ledger: Ledger) -> dict[str, Any]:
    """Everything a run derives, comparable across backends and lakes."""
    files: dict[str, Any] = {}
    for prefix in layout.DERIVED_PREFIXES:
        for info in storage.list(prefix):
            data = storage.read_bytes(info.key)
            files[info.key] = _parquet_rows(data) if info.key.endswith(".parquet") else data
    return {
        "files": files,
        **archive_parts(storage),
        "raw_streams": [i.key for i in storage.list(layout.RAW_STREAMS)],
        "serving": {name: typed(serving.scan(name)) for name in SERVING_KEYS},
        "ledger": {r.file_key: _record_fields(r) for r in ledger.records()},
    }


def _parquet_rows(data: bytes) -> list[str]:
    rows = pq.read_table(io.BytesIO(data)).to_pylist()
    return sorted(json.dumps(row, default=str, sort_keys=True) for row in rows)


def _record_fields(record: Any) -> dict[str, Any]:
    """What a record says about its file, not when or by whom it was written."""
    names = ("content_hash", "status", "processed_at", "rows_in", "rows_valid", "rows_bad")
    fields = {name: getattr(record, name) for name in names}
    return fields | {
        "bad_by_reason": record.bad_by_reason,
        "days": record.days,
        "error": record.error,
        "retryable": record.retryable,
    }


def clients(components: Components) -> Iterator[Any]:
    """The boto3 clients of AWS components."""
    for adapter in (components.storage, components.serving, components.ledger):
        yield adapter.client  # type: ignore[attr-defined]


# --------------------------------------------------------------------------- faults


class _Body:
    """The raw body of a synthetic HTTP response."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._data


def json_response(url: str, payload: Any, status: int = 200) -> Any:
    """A synthetic DynamoDB answer."""
    from botocore.awsrequest import AWSResponse

    headers = {"Content-Type": "application/x-amz-json-1.0"}
    return AWSResponse(url, status, headers, _Body(json.dumps(payload).encode()))


def error_response(service: str, url: str, *, throttle: bool) -> Any:
    """What S3 or DynamoDB answer when they throttle (or fail with a 5xx)."""
    from botocore.awsrequest import AWSResponse

    if service == "s3":
        code, status = ("SlowDown", 503) if throttle else ("InternalError", 500)
        body = f"<Error><Code>{code}</Code><Message>injected</Message></Error>".encode()
        return AWSResponse(url, status, {"Content-Type": "application/xml"}, _Body(body))
    code, status = ("ThrottlingException", 400) if throttle else ("InternalServerError", 500)
    payload = {"__type": f"com.amazonaws.dynamodb.v20120810#{code}", "message": "injected"}
    return json_response(url, payload, status)


class FaultHook:
    """A `before-send` handler: every `every`-th request gets a synthetic error response.

    Every `throttle_every`-th fault is a throttle, the others are 5xx. The request never
    reaches the server, as when AWS rejects it; botocore retries it.
    """

    def __init__(self, *, every: int, throttle_every: int, seed: int) -> None:
        self.every = every
        self.throttle_every = throttle_every
        self.offset = seed % every
        self.calls = 0
        self.injected: Counter[str] = Counter()
        self._lock = threading.Lock()

    def __call__(self, request: Any, event_name: str, **_: Any) -> Any:
        with self._lock:
            self.calls += 1
            n = self.calls
        if n % self.every != self.offset:
            return None
        service = event_name.split(".")[1]
        throttle = (n // self.every) % self.throttle_every == 0
        self.injected[f"{service} {'throttle' if throttle else '5xx'}"] += 1
        return error_response(service, request.url, throttle=throttle)

    def install(self, *boto_clients: Any) -> FaultHook:
        for each in boto_clients:
            each.meta.events.register("before-send", self)
        return self


class LostResponse:
    """Delivers the first `times` matching requests, then answers 500 as if the reply was lost."""

    def __init__(self, operation: str, times: int = 1) -> None:
        self.operation = operation
        self.left = times

    def __call__(self, request: Any, event_name: str, **_: Any) -> Any:
        if not event_name.endswith("." + self.operation) or self.left <= 0:
            return None
        from botocore.httpsession import URLLib3Session

        self.left -= 1
        URLLib3Session().send(request)
        return error_response(event_name.split(".")[1], request.url, throttle=False)
