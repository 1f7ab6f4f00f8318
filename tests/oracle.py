"""An independent, plain-Python reading of the data contract in `shared/DESIGN.md`.

Nothing here imports the package under test, Polars or DuckDB: the rules are
written again, slowly and obviously, from the design document, so that the
pipeline's answers can be checked against a second implementation.

Inputs are raw bytes (songs.csv, users.csv and the stream files in processing
order) and the processing clock; the result holds every stream row's verdict,
each file's fate and the three output tables as plain dictionaries.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

INT64_MAX = 2**63 - 1
TRIM = " \t"
BOM = "\ufeff"
FUTURE_SLACK = timedelta(hours=24)
DEFAULT_THRESHOLD = 0.05

STREAM_COLUMNS = ("user_id", "track_id", "listen_time")
SONG_COLUMNS = ("track_id", "track_name", "artists", "track_genre", "duration_ms")
USER_COLUMNS = ("user_id",)

#: Row-level reasons, in the order they are checked.
REASONS = (
    "null_field",
    "bad_user_id",
    "bad_timestamp",
    "future_timestamp",
    "unknown_track",
    "unknown_user",
    "duplicate_event",
)

# ASCII digits only (`\d` would accept other scripts' digits); `fullmatch` because `$`
# would also match before a trailing newline.
_INTEGER = re.compile(r"[0-9]+")
_TIMESTAMP = re.compile(
    r"(?P<y>[0-9]{4})-(?P<mo>[0-9]{2})-(?P<d>[0-9]{2})[ T]"
    r"(?P<h>[0-9]{2}):(?P<mi>[0-9]{2}):(?P<s>[0-9]{2})Z?"
)


# --------------------------------------------------------------------------- field rules


def clean(value: str | None) -> str | None:
    """A field trimmed of spaces and tabs; empty (or absent) becomes None."""
    if value is None:
        return None
    value = value.strip(TRIM)
    return value or None


def parse_int64(text: str | None) -> int | None:
    """A non-negative decimal integer that fits a signed 64-bit integer, else None."""
    if text is None or not _INTEGER.fullmatch(text):
        return None
    number = int(text)
    return number if number <= INT64_MAX else None


def parse_timestamp(text: str | None) -> datetime | None:
    """`YYYY-MM-DD[ T]hh:mm:ss[Z]` naming a real calendar instant (naive UTC), else None."""
    if text is None:
        return None
    match = _TIMESTAMP.fullmatch(text)
    if not match:
        return None
    parts = [int(match[name]) for name in ("y", "mo", "d", "h", "mi", "s")]
    try:
        # datetime() itself refuses year 0, month 13, 30 February, hour 24, second 60.
        return datetime(*parts)
    except ValueError:
        return None


# --------------------------------------------------------------------------- CSV reading


class MissingColumnError(Exception):
    """The header lacks a required column (a file-level rejection)."""


def normalize_header(name: str) -> str:
    """A header cell without BOM or padding, lower-cased."""
    return name.replace(BOM, "").strip(TRIM).lower()


def read_csv(data: bytes, required: Sequence[str]) -> list[tuple[int, dict[str, str | None]]]:
    """(line number, raw values of `required`) per data row; the header is line 1.

    Bytes that are not UTF-8 become U+FFFD; a row with too few fields has None in the
    missing ones; extra fields and extra columns are ignored.
    """
    text = data.decode("utf-8", errors="replace")
    csv.field_size_limit(max(csv.field_size_limit(), len(text) + 1))
    rows = csv.reader(io.StringIO(text, newline=""))
    header = next(rows, None) or []
    names = [normalize_header(cell) for cell in header]
    missing = [column for column in required if column not in names]
    if missing:
        raise MissingColumnError(", ".join(missing))
    where = {column: names.index(column) for column in required}
    out = []
    for number, row in enumerate(rows, start=2):
        values = {c: row[i] if i < len(row) else None for c, i in where.items()}
        out.append((number, values))
    return out


# --------------------------------------------------------------------------- dimensions


@dataclass(frozen=True)
class Song:
    track_id: str
    genre: str
    track_name: str | None
    artists: str | None
    duration_ms: int


def load_songs(data: bytes) -> dict[tuple[str, str], Song]:
    """Joinable songs by (track_id, genre), in file order; the first row of a pair wins."""
    songs: dict[tuple[str, str], Song] = {}
    for _line, raw in read_csv(data, SONG_COLUMNS):
        track_id, genre = clean(raw["track_id"]), clean(raw["track_genre"])
        duration = parse_int64(clean(raw["duration_ms"]))
        if track_id is None or genre is None or duration is None:
            continue
        if (track_id, genre) in songs:
            continue
        songs[(track_id, genre)] = Song(
            track_id=track_id,
            genre=genre,
            track_name=clean(raw["track_name"]),
            artists=clean(raw["artists"]),
            duration_ms=duration,
        )
    return songs


def load_users(data: bytes) -> set[int]:
    """The valid user ids of users.csv."""
    users = set()
    for _line, raw in read_csv(data, USER_COLUMNS):
        user_id = parse_int64(clean(raw["user_id"]))
        if user_id is not None:
            users.add(user_id)
    return users


# --------------------------------------------------------------------------- streams


@dataclass(frozen=True)
class ValidRow:
    user_id: int
    track_id: str
    listen_time: datetime
    source_file: str
    source_line: int

    @property
    def listen_date(self) -> date:
        return self.listen_time.date()


@dataclass(frozen=True)
class BadRow:
    """A rejected row with its raw (untrimmed) values, None where the field was absent."""

    user_id: str | None
    track_id: str | None
    listen_time: str | None
    reason: str
    source_file: str
    source_line: int


@dataclass
class FileVerdict:
    key: str
    status: str  # "done" | "failed"
    error: str = ""  # "" | "missing_column" | "too_many_bad_rows"
    rows_in: int = 0
    valid: list[ValidRow] = field(default_factory=list)
    bad: list[BadRow] = field(default_factory=list)

    @property
    def rows_valid(self) -> int:
        return len(self.valid)

    @property
    def bad_by_reason(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for row in self.bad:
            counts[row.reason] = counts.get(row.reason, 0) + 1
        return dict(sorted(counts.items()))


def judge(
    raw: dict[str, str | None],
    clock: datetime,
    tracks: set[str],
    users: set[int],
    seen: set[tuple[int, str, datetime]],
) -> tuple[str, tuple[int, str, datetime] | None]:
    """The first failed reason ("" when valid) and the parsed key of a valid row."""
    user_text, track_id, time_text = (clean(raw[c]) for c in STREAM_COLUMNS)
    user_id = parse_int64(user_text)
    listen_time = parse_timestamp(time_text)
    key = (user_id, track_id, listen_time)
    checks = (  # in contract order: the first failing rule gives the reason
        ("null_field", None in (user_text, track_id, time_text)),
        ("bad_user_id", user_id is None),
        ("bad_timestamp", listen_time is None),
        ("future_timestamp", listen_time is not None and listen_time > clock + FUTURE_SLACK),
        ("unknown_track", track_id not in tracks),
        ("unknown_user", user_id not in users),
        ("duplicate_event", key in seen),
    )
    for reason, failed in checks:
        if failed:
            return reason, None
    assert user_id is not None and track_id is not None and listen_time is not None
    return "", (user_id, track_id, listen_time)


def validate_file(
    key: str,
    data: bytes,
    *,
    clock: datetime,
    tracks: set[str],
    users: set[int],
    accepted: set[tuple[int, str, datetime]],
    threshold: float,
) -> FileVerdict:
    """One stream file against the contract; `accepted` holds keys of earlier loaded files."""
    try:
        rows = read_csv(data, STREAM_COLUMNS)
    except MissingColumnError:
        return FileVerdict(key=key, status="failed", error="missing_column")
    verdict = FileVerdict(key=key, status="done", rows_in=len(rows))
    seen = set(accepted)
    for line, raw in rows:
        reason, event = judge(raw, clock, tracks, users, seen)
        if event is None:
            verdict.bad.append(
                BadRow(raw["user_id"], raw["track_id"], raw["listen_time"], reason, key, line)
            )
        else:
            seen.add(event)
            verdict.valid.append(ValidRow(*event, source_file=key, source_line=line))
    if verdict.rows_in and len(verdict.bad) / verdict.rows_in > threshold:
        verdict.status, verdict.error = "failed", "too_many_bad_rows"
    return verdict


# --------------------------------------------------------------------------- outputs


@dataclass
class OracleResult:
    files: list[FileVerdict]
    daily_genre_kpis: list[dict[str, object]]
    top_songs: list[dict[str, object]]
    top_genres: list[dict[str, object]]
    #: The joinable song catalogue, by (track_id, genre).
    songs: dict[tuple[str, str], Song] = field(default_factory=dict)

    @property
    def valid(self) -> list[ValidRow]:
        """Rows loaded into the lake (files that failed whole load nothing)."""
        return [row for f in self.files if f.status == "done" for row in f.valid]

    @property
    def bad(self) -> list[BadRow]:
        """Rejected rows of every file, those of files rejected whole included."""
        return [row for f in self.files for row in f.bad]

    @property
    def days(self) -> list[str]:
        return sorted({row.listen_date.isoformat() for row in self.valid})


def outputs(
    valid: Sequence[ValidRow], songs: dict[tuple[str, str], Song]
) -> tuple[list[dict[str, object]], list[dict[str, object]], list[dict[str, object]]]:
    """daily_genre_kpis, top_songs and top_genres of the valid rows."""
    genres_of: dict[str, list[Song]] = {}
    for song in songs.values():
        genres_of.setdefault(song.track_id, []).append(song)
    listens: dict[tuple[str, str], int] = {}
    listeners: dict[tuple[str, str], set[int]] = {}
    total: dict[tuple[str, str], int] = {}
    plays: dict[tuple[str, str], dict[str, int]] = {}
    for row in valid:
        day = row.listen_date.isoformat()
        for song in genres_of.get(row.track_id, []):
            group = (day, song.genre)
            listens[group] = listens.get(group, 0) + 1
            listeners.setdefault(group, set()).add(row.user_id)
            total[group] = total.get(group, 0) + song.duration_ms
            counts = plays.setdefault(group, {})
            counts[row.track_id] = counts.get(row.track_id, 0) + 1
    kpis = [
        {
            "date": day,
            "genre": genre,
            "listen_count": listens[(day, genre)],
            "unique_listeners": len(listeners[(day, genre)]),
            "total_listening_time": total[(day, genre)],
            "avg_listening_time": total[(day, genre)] / len(listeners[(day, genre)]),
        }
        for day, genre in sorted(listens)
    ]
    top_songs = []
    for (day, genre), counts in sorted(plays.items()):
        ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:3]
        for rank, (track_id, count) in enumerate(ranked, start=1):
            song = songs[(track_id, genre)]
            top_songs.append(
                {
                    "date": day,
                    "genre": genre,
                    "rank": rank,
                    "track_id": track_id,
                    "track_name": song.track_name,
                    "artists": song.artists,
                    "play_count": count,
                }
            )
    top_genres = []
    for day in sorted({day for day, _genre in listens}):
        genres = sorted((g for d, g in listens if d == day), key=lambda g: (-listens[(day, g)], g))
        for rank, genre in enumerate(genres[:5], start=1):
            top_genres.append(
                {"date": day, "rank": rank, "genre": genre, "listen_count": listens[(day, genre)]}
            )
    return kpis, top_songs, top_genres


def run_oracle(
    songs_csv: bytes,
    users_csv: bytes,
    streams: Sequence[tuple[str, bytes]],
    clock: datetime,
    threshold: float = DEFAULT_THRESHOLD,
) -> OracleResult:
    """Everything the contract says the pipeline must produce for these inputs.

    `streams` are (file key, bytes) in processing order; `clock` is naive UTC.
    """
    songs = load_songs(songs_csv)
    tracks = {track_id for track_id, _genre in songs}
    users = load_users(users_csv)
    accepted: set[tuple[int, str, datetime]] = set()
    files = []
    for key, data in streams:
        verdict = validate_file(
            key,
            data,
            clock=clock,
            tracks=tracks,
            users=users,
            accepted=accepted,
            threshold=threshold,
        )
        if verdict.status == "done":
            accepted |= {(r.user_id, r.track_id, r.listen_time) for r in verdict.valid}
        files.append(verdict)
    result = OracleResult(
        files=files, daily_genre_kpis=[], top_songs=[], top_genres=[], songs=songs
    )
    kpis, top_songs, top_genres = outputs(result.valid, songs)
    result.daily_genre_kpis, result.top_songs, result.top_genres = kpis, top_songs, top_genres
    return result


def top_songs_items(top_songs: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """`top_songs` rows as `TopSongsPerGenre` items: one ranked list per (date, genre)."""
    grouped: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in sorted(top_songs, key=lambda r: (str(r["date"]), str(r["genre"]), r["rank"])):
        song = {k: row[k] for k in ("rank", "track_id", "track_name", "artists", "play_count")}
        grouped.setdefault((str(row["date"]), str(row["genre"])), []).append(song)
    return [{"date": d, "genre": g, "songs": songs} for (d, g), songs in grouped.items()]
