"""`music-etl aws init`: create what the AWS mode needs and is missing.

Example:
    >>> report = init_aws(lake="s3://my-bucket/lake", serving="dynamodb://?region=eu-west-1",
    ...                   ledger="dynamodb://?region=eu-west-1")  # doctest: +SKIP
    >>> report.created  # doctest: +SKIP
    ['ProcessedStreams', 'DailyGenreKPIs', 'TopSongsPerGenre', 'TopGenresPerDay']
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from music_etl.adapters.aws.errors import NOT_FOUND_CODES, error_code, translated
from music_etl.adapters.aws.session import make_client, parse_dynamodb_url, parse_s3_url
from music_etl.adapters.aws.tables import LEDGER_TABLES, SERVING_TABLES, create_tables
from music_etl.errors import ConfigError

_DYNAMODB = "dynamodb://"
#: The four switches of S3 Block Public Access, all on.
PUBLIC_ACCESS_BLOCK = (
    "BlockPublicAcls",
    "IgnorePublicAcls",
    "BlockPublicPolicy",
    "RestrictPublicBuckets",
)


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
    """Create the missing DynamoDB tables and, if asked, the lake's bucket.

    Tables: on-demand, encrypted, point-in-time recovery on. A new bucket: versioned,
    public access blocked, encrypted by default (an existing bucket is left as it is).
    """
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
        _secure_bucket(client, bucket)
    return bucket


def _secure_bucket(client: Any, bucket: str) -> None:
    """Versioning on, public access blocked, default encryption: as `infra/` makes the bucket."""
    client.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    client.put_public_access_block(
        Bucket=bucket,
        PublicAccessBlockConfiguration=dict.fromkeys(PUBLIC_ACCESS_BLOCK, True),
    )
    client.put_bucket_encryption(
        Bucket=bucket,
        ServerSideEncryptionConfiguration={
            "Rules": [
                {
                    "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"},
                    "BucketKeyEnabled": True,
                }
            ]
        },
    )


def ensure_tables(*, serving: str, ledger: str, endpoint: str = "") -> list[str]:
    """Create the missing DynamoDB tables the ledger and serving URLs name; the new names.

    What `music-etl run` and the Glue jobs call before they start: an empty account needs
    no `aws init`. Stores that are not on DynamoDB are left alone.
    """
    created: list[str] = []
    for url, specs in ((ledger, LEDGER_TABLES), (serving, SERVING_TABLES)):
        if url.startswith(_DYNAMODB):
            created += create_tables(parse_dynamodb_url(url, endpoint=endpoint), specs)
    return created
