"""botocore errors become `music_etl.errors` types at the boundary of the AWS adapters.

Transient failures (throttling, 5xx, lost connections) that outlived botocore's own
retries become `ServiceUnavailable` (retryable); setup mistakes (no credentials, no
region, a missing bucket or table, access denied) become `ConfigError` naming the fix.

Example:
    >>> with translated("reading s3://bucket/lake/raw/users/users.csv"):  # doctest: +SKIP
    ...     client.get_object(Bucket="bucket", Key="lake/raw/users/users.csv")
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from music_etl.errors import (
    ConfigError,
    MusicEtlError,
    ServiceError,
    ServiceUnavailable,
    Terminal,
)

CONDITION_FAILED = "ConditionalCheckFailedException"
#: Error codes that say "slow down" or "try again" (besides any 5xx status).
TRANSIENT_CODES = frozenset(
    {
        "InternalError",
        "InternalServerError",
        "LimitExceededException",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "RequestTimeout",
        "RequestTimeoutException",
        "ServiceUnavailable",
        "SlowDown",
        "Throttling",
        "ThrottlingException",
        "TransactionConflictException",
    }
)
NOT_FOUND_CODES = frozenset({"404", "NoSuchKey", "NotFound"})
_DENIED_CODES = frozenset(
    {
        "AccessDenied",
        "AccessDeniedException",
        "ExpiredToken",
        "ExpiredTokenException",
        "InvalidAccessKeyId",
        "InvalidClientTokenId",
        "SignatureDoesNotMatch",
        "UnrecognizedClientException",
    }
)


def error_code(exc: BaseException) -> str:
    """The AWS error code of a botocore `ClientError` (empty for anything else)."""
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return ""
    return str(response.get("Error", {}).get("Code", ""))


def is_transient(exc: BaseException) -> bool:
    """Whether `exc` is a throttling or server-side error worth retrying."""
    response = getattr(exc, "response", None)
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) if response else 0
    return error_code(exc) in TRANSIENT_CODES or int(status) >= 500


@contextmanager
def translated(what: str, *, terminal: type[Terminal] = ServiceError) -> Iterator[None]:
    """Turn botocore errors raised inside the block into ours; `what` names the action."""
    from boto3.exceptions import Boto3Error
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        yield
    except ClientError as exc:
        raise from_client_error(exc, what, terminal) from exc
    except BotoCoreError as exc:
        raise from_botocore_error(exc, what) from exc
    except Boto3Error as exc:
        raise from_boto3_error(exc, what, terminal) from exc


def from_client_error(exc: Any, what: str, terminal: type[Terminal]) -> MusicEtlError:
    """Our error for a `ClientError` the service answered with."""
    code = error_code(exc)
    message = str(exc.response.get("Error", {}).get("Message", "")) or str(exc)
    if is_transient(exc):
        return ServiceUnavailable(
            f"{what}: AWS kept answering {code or 'a server error'} after retries; try again later."
        )
    if code == "NoSuchBucket":
        return ConfigError(f"{what}: the bucket does not exist. Create it or fix the lake URL.")
    if code == "ResourceNotFoundException":
        return ConfigError(f"{what}: {message}. Create the tables with `music-etl aws init`.")
    if code in _DENIED_CODES:
        return ConfigError(
            f"{what}: AWS refused the credentials ({code}). Check AWS_PROFILE or the "
            "role's permissions."
        )
    return terminal(f"{what}: {code}: {message}")


def from_botocore_error(exc: Exception, what: str) -> MusicEtlError:
    """Our error for a client-side botocore failure (no credentials, no connection, …)."""
    from botocore.exceptions import (
        ConnectionError as BotoConnectionError,
    )
    from botocore.exceptions import (
        HTTPClientError,
        NoCredentialsError,
        NoRegionError,
        PartialCredentialsError,
    )

    if isinstance(exc, NoCredentialsError | PartialCredentialsError):
        return ConfigError(
            f"{what}: no AWS credentials found. Use the standard chain: AWS_PROFILE, "
            "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, SSO or an instance role."
        )
    if isinstance(exc, NoRegionError):
        return ConfigError(
            f"{what}: no AWS region. Set AWS_DEFAULT_REGION or add ?region=… to the "
            "dynamodb:// URL."
        )
    if isinstance(exc, BotoConnectionError | HTTPClientError):
        return ServiceUnavailable(f"{what}: cannot reach AWS ({exc}); try again later.")
    return ServiceError(f"{what}: {exc}")


def from_boto3_error(exc: Exception, what: str, terminal: type[Terminal]) -> MusicEtlError:
    """Our error for a failed managed transfer (boto3 wraps the botocore error it met)."""
    from boto3.exceptions import RetriesExceededError
    from botocore.exceptions import BotoCoreError, ClientError

    cause = exc.__context__
    if isinstance(cause, ClientError):
        return from_client_error(cause, what, terminal)
    if isinstance(cause, BotoCoreError):
        return from_botocore_error(cause, what)
    if isinstance(exc, RetriesExceededError):
        return ServiceUnavailable(f"{what}: the transfer kept failing ({exc}); try again later.")
    return terminal(f"{what}: {exc}")
