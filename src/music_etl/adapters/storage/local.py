"""The lake on a local folder."""

from __future__ import annotations

import hashlib
import os
import re
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from music_etl.adapters.storage.base import ObjectInfo
from music_etl.errors import SourceChanged, StorageError
from music_etl.logic.layout import WRITTEN_PREFIXES

_CHUNK = 1 << 20
#: Temp files this writer creates: `.music-etl-tmp-` and mkstemp's 8 random characters.
_TMP = ".music-etl-tmp-"
#: A file returned to the landing zone when a newer one took its name: a hidden name,
#: so it is kept but never taken (`status` lists it).
_TMP_PARKED = "_superseded-"
_TMP_NAME = re.compile(r"\.music-etl-tmp-[a-z0-9_]{8}")


class LocalStorage:
    """A folder as the lake; writes go to a temp file in the same folder, then `rename`."""

    def __init__(self, root: str | Path) -> None:
        if not str(root).strip():
            raise StorageError("The lake path is empty: pass --lake with a folder, e.g. ./lake.")
        self._root = Path(root).expanduser().resolve()
        self.root = str(self._root)
        if self._root.exists() and not self._root.is_dir():
            raise StorageError(f"The lake {self.root} is a file, not a folder: check --lake.")

    def close(self) -> None:
        """Nothing to release: every call opens and closes its own files."""

    def path(self, key: str) -> Path:
        """The file that holds `key`."""
        if key.startswith("/") or ".." in key.split("/"):
            raise StorageError(f"Key {key!r} escapes the lake {self.root}.")
        return self._root / key

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        """Every regular file under `prefix`, in key order.

        Our own temp files, links (to files or folders, dangling or not) and special
        files (FIFOs, sockets, devices) are not objects: `irregular` names them.
        """
        found = [
            ObjectInfo(key=key, size=info.st_size, modified=info.st_mtime)
            for key, info in self._walk(prefix)
            if stat.S_ISREG(info.st_mode) and not _TMP_NAME.fullmatch(key.rsplit("/", 1)[-1])
        ]
        yield from sorted(found, key=lambda info: info.key)

    def irregular(self, prefix: str) -> Iterator[tuple[str, str]]:
        """Entries under `prefix` that are not regular files, with what they are.

        Nothing behind them is opened or followed: a FIFO would block a reader, a link
        could lead out of the lake.
        """
        for key, info in sorted(self._walk(prefix)):
            kind = _kind(info.st_mode)
            if kind != "file":
                yield key, kind

    def _walk(self, prefix: str) -> Iterator[tuple[str, os.stat_result]]:
        """(key, lstat) of every non-directory entry under `prefix`; links are not followed."""
        base = self.path(prefix.rsplit("/", 1)[0]) if "/" in prefix else self._root
        if not base.is_dir() or base.is_symlink():
            return
        for dirpath, dirs, files in os.walk(base):
            # os.walk lists a link to a folder among `dirs` but does not descend into it.
            for name in [*files, *(d for d in dirs if Path(dirpath, d).is_symlink())]:
                full = Path(dirpath) / name
                key = full.relative_to(self._root).as_posix()
                if not key.startswith(prefix):
                    continue
                try:
                    yield key, full.lstat()
                except FileNotFoundError:
                    continue  # removed while we looked

    def sweep_temporaries(self) -> int:
        """Delete temp files our killed writers left; return how many.

        Only names this class creates, only under the prefixes the pipeline writes
        (never `raw/`), and never through a link.
        """
        swept = 0
        for prefix in WRITTEN_PREFIXES:
            for key, info in self._walk(prefix):
                if stat.S_ISREG(info.st_mode) and _TMP_NAME.fullmatch(key.rsplit("/", 1)[-1]):
                    self.path(key).unlink(missing_ok=True)
                    swept += 1
        return swept

    def exists(self, key: str) -> bool:
        """Whether `key` is a regular file (a link or a FIFO is not an object)."""
        return self._regular(key) is not None

    def _regular(self, key: str) -> Path | None:
        path = self.path(key)
        try:
            return path if stat.S_ISREG(path.lstat().st_mode) else None
        except (FileNotFoundError, NotADirectoryError):
            return None

    def read_bytes(self, key: str) -> bytes:
        """The whole file."""
        return self._file(key).read_bytes()

    def _file(self, key: str) -> Path:
        path = self._regular(key)
        if path is None:
            raise StorageError(f"{key} is not in the lake {self.root} (as a regular file).")
        return path

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
        yield self._file(key)

    def uri(self, key: str) -> str:
        """The file's absolute path."""
        return str(self.path(key))

    def content_hash(self, key: str) -> str:
        """SHA-256 of the file's bytes."""
        digest = hashlib.sha256()
        with self._file(key).open("rb") as handle:
            while chunk := handle.read(_CHUNK):
                digest.update(chunk)
        return digest.hexdigest()

    def fingerprint(self, key: str) -> str:
        """Inode, size and mtime (ns): what a rename keeps and any rewrite or append changes."""
        info = self._file(key).lstat()
        return f"{info.st_ino}-{info.st_size}-{info.st_mtime_ns}"

    def move(self, src: str, dst: str, *, if_fingerprint: str = "") -> None:
        """Rename `src` to `dst`, replacing it (only the very file fingerprinted, if asked).

        The rename moves whatever file holds the name at that instant, so the check is
        made on the moved file; another one is renamed back (or kept beside `src`).
        """
        if if_fingerprint and self.fingerprint(src) != if_fingerprint:
            raise SourceChanged(f"{src} changed after it was read; it stays where it is.")
        target = self.path(dst)
        target.parent.mkdir(parents=True, exist_ok=True)
        self.path(src).replace(target)
        if if_fingerprint and self.fingerprint(dst) != if_fingerprint:
            self._put_back(dst, src)
            raise SourceChanged(f"{src} changed while it was moved; it stays in the landing zone.")

    def _put_back(self, moved: str, src: str) -> None:
        """Return a file renamed by mistake; beside `src` if a newer one took the name."""
        back = self.path(src)
        if back.exists():
            back = back.with_name(f"{_TMP_PARKED}{back.name}")
        self.path(moved).replace(back)

    def delete(self, key: str) -> None:
        """Remove the file if it is there."""
        self.path(key).unlink(missing_ok=True)


def _kind(mode: int) -> str:
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISLNK(mode):
        return "symlink"
    if stat.S_ISFIFO(mode):
        return "fifo"
    if stat.S_ISSOCK(mode):
        return "socket"
    return "device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "other"


def _fsync(path: Path) -> None:
    with path.open("rb") as handle:
        os.fsync(handle.fileno())
