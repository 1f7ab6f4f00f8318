"""boto3 clients for the AWS adapters, and the URLs that name S3 lakes and DynamoDB tables.

Credentials come only from boto3's standard chain (environment, profile, SSO, instance
role), never from a file of ours. The endpoint is, in order: the `endpoint=` of a
`dynamodb://` URL, the `aws_endpoint` setting, then whatever boto3 finds itself
(`AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_S3`, `AWS_ENDPOINT_URL_DYNAMODB`, the config file).

Example:
    >>> parse_dynamodb_url("dynamodb://?region=eu-west-1&prefix=dev-")
    DynamoDBTarget(region='eu-west-1', endpoint='', prefix='dev-')
"""

from __future__ import annotations

import os
import re
import threading
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

from music_etl.adapters.aws.errors import translated
from music_etl.errors import ConfigError

#: Attempts per call (the first one included) before a transient error reaches us.
MAX_ATTEMPTS = 8
_TABLE_PREFIX = re.compile(r"[A-Za-z0-9_.-]*")
_DYNAMODB_PARAMS = ("region", "prefix", "endpoint")
#: Environment variables that change what a boto3 session resolves.
_SESSION_ENV = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_DEFAULT_REGION",
    "AWS_REGION",
    "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "AWS_ENDPOINT_URL_DYNAMODB",
)
_sessions: dict[tuple[object, ...], Any] = {}
_lock = threading.Lock()


@dataclass(frozen=True, kw_only=True)
class DynamoDBTarget:
    """Where the tables of a `dynamodb://` URL live."""

    region: str = ""
    """AWS region; empty: boto3's default (`AWS_DEFAULT_REGION`, the profile)."""
    endpoint: str = ""
    """Endpoint override; empty: boto3's default."""
    prefix: str = ""
    """Put before every table name, e.g. `dev-` for `dev-ProcessedStreams`."""

    def table(self, name: str) -> str:
        """The full name of table `name`."""
        return self.prefix + name


def parse_dynamodb_url(url: str, *, endpoint: str = "") -> DynamoDBTarget:
    """The target of `dynamodb://?region=…&prefix=…&endpoint=…` (every part optional)."""
    parts = urlsplit(url)
    if parts.scheme != "dynamodb" or parts.netloc or parts.path.strip("/"):
        raise ConfigError(
            f"Expected dynamodb://?region=…&prefix=… , got {url!r} "
            "(put the region in the query, e.g. dynamodb://?region=eu-west-1)."
        )
    params = parse_qs(parts.query, keep_blank_values=True)
    unknown = sorted(set(params) - set(_DYNAMODB_PARAMS))
    if unknown:
        raise ConfigError(
            f"Unknown parameter(s) {', '.join(unknown)} in {url!r}: use region, prefix, endpoint."
        )
    value = {name: params.get(name, [""])[-1] for name in _DYNAMODB_PARAMS}
    if not _TABLE_PREFIX.fullmatch(value["prefix"]):
        raise ConfigError(
            f"Table prefix {value['prefix']!r} in {url!r} may hold only letters, digits, _ . -"
        )
    return DynamoDBTarget(
        region=value["region"], endpoint=value["endpoint"] or endpoint, prefix=value["prefix"]
    )


def parse_s3_url(lake: str) -> tuple[str, str]:
    """The bucket and key prefix (no trailing slash) of `s3://bucket/prefix`."""
    parts = urlsplit(lake)
    if parts.scheme != "s3" or not parts.netloc or parts.query or parts.fragment:
        raise ConfigError(f"Expected an S3 lake like s3://bucket/prefix, got {lake!r}.")
    prefix = parts.path.strip("/")
    if ".." in prefix.split("/"):
        raise ConfigError(f"The lake prefix of {lake!r} must not contain '..'.")
    return parts.netloc, prefix


def make_client(service: str, *, endpoint: str = "", region: str = "") -> Any:
    """A boto3 client with standard-mode retries and the endpoint override, if any."""
    from botocore.config import Config

    config = Config(
        retries={"mode": "standard", "total_max_attempts": MAX_ATTEMPTS},
        connect_timeout=10,
        read_timeout=60,
    )
    options: dict[str, Any] = {"config": config}
    if endpoint:
        options["endpoint_url"] = endpoint
    if region:
        options["region_name"] = region
    with translated(f"Opening the {service} client"), _lock:
        return _session().client(service, **options)


def _session() -> Any:
    """One boto3 session per process and environment: creating sessions is slow."""
    import boto3

    key = (os.getpid(), *(os.environ.get(name) for name in _SESSION_ENV))
    if key not in _sessions:
        _sessions[key] = boto3.session.Session()
    return _sessions[key]
