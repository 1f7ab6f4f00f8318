"""`music-etl aws init`: create what the AWS mode needs and is missing.

Example:
    >>> report = init_aws(lake="s3://my-bucket/lake", serving="dynamodb://?region=eu-west-1",
    ...                   ledger="dynamodb://?region=eu-west-1")  # doctest: +SKIP
    >>> report.created  # doctest: +SKIP
    ['ProcessedStreams', 'DailyGenreKPIs', 'TopSongsPerGenre', 'TopGenresPerDay']
"""

from __future__ import annotations

from dataclasses import dataclass, field

from music_etl.adapters.aws.errors import NOT_FOUND_CODES, error_code, translated
from music_etl.adapters.aws.session import make_client, parse_dynamodb_url, parse_s3_url
from music_etl.adapters.aws.tables import LEDGER_TABLES, SERVING_TABLES, create_tables
from music_etl.errors import ConfigError

_DYNAMODB = "dynamodb://"


@dataclass(frozen=True, kw_only=True)
class InitReport:
    """What `init_aws` found and made."""

    tables: list[str] = field(default_factory=list)
    """Every table the settings name, created or not."""
    created: list[str] = field(default_factory=list)
    """The tables that were missing and are now active."""
    bucket_created: str = ""
    """The bucket created for the lake, if it was missing and creating it was asked for."""


def init_aws(
    *, lake: str, serving: str, ledger: str, endpoint: str = "", create_bucket: bool = False
) -> InitReport:
    """Create the missing DynamoDB tables (on-demand) and, if asked, the lake's bucket."""
    named = ((ledger, LEDGER_TABLES), (serving, SERVING_TABLES))
    stores = [(url, specs) for url, specs in named if url.startswith(_DYNAMODB)]
    if not stores:
        raise ConfigError(
            "Neither the ledger nor the serving store is on DynamoDB: use an s3:// lake or "
            "set ledger/serving to dynamodb://?region=…"
        )
    bucket = _ensure_bucket(lake, endpoint) if create_bucket and lake.startswith("s3://") else ""
    tables: list[str] = []
    created: list[str] = []
    for url, specs in stores:
        target = parse_dynamodb_url(url, endpoint=endpoint)
        tables += [target.table(spec.name) for spec in specs]
        created += create_tables(target, specs)
    return InitReport(tables=tables, created=created, bucket_created=bucket)


def _ensure_bucket(lake: str, endpoint: str) -> str:
    """Create the lake's bucket if it does not exist; return its name if it was created."""
    from botocore.exceptions import ClientError

    bucket, _ = parse_s3_url(lake)
    client = make_client("s3", endpoint=endpoint)
    with translated(f"Checking the bucket {bucket}"):
        try:
            client.head_bucket(Bucket=bucket)
        except ClientError as exc:
            if error_code(exc) not in NOT_FOUND_CODES | {"NoSuchBucket"}:
                raise
        else:
            return ""
        region = client.meta.region_name
        where = {} if region in (None, "us-east-1") else {"LocationConstraint": region}
        options = {"CreateBucketConfiguration": where} if where else {}
        client.create_bucket(Bucket=bucket, **options)
    return bucket
