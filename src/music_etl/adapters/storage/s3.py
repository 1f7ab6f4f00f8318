"""The lake in an S3 bucket, through boto3.

S3 has no rename, so every write goes straight to its final, deterministic key in one
PUT (a managed multipart upload for large files): a retry overwrites instead of
duplicating, and a reader sees the old object or the new one. Each object we write
carries the SHA-256 of its bytes as metadata (`x-amz-meta-sha256`).

Example:
    >>> storage = S3Storage("s3://my-bucket/lake")  # doctest: +SKIP
    >>> storage.uri("raw/users/users.csv")  # doctest: +SKIP
    's3://my-bucket/lake/raw/users/users.csv'
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import Any

from music_etl.adapters.aws.errors import NOT_FOUND_CODES, error_code, translated
from music_etl.adapters.aws.session import make_client, parse_s3_url
from music_etl.adapters.storage.base import ObjectInfo
from music_etl.errors import SourceChanged, StorageError

#: Larger files are uploaded (and copied) in parts; smaller ones in a single request.
MULTIPART_THRESHOLD = 64 * 1024 * 1024
#: CopyObject copies at most 5 GiB in one request.
_SINGLE_COPY_LIMIT = 5 * 1024**3
_HASH_METADATA = "sha256"
_CHUNK = 1 << 20


class S3Storage:
    """`s3://bucket/prefix` as the lake; keys are relative to the prefix."""

    def __init__(self, lake: str, *, endpoint: str = "", client: Any = None) -> None:
        self.bucket, self.prefix = parse_s3_url(lake)
        self.root = f"s3://{self.bucket}/{self.prefix}".rstrip("/")
        self.client: Any = client or make_client("s3", endpoint=endpoint)
        """The boto3 S3 client (tests hook its events to inject faults)."""

    def close(self) -> None:
        """Close the client's connections."""
        self.client.close()

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        """Every object under `prefix`, in key order, one page of 1,000 at a time."""
        paginator = self.client.get_paginator("list_objects_v2")
        pages = paginator.paginate(Bucket=self.bucket, Prefix=self._key(prefix, allow_empty=True))
        start = len(self._key("", allow_empty=True))
        with translated(f"Listing {self.uri(prefix)}", terminal=StorageError):
            for page in pages:
                for item in page.get("Contents", []):
                    if not item["Key"].endswith("/"):
                        yield ObjectInfo(key=item["Key"][start:], size=int(item["Size"]))

    def exists(self, key: str) -> bool:
        """Whether `key` holds an object."""
        return self._head(key) is not None

    def read_bytes(self, key: str) -> bytes:
        """The whole object."""
        with self._reading(key):
            response = self.client.get_object(Bucket=self.bucket, Key=self._key(key))
            data: bytes = response["Body"].read()
        return data

    def write_bytes(self, key: str, data: bytes) -> None:
        """Create or replace `key` in one PUT."""
        with translated(f"Writing {self.uri(key)}", terminal=StorageError):
            self.client.put_object(
                Bucket=self.bucket,
                Key=self._key(key),
                Body=data,
                Metadata={_HASH_METADATA: hashlib.sha256(data).hexdigest()},
            )

    @contextmanager
    def writer(self, key: str) -> Iterator[Path]:
        """Yield a local temp path; on clean exit upload it to `key`."""
        target = self._key(key)
        with tempfile.TemporaryDirectory(prefix="music-etl-") as folder:
            path = Path(folder) / PurePosixPath(target).name
            path.touch()
            yield path
            self._upload(path, key)

    @contextmanager
    def local_copy(self, key: str) -> Iterator[Path]:
        """Download `key` to a temp file that lives as long as the block."""
        target = self._key(key)
        with tempfile.TemporaryDirectory(prefix="music-etl-") as folder:
            path = Path(folder) / PurePosixPath(target).name
            with self._reading(key):
                self.client.download_file(self.bucket, target, str(path))
            yield path

    def uri(self, key: str) -> str:
        """`s3://bucket/prefix/key`."""
        return f"s3://{self.bucket}/{self._key(key, allow_empty=True)}"

    def content_hash(self, key: str) -> str:
        """The SHA-256 we stored with the object, else its ETag (an MD5 for single PUTs).

        The stored hash is preferred because it survives copies (a copy may change a
        multipart ETag); objects put by other tools fall back to the ETag, which
        changes whenever the content does.
        """
        head = self._head(key)
        if head is None:
            raise StorageError(f"{key} is not in the lake {self.root}.")
        stored = head.get("Metadata", {}).get(_HASH_METADATA, "")
        return str(stored or head["ETag"].strip('"'))

    def fingerprint(self, key: str) -> str:
        """The object's ETag: any new PUT of the key changes it."""
        head = self._head(key)
        if head is None:
            raise StorageError(f"{key} is not in the lake {self.root}.")
        return str(head["ETag"])

    def move(self, src: str, dst: str, *, if_fingerprint: str = "") -> None:
        """Copy `src` to `dst` (replacing it), then delete `src` if nobody replaced it since.

        The copy is of the very object looked at, or fingerprinted (`CopySourceIfMatch`),
        and `src` is deleted only while it is still that object: an upload that lands
        meanwhile stays.
        """
        head = self._head(src)
        if head is None:
            raise StorageError(f"{src} is not in the lake {self.root}: nothing to move.")
        from botocore.exceptions import ClientError

        etag = if_fingerprint or head["ETag"]
        if etag != head["ETag"]:
            raise SourceChanged(f"{src} changed after it was read; it stays where it is.")
        source = {"Bucket": self.bucket, "Key": self._key(src)}
        # A fresh checksum: a multipart source's composite one does not describe the copy.
        options = {"ChecksumAlgorithm": "CRC32", "CopySourceIfMatch": etag}
        with translated(f"Moving {self.uri(src)} to {self.uri(dst)}", terminal=StorageError):
            try:
                self._copy(source, dst, int(head["ContentLength"]), options)
            except ClientError as exc:
                if error_code(exc) == "PreconditionFailed":
                    raise SourceChanged(f"{src} changed while it was moved.") from exc
                raise
        now = self._head(src)
        if now is not None and now["ETag"] == etag:
            self.delete(src)

    def _copy(self, source: dict[str, str], dst: str, size: int, options: dict[str, str]) -> None:
        if size < _SINGLE_COPY_LIMIT:
            self.client.copy_object(
                CopySource=source, Bucket=self.bucket, Key=self._key(dst), **options
            )
        else:
            self.client.copy(
                source, self.bucket, self._key(dst), options, Config=_transfer_config()
            )

    def delete(self, key: str) -> None:
        """Remove `key`; a missing key is not an error."""
        with translated(f"Deleting {self.uri(key)}", terminal=StorageError):
            self.client.delete_object(Bucket=self.bucket, Key=self._key(key))

    def _key(self, key: str, *, allow_empty: bool = False) -> str:
        """The object key of lake key `key`."""
        if key.startswith("/") or ".." in key.split("/") or not (key or allow_empty):
            raise StorageError(f"Key {key!r} escapes the lake {self.root}.")
        return f"{self.prefix}/{key}" if self.prefix else key

    def _head(self, key: str) -> dict[str, Any] | None:
        """The object's metadata, or None when there is no object."""
        from botocore.exceptions import ClientError

        with translated(f"Reading {self.uri(key)}", terminal=StorageError):
            try:
                head: dict[str, Any] = self.client.head_object(
                    Bucket=self.bucket, Key=self._key(key)
                )
            except ClientError as exc:
                if error_code(exc) in NOT_FOUND_CODES:
                    return None
                raise
        return head

    @contextmanager
    def _reading(self, key: str) -> Iterator[None]:
        """Translate errors of a read; a missing object is a `StorageError` naming the key."""
        from botocore.exceptions import ClientError

        with translated(f"Reading {self.uri(key)}", terminal=StorageError):
            try:
                yield
            except ClientError as exc:
                if error_code(exc) in NOT_FOUND_CODES:
                    raise StorageError(f"{key} is not in the lake {self.root}.") from exc
                raise

    def _upload(self, path: Path, key: str) -> None:
        metadata = {_HASH_METADATA: _sha256(path)}
        with translated(f"Writing {self.uri(key)}", terminal=StorageError):
            if path.stat().st_size < MULTIPART_THRESHOLD:
                with path.open("rb") as body:
                    self.client.put_object(
                        Bucket=self.bucket, Key=self._key(key), Body=body, Metadata=metadata
                    )
            else:
                self._managed_upload(path, key, metadata)

    def _managed_upload(self, path: Path, key: str, metadata: dict[str, str]) -> None:
        self.client.upload_file(
            str(path),
            self.bucket,
            self._key(key),
            ExtraArgs={"Metadata": metadata},
            Config=_transfer_config(),
        )


def _transfer_config() -> Any:
    from boto3.s3.transfer import TransferConfig

    return TransferConfig(
        multipart_threshold=MULTIPART_THRESHOLD, multipart_chunksize=MULTIPART_THRESHOLD
    )


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()
