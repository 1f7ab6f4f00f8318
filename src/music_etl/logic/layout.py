"""Where each dataset lives in the lake: the same keys on a local folder and on S3."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import date

RAW_USERS = "raw/users/users.csv"
RAW_SONGS = "raw/songs/songs.csv"
RAW_STREAMS = "raw/streams/"
ARCHIVE_STREAMS = "archive/streams/"
#: Earlier processed versions of a stream file, by content hash (`rebuild` replays them).
ARCHIVE_VERSIONS = "archive/versions/"
#: One small JSON document per processed version, named in processing order.
ARCHIVE_MANIFEST = "archive/manifest/"
VALIDATED_STREAMS = "validated/streams/"
BAD_RECORDS = "bad-records/"
PROCESSED = "processed/"
#: How the bad records of a rejected file version end (`rejected_bad_records_key`).
REJECTED_SUFFIX = ".rejected.parquet"
#: The object that makes a folder or S3 prefix a lake (`init` and `generate` write it).
LAKE_MARKER = "_state/lake.json"
#: Top-level prefixes that hold derived state (recreated by `rebuild`).
DERIVED_PREFIXES = ("validated/", BAD_RECORDS, PROCESSED)
#: Top-level prefixes the pipeline writes to (its temporaries are swept only there).
WRITTEN_PREFIXES = (*DERIVED_PREFIXES, "archive/", "_state/")
#: Each dimension and its raw file in the landing zone.
RAW_DIMENSIONS = {"users": RAW_USERS, "songs": RAW_SONGS}
#: Prefixes `init` creates.
LAYOUT = ("raw/users/", "raw/songs/", RAW_STREAMS, "validated/", BAD_RECORDS, PROCESSED, "archive/")

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def is_stream_file(key: str) -> bool:
    """Whether `key` is a stream file waiting in the landing zone."""
    return key.startswith(RAW_STREAMS) and key.lower().endswith(".csv")


def source_id(raw_key: str) -> str:
    """A file-name-safe id for a raw stream file, stable for its key.

    >>> source_id("raw/streams/2024/streams1.csv")
    '2024_streams1-9c1ed577'
    """
    landing = original_key(raw_key)
    rest = landing.removeprefix(RAW_STREAMS)
    stem = rest[:-4] if rest.lower().endswith(".csv") else rest
    digest = hashlib.sha256(landing.encode()).hexdigest()[:8]
    # Never a leading "." or "_": readers (Spark, Hadoop, DuckDB globs) skip such names.
    return f"{_UNSAFE.sub('_', stem).strip('._')[:80]}-{digest}"


def archive_key(raw_key: str) -> str:
    """The archive key of a raw stream file."""
    return ARCHIVE_STREAMS + raw_key.removeprefix(RAW_STREAMS)


def version_key(raw_key: str, content_hash: str) -> str:
    """Where an earlier processed version of a stream file is kept.

    >>> version_key("raw/streams/a.csv", "9f86d081884c7d659a2feaa0c55ad015")
    'archive/versions/9f86d081884c7d65/a.csv'
    """
    rest = original_key(raw_key).removeprefix(RAW_STREAMS)
    return f"{ARCHIVE_VERSIONS}{content_hash[:16]}/{rest}"


def manifest_key(seq: int, raw_key: str, content_hash: str) -> str:
    """The manifest of the `seq`-th processed version: its order is in its name."""
    return f"{ARCHIVE_MANIFEST}{seq:012d}-{source_id(raw_key)}-{content_hash[:16]}.json"


def parse_manifest_key(key: str) -> tuple[int, str, str]:
    """(processing order, source id, hash16) of a `manifest_key`.

    >>> parse_manifest_key("archive/manifest/000000000007-a-9c1ed577-9f86d081884c7d65.json")
    (7, 'a-9c1ed577', '9f86d081884c7d65')
    """
    name = key.removeprefix(ARCHIVE_MANIFEST).removesuffix(".json")
    seq, _, rest = name.partition("-")
    sid, _, digest = rest.rpartition("-")
    return int(seq), sid, digest


def manifest_seq(key: str) -> int:
    """The processing order a manifest key names."""
    return parse_manifest_key(key)[0]


def original_key(key: str) -> str:
    """The landing-zone key of a raw, archived or earlier-version stream file."""
    if key.startswith(ARCHIVE_STREAMS):
        return RAW_STREAMS + key.removeprefix(ARCHIVE_STREAMS)
    if key.startswith(ARCHIVE_VERSIONS):
        return RAW_STREAMS + key.removeprefix(ARCHIVE_VERSIONS).split("/", 1)[1]
    return key


def validated_dimension_key(dataset: str) -> str:
    """The Parquet snapshot of a validated dimension."""
    return f"validated/{dataset}/{dataset}.parquet"


def dimension_marker_key(dataset: str) -> str:
    """Records which raw content the dimension snapshot was made from."""
    return f"validated/{dataset}/_SOURCE"


def staged_dimension_key(dataset: str) -> str:
    """Where a new dimension snapshot waits until it is accepted."""
    return f"validated/{dataset}/_staged/{dataset}.parquet"


def staged_dimension_sid(dataset: str) -> str:
    """The source id that names a new dimension's bad records until it is accepted."""
    return f"{dataset}.staged"


def dimension_commit_key(dataset: str) -> str:
    """Present while an accepted dimension snapshot is being swapped in."""
    return f"validated/{dataset}/_COMMIT"


def dimension_recompute_key(dataset: str) -> str:
    """Present while the days computed against an older snapshot await recomputing."""
    return f"validated/{dataset}/_RECOMPUTE"


def validated_day_prefix(day: date) -> str:
    """The partition folder of one listen date."""
    return f"{VALIDATED_STREAMS}listen_date={day.isoformat()}/"


def validated_stream_key(day: date, sid: str) -> str:
    """The rows of one source file for one day: replacing them is one overwrite."""
    return f"{validated_day_prefix(day)}{sid}.parquet"


def bad_records_key(dataset: str, reason: str, sid: str) -> str:
    """The rejected rows of one source with one reason."""
    return f"{BAD_RECORDS}{dataset}/{reason}/{sid}.parquet"


def rejected_bad_records_key(dataset: str, reason: str, sid: str) -> str:
    """The bad rows with one reason of a source version rejected by the bad-row threshold.

    Beside, never over, the bad records of the key's earlier loaded version, which
    stay valid while that version's rows stay loaded. A source id ends in its
    digest, so no other source's key can end in `.rejected.parquet`.

    >>> rejected_bad_records_key("streams", "unknown_track", "streams1-9c1ed577")
    'bad-records/streams/unknown_track/streams1-9c1ed577.rejected.parquet'
    """
    return f"{BAD_RECORDS}{dataset}/{reason}/{sid}{REJECTED_SUFFIX}"


def processed_key(table: str, day: date) -> str:
    """The one Parquet file of an output table for one day."""
    return f"{PROCESSED}{table}/date={day.isoformat()}/part-0.parquet"


# --------------------------------------------------------------------------- parsing keys
# Each parser reads back exactly what the builder above writes; None for any other key.

_PARQUET = ".parquet"
_LISTEN_DATE = "listen_date="
_DATE = "date="


@dataclass(frozen=True, kw_only=True)
class BadRecordsKey:
    """What a `bad_records_key` or `rejected_bad_records_key` names."""

    dataset: str
    reason: str
    sid: str
    rejected: bool
    """Whether the key holds a version the bad-row threshold rejected."""


def parse_validated_stream_key(key: str) -> tuple[date, str] | None:
    """(listen date, source id) of a `validated_stream_key`; None for any other key.

    >>> parse_validated_stream_key("validated/streams/listen_date=2024-06-01/a-9c1ed577.parquet")
    (datetime.date(2024, 6, 1), 'a-9c1ed577')
    """
    rest = key.removeprefix(VALIDATED_STREAMS)
    folder, slash, name = rest.partition("/")
    day = _day(folder, _LISTEN_DATE)
    if rest == key or not slash or day is None or "/" in name or not name.endswith(_PARQUET):
        return None
    sid = name.removesuffix(_PARQUET)
    return (day, sid) if sid else None


def listen_date_of(key: str) -> date | None:
    """The listen date of a key under a `validated_day_prefix`; None for any other key.

    >>> listen_date_of("validated/streams/listen_date=2024-06-01/a-9c1ed577.parquet")
    datetime.date(2024, 6, 1)
    """
    rest = key.removeprefix(VALIDATED_STREAMS)
    folder, slash, _ = rest.partition("/")
    return _day(folder, _LISTEN_DATE) if rest != key and slash else None


def parse_bad_records_key(key: str) -> BadRecordsKey | None:
    """What a bad-records key names; None for any other key.

    >>> parse_bad_records_key("bad-records/streams/unknown_track/a-9c1ed577.parquet").sid
    'a-9c1ed577'
    """
    parts = key.removeprefix(BAD_RECORDS).split("/")
    if not key.startswith(BAD_RECORDS) or len(parts) != 3 or not all(parts):
        return None
    dataset, reason, name = parts
    rejected = name.endswith(REJECTED_SUFFIX)
    sid = name.removesuffix(REJECTED_SUFFIX if rejected else _PARQUET)
    if not name.endswith(_PARQUET) or not sid:
        return None
    return BadRecordsKey(dataset=dataset, reason=reason, sid=sid, rejected=rejected)


def parse_processed_key(key: str) -> tuple[str, date] | None:
    """(table, day) of a `processed_key`; None for any other key.

    >>> parse_processed_key("processed/top_songs/date=2024-06-01/part-0.parquet")
    ('top_songs', datetime.date(2024, 6, 1))
    """
    parts = key.removeprefix(PROCESSED).split("/")
    if not key.startswith(PROCESSED) or len(parts) != 3 or not parts[0]:
        return None
    day = _day(parts[1], _DATE)
    return (parts[0], day) if day is not None and parts[2].endswith(_PARQUET) else None


def _day(folder: str, name: str) -> date | None:
    """The date of a `<name>YYYY-MM-DD` partition folder, None if it is not one."""
    text = folder.removeprefix(name)
    if text == folder or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None
