"""The archive: every processed version of every stream file, and the order it was processed in.

- `archive/streams/<key>` holds the latest processed version of a landing key;
- `archive/versions/<hash16>/<key>` holds each earlier one (a file replaced under the
  same name keeps its old bytes);
- `archive/manifest/<seq>-<source id>-<hash16>.json` names each processed version in
  processing order, with the clock it was validated against: `rebuild` replays them.

A version is archived only if the bytes moved are the bytes that were validated: a file
rewritten while it was processed goes back to the landing zone for the next run.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from music_etl.adapters.storage.base import Storage
from music_etl.errors import SourceChanged
from music_etl.logic import layout


@dataclass(frozen=True, kw_only=True)
class Version:
    """One processed version of a landing key."""

    seq: int
    file_key: str
    content_hash: str
    processed_at: str
    """The processing clock it was validated against (ISO-8601)."""

    @property
    def clock(self) -> datetime | None:
        """`processed_at` as a datetime (None when unknown)."""
        return datetime.fromisoformat(self.processed_at) if self.processed_at else None


def archive(
    storage: Storage, raw_key: str, content_hash: str, clock: datetime, *, fingerprint: str
) -> bool:
    """Move a processed raw file into the archive; False if its bytes changed meanwhile.

    `fingerprint` is the storage's fingerprint of the bytes that were hashed (and so
    validated): only that object is moved, without reading it again. The manifest is
    written first: a crash before the move leaves the file in the landing zone, done in
    the ledger, and the next run's discovery archives it.
    """
    manifests = _manifest_keys(storage)
    manifest = _latest_if_same(manifests, raw_key, content_hash)
    if manifest is None:
        seq = max((layout.manifest_seq(k) for k in manifests), default=0) + 1
        manifest = layout.manifest_key(seq, raw_key, content_hash)
        body = {"file_key": raw_key, "content_hash": content_hash}
        body["processed_at"] = clock.isoformat()
        storage.write_bytes(manifest, json.dumps(body, sort_keys=True).encode())
    latest = layout.archive_key(raw_key)
    _keep_earlier(storage, latest, content_hash)
    try:
        storage.move(raw_key, latest, if_fingerprint=fingerprint)
    except SourceChanged:
        storage.delete(manifest)
        return False
    return True


def versions(storage: Storage) -> list[Version]:
    """Every processed version, in processing order."""
    found = []
    for key in _manifest_keys(storage):
        data = json.loads(storage.read_bytes(key))
        found.append(
            Version(
                seq=layout.manifest_seq(key),
                file_key=str(data["file_key"]),
                content_hash=str(data["content_hash"]),
                processed_at=str(data.get("processed_at", "")),
            )
        )
    return sorted(found, key=lambda v: v.seq)


def locate(storage: Storage, version: Version) -> str | None:
    """Where the bytes of `version` are now (archive, earlier versions, or still landing)."""
    candidates: Sequence[str] = (
        layout.archive_key(version.file_key),
        layout.version_key(version.file_key, version.content_hash),
        version.file_key,
    )
    for key in candidates:
        if storage.exists(key) and storage.content_hash(key) == version.content_hash:
            return key
    return None


def _manifest_keys(storage: Storage) -> list[str]:
    """Every manifest's key (one listing; callers hold the lake lock)."""
    return [i.key for i in storage.list(layout.ARCHIVE_MANIFEST) if i.key.endswith(".json")]


def _latest_if_same(manifests: list[str], raw_key: str, content_hash: str) -> str | None:
    """The key's latest manifest if it names this version (a crash before its move)."""
    sid = layout.source_id(raw_key)
    mine = [k for k in manifests if layout.parse_manifest_key(k)[1] == sid]
    if not mine:
        return None
    latest = max(mine, key=layout.manifest_seq)
    return latest if layout.parse_manifest_key(latest)[2] == content_hash[:16] else None


def _keep_earlier(storage: Storage, latest: str, content_hash: str) -> None:
    """Move an earlier version out of the way of `latest` (same bytes: nothing to keep)."""
    if not storage.exists(latest):
        return
    earlier = storage.content_hash(latest)
    if earlier != content_hash:
        storage.move(latest, layout.version_key(latest, earlier))
