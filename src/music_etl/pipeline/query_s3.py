"""`query` on an S3 lake: DuckDB's httpfs extension, loaded from its PyPI package.

The extension is never downloaded at run time: the `aws` extra installs
`duckdb-extension-httpfs` (the same version as `duckdb`), whose wheel carries the
signed `httpfs.duckdb_extension`; it is loaded by path. Credentials and region come
from boto3's standard chain (environment, profile, instance role) and go into a
DuckDB secret; `aws_endpoint` (moto, LocalStack, MinIO) switches to path-style URLs,
and to plain HTTP for an `http://` endpoint.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from music_etl.errors import ConfigError

if TYPE_CHECKING:
    import duckdb

    from music_etl.adapters.storage.s3 import S3Storage

#: The PyPI package (import name) that ships DuckDB's httpfs extension.
HTTPFS_PACKAGE = "duckdb_extension_httpfs"


def httpfs_path() -> Path:
    """The installed httpfs extension for the running DuckDB, or a `ConfigError` saying how.

    Example:
        >>> httpfs_path().name  # doctest: +SKIP
        'httpfs.duckdb_extension'
    """
    import duckdb

    version = duckdb.__version__
    install = f"pip install 'music-streaming-etl[aws]' (or duckdb-extension-httpfs=={version})"
    spec = importlib.util.find_spec(HTTPFS_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(f"query over an S3 lake needs DuckDB's httpfs extension: {install}.")
    for folder in spec.submodule_search_locations:
        found = Path(folder) / "extensions" / f"v{version}" / "httpfs.duckdb_extension"
        if found.is_file():
            return found
    raise ConfigError(
        f"The installed {HTTPFS_PACKAGE} is not built for DuckDB {version}: {install}."
    )


def attach_s3(conn: duckdb.DuckDBPyConnection, storage: S3Storage, endpoint: str) -> None:
    """Load httpfs into `conn` and give it the lake's credentials, region and endpoint."""
    conn.execute(f"LOAD {_literal(str(httpfs_path()))}")
    conn.execute(f"CREATE SECRET lake ({', '.join(_secret_options(storage, endpoint))})")


def _secret_options(storage: S3Storage, endpoint: str) -> list[str]:
    """The `CREATE SECRET` options: boto3's credentials, the client's region, the endpoint."""
    import boto3

    options = ["TYPE s3", "PROVIDER config", f"SCOPE {_literal(storage.root)}"]
    region = storage.client.meta.region_name or "us-east-1"
    options.append(f"REGION {_literal(region)}")
    credentials = boto3.session.Session().get_credentials()
    if credentials is not None:
        frozen = credentials.get_frozen_credentials()
        options += [
            f"KEY_ID {_literal(frozen.access_key)}",
            f"SECRET {_literal(frozen.secret_key)}",
        ]
        if frozen.token:
            options.append(f"SESSION_TOKEN {_literal(frozen.token)}")
    if endpoint:
        parts = urlsplit(endpoint)
        use_ssl = "true" if parts.scheme == "https" else "false"
        options += [
            f"ENDPOINT {_literal(parts.netloc or parts.path)}",
            f"USE_SSL {use_ssl}",
            "URL_STYLE 'path'",
        ]
    return options


def _literal(text: str) -> str:
    """`text` as a SQL string literal."""
    return "'" + text.replace("'", "''") + "'"
