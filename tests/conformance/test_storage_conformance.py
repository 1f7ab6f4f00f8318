"""One storage suite over every backend: the local folder and S3 (moto over HTTP)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from aws.helpers import AwsLake, client, seed_objects
from music_etl.adapters.storage import open_storage
from music_etl.adapters.storage.base import Storage
from music_etl.adapters.storage.local import LocalStorage
from music_etl.adapters.storage.s3 import S3Storage
from music_etl.errors import StorageError


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.aws)])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Storage:
    if request.param == "local":
        return LocalStorage(tmp_path / "lake")
    s3_lake: AwsLake = request.getfixturevalue("s3_lake")
    return s3_lake.storage()


def test_write_read_and_overwrite(storage: Storage) -> None:
    storage.write_bytes("a/b.txt", b"one")
    assert storage.read_bytes("a/b.txt") == b"one"
    storage.write_bytes("a/b.txt", b"two")
    assert storage.read_bytes("a/b.txt") == b"two"
    assert storage.exists("a/b.txt")
    assert not storage.exists("a/c.txt")
    assert [(i.key, i.size) for i in storage.list("a/")] == [("a/b.txt", 3)]


def test_missing_key_is_a_storage_error(storage: Storage) -> None:
    with pytest.raises(StorageError, match=r"nope\.txt is not in the lake"):
        storage.read_bytes("nope.txt")
    with pytest.raises(StorageError), storage.local_copy("nope.txt"):
        pass


def test_writer_publishes_only_on_clean_exit(storage: Storage) -> None:
    with storage.writer("w/data.parquet") as path:
        path.write_bytes(b"first")
    assert storage.read_bytes("w/data.parquet") == b"first"
    with pytest.raises(RuntimeError), storage.writer("w/data.parquet") as path:
        path.write_bytes(b"half")
        raise RuntimeError
    with pytest.raises(RuntimeError), storage.writer("w/other.parquet") as path:
        path.write_bytes(b"half")
        raise RuntimeError
    assert storage.read_bytes("w/data.parquet") == b"first"
    assert [i.key for i in storage.list("w/")] == ["w/data.parquet"]


def test_list_is_ordered_and_filtered_by_prefix(storage: Storage) -> None:
    for key in ("b/2.csv", "a/x/1.csv", "ab/1.csv", "a/1.csv", "a/é.csv"):
        storage.write_bytes(key, key.encode())
    assert [i.key for i in storage.list("a/")] == ["a/1.csv", "a/x/1.csv", "a/é.csv"]
    assert [i.key for i in storage.list("a")] == ["a/1.csv", "a/x/1.csv", "a/é.csv", "ab/1.csv"]
    assert [i.key for i in storage.list("nothing/")] == []
    assert len(list(storage.list(""))) == 5


def test_list_pages_past_a_thousand_keys(storage: Storage) -> None:
    keys = [f"many/{i:05d}.csv" for i in range(1_005)]
    seed_objects(storage, keys, b"x")
    storage.write_bytes("many0", b"not under many/")
    assert [i.key for i in storage.list("many/")] == keys


def test_local_copy_holds_the_bytes(storage: Storage) -> None:
    storage.write_bytes("c/songs.csv", b"a,b\n1,2\n")
    with storage.local_copy("c/songs.csv") as path:
        assert path.read_bytes() == b"a,b\n1,2\n"
        assert path.suffix == ".csv"


def test_move_replaces_the_target_and_removes_the_source(storage: Storage) -> None:
    storage.write_bytes("raw/f.csv", b"new")
    storage.write_bytes("archive/f.csv", b"old")
    digest = storage.content_hash("raw/f.csv")
    storage.move("raw/f.csv", "archive/f.csv")
    assert not storage.exists("raw/f.csv")
    assert storage.read_bytes("archive/f.csv") == b"new"
    assert storage.content_hash("archive/f.csv") == digest


def test_delete_is_idempotent(storage: Storage) -> None:
    storage.write_bytes("d/x", b"x")
    storage.delete("d/x")
    storage.delete("d/x")
    assert not storage.exists("d/x")


def test_content_hash_follows_the_content(storage: Storage) -> None:
    storage.write_bytes("h/1", b"same")
    with storage.writer("h/2") as path:
        path.write_bytes(b"same")
    first = storage.content_hash("h/1")
    assert first == storage.content_hash("h/2")
    storage.write_bytes("h/1", b"different")
    assert storage.content_hash("h/1") != first


def test_keys_cannot_escape_the_lake(storage: Storage) -> None:
    with pytest.raises(StorageError):
        storage.write_bytes("../escape", b"x")
    with pytest.raises(StorageError):
        storage.read_bytes("/abs")


@pytest.mark.aws
def test_s3_uri_and_registry(s3_lake: AwsLake) -> None:
    storage = open_storage(s3_lake.lake + "/", endpoint=s3_lake.endpoint)
    assert isinstance(storage, S3Storage)
    assert storage.root == s3_lake.lake
    assert storage.uri("raw/users/users.csv") == f"{s3_lake.lake}/raw/users/users.csv"
    bare = S3Storage(f"s3://{s3_lake.bucket}", endpoint=s3_lake.endpoint)
    bare.write_bytes("top.txt", b"x")
    assert bare.uri("top.txt") == f"s3://{s3_lake.bucket}/top.txt"
    assert [i.key for i in bare.list("lake/")] == []
    assert [i.key for i in bare.list("")] == ["top.txt"]


@pytest.mark.aws
def test_s3_hash_of_foreign_objects_is_the_etag(s3_lake: AwsLake) -> None:
    s3 = client("s3", s3_lake.endpoint)
    s3.put_object(Bucket=s3_lake.bucket, Key="lake/raw/streams/x.csv", Body=b"abc")
    storage = s3_lake.storage()
    assert storage.content_hash("raw/streams/x.csv") == hashlib.md5(b"abc").hexdigest()  # noqa: S324


@pytest.mark.aws
def test_s3_multipart_upload_keeps_a_sha256(
    s3_lake: AwsLake, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("music_etl.adapters.storage.s3.MULTIPART_THRESHOLD", 5 * 1024 * 1024)
    data = bytes(range(256)) * (6 * 1024 * 1024 // 256)
    storage = s3_lake.storage()
    with storage.writer("big/file.csv") as path:
        path.write_bytes(data)
    head = client("s3", s3_lake.endpoint).head_object(
        Bucket=s3_lake.bucket, Key="lake/big/file.csv"
    )
    assert head["ETag"].strip('"').endswith("-2")
    assert storage.content_hash("big/file.csv") == hashlib.sha256(data).hexdigest()
    storage.move("big/file.csv", "big/moved.csv")
    assert storage.content_hash("big/moved.csv") == hashlib.sha256(data).hexdigest()
    with storage.local_copy("big/moved.csv") as path:
        assert path.read_bytes() == data
