"""The lake on a local folder."""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from music_etl.adapters.storage.base import ObjectInfo
from music_etl.errors import StorageError

_CHUNK = 1 << 20
_TMP = ".tmp-"


class LocalStorage:
    """A folder as the lake; writes go to a temp file in the same folder, then `rename`."""

    def __init__(self, root: str | Path) -> None:
        self._root = Path(root).expanduser().resolve()
        self.root = str(self._root)

    def path(self, key: str) -> Path:
        """The file that holds `key`."""
        if key.startswith("/") or ".." in key.split("/"):
            raise StorageError(f"Key {key!r} escapes the lake {self.root}.")
        return self._root / key

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        """Every file under `prefix`, in key order; temp files are never listed."""
        base = self.path(prefix.rsplit("/", 1)[0]) if "/" in prefix else self._root
        if not base.is_dir():
            return
        found = []
        for dirpath, _dirs, files in os.walk(base):
            for name in files:
                if name.startswith(_TMP):
                    continue
                full = Path(dirpath) / name
                key = full.relative_to(self._root).as_posix()
                if key.startswith(prefix):
                    found.append(ObjectInfo(key=key, size=full.stat().st_size))
        yield from sorted(found, key=lambda info: info.key)

    def sweep_temporaries(self) -> int:
        """Delete `.tmp-*` files that a killed writer left; return how many."""
        swept = 0
        for path in self._root.rglob(f"{_TMP}*"):
            path.unlink(missing_ok=True)
            swept += 1
        return swept

    def exists(self, key: str) -> bool:
        """Whether `key` is a file."""
        return self.path(key).is_file()

    def read_bytes(self, key: str) -> bytes:
        """The whole file."""
        try:
            return self.path(key).read_bytes()
        except FileNotFoundError as exc:
            raise StorageError(f"{key} is not in the lake {self.root}.") from exc

    def write_bytes(self, key: str, data: bytes) -> None:
        """Create or replace `key` atomically."""
        with self.writer(key) as tmp:
            tmp.write_bytes(data)

    @contextmanager
    def writer(self, key: str) -> Iterator[Path]:
        """Yield a temp path beside `key`; rename it into place on success."""
        target = self.path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=_TMP, dir=target.parent)
        os.close(fd)
        tmp = Path(name)
        try:
            yield tmp
            _fsync(tmp)
            tmp.replace(target)
        finally:
            tmp.unlink(missing_ok=True)

    @contextmanager
    def local_copy(self, key: str) -> Iterator[Path]:
        """The file itself: no copy needed locally."""
        path = self.path(key)
        if not path.is_file():
            raise StorageError(f"{key} is not in the lake {self.root}.")
        yield path

    def uri(self, key: str) -> str:
        """The file's absolute path."""
        return str(self.path(key))

    def content_hash(self, key: str) -> str:
        """SHA-256 of the file's bytes."""
        digest = hashlib.sha256()
        with self.path(key).open("rb") as handle:
            while chunk := handle.read(_CHUNK):
                digest.update(chunk)
        return digest.hexdigest()

    def move(self, src: str, dst: str) -> None:
        """Rename `src` to `dst`, replacing it."""
        target = self.path(dst)
        target.parent.mkdir(parents=True, exist_ok=True)
        self.path(src).replace(target)

    def delete(self, key: str) -> None:
        """Remove the file if it is there."""
        self.path(key).unlink(missing_ok=True)


def _fsync(path: Path) -> None:
    with path.open("rb") as handle:
        os.fsync(handle.fileno())
