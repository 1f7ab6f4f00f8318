"""A synthetic landing zone: users, a Spotify-like song catalogue, stream files with bad rows.

Every bad row is planted on purpose and counted, so a validation run can be checked
against `GenerateReport.bad_rows` exactly. Valid events never repeat a
`(user_id, track_id, listen_time)`; only planted `duplicate_event` rows do.

Example:
    >>> from music_etl.adapters.storage.local import LocalStorage
    >>> report = generate(LocalStorage("lake"), streams=1_000, files=2, days=3, seed=7)
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import polars as pl

from music_etl.adapters.storage.base import Storage
from music_etl.logic.contract import STREAMS
from music_etl.logic.layout import RAW_SONGS, RAW_STREAMS, RAW_USERS
from music_etl.sample.vocabulary import (
    ALBUMS,
    ARTISTS,
    BAD_TIMES,
    BAD_USER_IDS,
    BASE62,
    COUNTRIES,
    FIRST,
    FUTURE_DAYS,
    GENRES,
    LAST,
    ROMAN,
    SONG_COLUMNS,
    TITLES,
    UNIT_FEATURES,
    WORDS,
)

Ints = npt.NDArray[np.int64]

# Row kinds: 0 is a valid event, k > 0 the k-th reason of the streams contract, in order.
PLANTED = STREAMS.reasons
_BLANKS = (None, " ", "\t", " \t ")
_PADS = (" ", "\t", "  ", " \t")
_ZEROS = ("0", "00", "000", "0000000")
_UNKNOWN_USERS = np.array([0, 10**12, 2**63 - 1], dtype=np.int64)

VALID, NULL, BAD_USER, BAD_TIME, FUTURE, UNKNOWN_TRACK, UNKNOWN_USER, DUPLICATE = range(8)
# Variant bits of valid spellings: `T`, `Z`, leading zeros, padded user, track, time.
_T, _Z, _ZEROED, _PAD_USER, _PAD_TRACK, _PAD_TIME = 1, 2, 4, 8, 16, 32
_VARIANT_SHARE = 0.01
_MULTI_GENRE_SHARE = 0.15
_TRACK_ZIPF, _USER_ZIPF = 0.9, 0.6
_DAY = 86_400
_PLACED = (FUTURE, UNKNOWN_USER, UNKNOWN_TRACK)
_MAX_REDRAWS = 50


@dataclass(frozen=True, kw_only=True)
class GenerateReport:
    """What `generate` wrote and how many bad stream rows of each reason it planted."""

    keys: tuple[str, ...]
    stream_keys: tuple[str, ...]
    users: int
    song_rows: int
    tracks: int
    multi_genre_tracks: int
    duplicate_song_rows: int
    stream_rows: int
    rows_per_file: dict[str, int]
    unusual_spellings: int
    bad_rows: dict[str, int]
    bad_rows_per_file: dict[str, dict[str, int]]

    @property
    def valid_rows(self) -> int:
        """Stream rows the contract accepts."""
        return self.stream_rows - sum(self.bad_rows.values())


@dataclass(frozen=True, kw_only=True)
class _Catalog:
    frame: pl.DataFrame
    track_ids: list[str]
    unknown_ids: list[str]
    by_rank: Ints
    multi_genre: int
    duplicates: int


@dataclass(frozen=True, kw_only=True)
class _Sizes:
    streams: int
    files: int
    days: int
    users: int
    bad: int


@dataclass(frozen=True, kw_only=True)
class _Plan:
    """One stream row per position, still numeric; `aux` picks a bad spelling or a padding."""

    user: Ints
    track: Ints
    sec: Ints
    kind: Ints
    variant: Ints
    aux: Ints
    starts: Ints


def stream_keys(files: int, append: int = 0) -> tuple[str, ...]:
    """The landing keys of the stream files `generate` writes."""
    stem = f"streams_k{append:02d}_" if append else "streams_"
    return tuple(f"{RAW_STREAMS}{stem}{i + 1:04d}.csv" for i in range(files))


def planned_keys(files: int, append: int = 0) -> tuple[str, ...]:
    """Every raw key `generate` would write (the dimensions only without `append`)."""
    return (() if append else (RAW_SONGS, RAW_USERS)) + stream_keys(files, append)


def generate(
    storage: Storage,
    *,
    streams: int,
    files: int,
    days: int,
    seed: int,
    bad_share: float = 0.02,
    songs: int = 20_000,
    users: int = 10_000,
    end_date: dt.date = dt.date(2024, 6, 30),
    append: int = 0,
) -> GenerateReport:
    """Write users, songs and `files` stream files into the landing zone of `storage`.

    With `append=k > 0` only new stream files are written (`streams_k<kk>_0001.csv`, …),
    drawn from a stream seed of their own over the same users and songs as `seed`
    gives: late data for a lake made earlier with the same arguments.

    Returns:
        The keys written, row counts and the planted bad rows per reason and per file.

    Raises:
        ValueError: When a size is out of range.
    """
    _check(streams=streams, files=files, days=days, bad_share=bad_share, songs=songs, users=users)
    if append < 0:
        raise ValueError("append must be 0 (a new landing zone) or a batch number >= 1")
    song_seed, user_seed, stream_seed = np.random.SeedSequence(seed).spawn(3)
    if append:
        stream_seed = stream_seed.spawn(append)[-1]
    catalog = _catalog(np.random.default_rng(song_seed), songs)
    stream_rng = np.random.default_rng(stream_seed)
    if not append:
        _write(storage, RAW_SONGS, catalog.frame)
        _write(storage, RAW_USERS, _users(np.random.default_rng(user_seed), users, end_date))
    sizes = _Sizes(
        streams=streams, files=files, days=days, users=users, bad=round(bad_share * streams)
    )
    plan = _plan(stream_rng, catalog, sizes)
    tables = _Tables(catalog.track_ids + catalog.unknown_ids, days, end_date)
    keys = stream_keys(files, append)
    for i, key in enumerate(keys):
        _write(storage, key, tables.render(plan, int(plan.starts[i]), int(plan.starts[i + 1])))
    return _report(catalog, plan, keys, users, dimensions=not append)


def _check(**sizes: float) -> None:
    bad_share = sizes.pop("bad_share")
    if not 0 <= bad_share <= 0.5:
        raise ValueError(f"bad_share must be between 0 and 0.5, got {bad_share}.")
    if small := [name for name, value in sizes.items() if value < 1]:
        raise ValueError(f"{', '.join(small)} must be at least 1.")
    if sizes["files"] > sizes["streams"]:
        raise ValueError("files must not exceed streams: every file gets at least one row.")


def _write(storage: Storage, key: str, frame: pl.DataFrame) -> None:
    with storage.writer(key) as path:
        frame.write_csv(path)


def _catalog(rng: np.random.Generator, n: int) -> _Catalog:
    """`n` tracks sorted by genre as Spotify's file is, some twice, a few lines repeated."""
    ids = _track_ids(rng, n, exclude=set())
    rank = rng.permutation(n) + 1
    tracks = pl.DataFrame({"track_id": ids, **_track_text(rng, n), **_audio(rng, rank)})
    tracks = tracks.with_columns(track_genre=pl.Series(rng.choice(GENRES, n)))
    extra = _second_genres(rng, tracks, round(_MULTI_GENRE_SHARE * n))
    rows = pl.concat([tracks, extra]).sort("track_genre", maintain_order=True)
    rows = rows.with_row_index("id").select(SONG_COLUMNS)
    copies = rows[np.sort(rng.choice(rows.height, max(1, rows.height // 1000), replace=False))]
    rows = pl.concat([rows, copies]).sort("id", maintain_order=True)
    return _Catalog(
        frame=rows,
        track_ids=ids,
        unknown_ids=_unknown_tracks(rng, ids),
        by_rank=np.argsort(rank),
        multi_genre=extra.height,
        duplicates=copies.height,
    )


def _track_ids(rng: np.random.Generator, n: int, *, exclude: set[str]) -> list[str]:
    """Distinct 22-character base62 ids whose first character is 0-7, as Spotify's are."""
    alphabet = np.frombuffer(BASE62, dtype=np.uint8)
    found: dict[str, None] = {}
    while len(found) < n:
        codes = rng.integers(0, 62, (n + 16, 22))
        codes[:, 0] %= 8
        chars = np.ascontiguousarray(alphabet[codes]).view("S22").ravel()
        found.update((i, None) for i in chars.astype("U22").tolist() if i not in exclude)
    return list(found)[:n]


def _track_text(rng: np.random.Generator, n: int) -> dict[str, list[str]]:
    """Titles, albums, and one to three artists joined with `;` as Spotify does."""
    titles = _fill(rng, TITLES, n)
    pool = _fill(rng, ARTISTS, max(20, n // 3))
    count = rng.choice(3, n, p=[0.7, 0.22, 0.08]) + 1
    first = rng.integers(0, len(pool), n)
    steps = rng.integers(1, len(pool) // 2, (n, 2)).cumsum(axis=1)
    picks = np.column_stack([first, first[:, None] + steps]) % len(pool)
    artists = [";".join(pool[i] for i in row[:k]) for row, k in zip(picks, count, strict=True)]
    return {"artists": artists, "album_name": _fill(rng, ALBUMS, n, titles), "track_name": titles}


def _fill(
    rng: np.random.Generator,
    templates: tuple[tuple[str, int], ...],
    n: int,
    titles: list[str] | None = None,
) -> list[str]:
    """`n` strings from weighted `str.format` templates filled with random words and names."""
    weights = np.array([w for _, w in templates], dtype=np.float64)
    chosen = rng.choice(len(templates), n, p=weights / weights.sum())
    words = rng.integers(0, len(WORDS), (n, 4))
    names = rng.integers((0, 0, 1, 0), (len(FIRST), len(LAST), 100, len(ROMAN)), (n, 4))
    return [
        templates[t][0].format(
            *(WORDS[i] for i in w),
            f=FIRST[m[0]],
            l=LAST[m[1]],
            n=m[2],
            r=ROMAN[m[3]],
            t=titles[row] if titles else "",
        )
        for row, (t, w, m) in enumerate(zip(chosen, words, names, strict=True))
    ]


def _audio(rng: np.random.Generator, rank: Ints) -> dict[str, npt.NDArray[np.generic]]:
    """Spotify's numeric columns; popularity falls with the track's streaming rank."""
    n = rank.size
    unit = rng.random((n, len(UNIT_FEATURES)))
    unit[:, 4] **= 4  # instrumentalness: most tracks have vocals
    popularity = 90 * (1 - (rank - 1) / n) ** 2 + rng.normal(0, 5, n)
    return {
        "popularity": np.clip(np.round(popularity), 0, 100).astype(np.int64),
        "duration_ms": rng.integers(90_000, 420_001, n),
        "explicit": np.where(rng.random(n) < 0.08, "True", "False"),
        "key": rng.integers(0, 12, n),
        "loudness": np.round(rng.uniform(-30, -1, n), 3),
        "mode": rng.integers(0, 2, n),
        "tempo": np.round(rng.uniform(60, 200, n), 3),
        "time_signature": rng.choice([1, 3, 4, 5], n, p=[0.01, 0.09, 0.85, 0.05]),
    } | {name: np.round(unit[:, i], d) for i, (name, d) in enumerate(UNIT_FEATURES)}


def _second_genres(rng: np.random.Generator, tracks: pl.DataFrame, count: int) -> pl.DataFrame:
    """Copies of `count` tracks, each under another genre than its first."""
    picked = tracks[np.sort(rng.choice(tracks.height, count, replace=False))]
    first = np.array([GENRES.index(g) for g in picked["track_genre"].to_list()], dtype=np.int64)
    other = (first + rng.integers(1, len(GENRES), count)) % len(GENRES)
    return picked.with_columns(track_genre=pl.Series(np.array(GENRES)[other], dtype=pl.String))


def _users(rng: np.random.Generator, n: int, end_date: dt.date) -> pl.DataFrame:
    """Users 1..n; `created_at` runs up to 180 days after `end_date`, as real sign-ups do."""
    first, last = rng.choice(FIRST, n), rng.choice(LAST, n)
    abroad = rng.random(n) < 0.1
    country = np.where(abroad, rng.choice(COUNTRIES, n), "United States")
    created = np.datetime64(end_date) + rng.integers(-540, 181, n).astype("timedelta64[D]")
    return pl.DataFrame(
        {
            "user_id": np.arange(1, n + 1),
            "user_name": np.char.add(np.char.add(first, " "), last),
            "user_age": np.clip(np.round(rng.normal(32, 12, n)), 13, 85).astype(np.int64),
            "user_country": country,
            "created_at": np.datetime_as_string(created),
        }
    )


def _plan(rng: np.random.Generator, catalog: _Catalog, size: _Sizes) -> _Plan:
    """Draw valid events skewed toward popular tracks and busy users, then plant bad rows."""
    n = size.streams
    per_file = np.full(size.files, n // size.files, dtype=np.int64)
    per_file[: n % size.files] += 1
    plan = _Plan(
        user=rng.permutation(size.users)[_zipf(rng, size.users, _USER_ZIPF, n)] + 1,
        track=catalog.by_rank[_zipf(rng, catalog.by_rank.size, _TRACK_ZIPF, n)],
        sec=rng.integers(0, size.days * _DAY, n),
        kind=_kinds(rng, n, min(size.bad, n - 1)),
        variant=np.zeros(n, dtype=np.int64),
        aux=rng.integers(0, 1 << 12, n),
        starts=np.concatenate([[0], np.cumsum(per_file)]),
    )
    _make_unique(rng, plan, size.days)
    _plant(rng, plan, size, catalog)
    _plant_duplicates(rng, plan)
    return plan


def _zipf(rng: np.random.Generator, items: int, exponent: float, n: int) -> Ints:
    """`n` ranks in `0..items-1`, rank `r` about as likely as `(r + 1) ** -exponent` (< 1).

    Inverts the continuous power law: a few float operations per draw, no table search.
    """
    top = (items + 1) ** (1 - exponent) - 1
    ranks = (1 + rng.random(n) * top) ** (1 / (1 - exponent))
    drawn: Ints = np.minimum(ranks.astype(np.int64) - 1, items - 1)
    return drawn


def _kinds(rng: np.random.Generator, n: int, bad: int) -> Ints:
    """Row kinds: `bad` random rows (never row 0) split as evenly as possible over the reasons."""
    per_reason = np.full(len(PLANTED), bad // len(PLANTED))
    per_reason[: bad % len(PLANTED)] += 1
    kind = np.zeros(n, dtype=np.int64)
    positions = rng.choice(n - 1, bad, replace=False) + 1
    kind[positions] = rng.permutation(np.repeat(np.arange(1, len(PLANTED) + 1), per_reason))
    return kind


def _make_unique(rng: np.random.Generator, plan: _Plan, days: int) -> None:
    """Redraw the time of valid rows that repeat an earlier valid (user, track, second)."""
    for _ in range(_MAX_REDRAWS):
        clash = _clashes(plan)
        if clash.size == 0:
            return
        plan.sec[clash] = rng.integers(0, days * _DAY, clash.size)
    raise ValueError("Too few distinct (user, track, second) triples: raise days, songs or users.")


def _clashes(plan: _Plan) -> Ints:
    """Valid rows whose event key an earlier valid row already has."""
    rows = np.flatnonzero(plan.kind == VALID)
    key = _event_keys(plan.user[rows], plan.track[rows], plan.sec[rows])
    ordered = np.sort(key)
    repeated = ordered[1:][ordered[1:] == ordered[:-1]]
    if repeated.size == 0:
        return np.empty(0, dtype=np.int64)
    suspect = np.isin(key, repeated)
    _, first = np.unique(key[suspect], return_index=True)
    return np.delete(rows[suspect], first)


def _event_keys(user: Ints, track: Ints, sec: Ints) -> npt.NDArray[np.uint64]:
    """One integer per (user, track, second), exact while the product fits in 64 bits.

    Past that it wraps: equal triples still get equal keys, so a clash is never missed.
    """
    tracks, seconds = np.uint64(track.max() + 1), np.uint64(sec.max() + 1)
    wide = user.astype(np.uint64) * tracks + track.astype(np.uint64)
    return wide * seconds + sec.astype(np.uint64)


def _plant(rng: np.random.Generator, plan: _Plan, size: _Sizes, catalog: _Catalog) -> None:
    """Give every bad row the value that fails its rule; let some valid rows look unusual.

    Null, bad-id and bad-time rows keep valid values elsewhere, so only their own rule fails.
    """
    future, stranger, unknown = (np.flatnonzero(plan.kind == k) for k in _PLACED)
    plan.sec[future] = size.days * _DAY + rng.integers(0, len(FUTURE_DAYS) * _DAY, future.size)
    strange = rng.integers(0, len(catalog.unknown_ids), unknown.size)
    plan.track[unknown] = len(catalog.track_ids) + strange
    strangers = np.concatenate([_UNKNOWN_USERS, size.users + 1 + np.arange(97, dtype=np.int64)])
    plan.user[stranger] = rng.choice(strangers, stranger.size)
    unusual = rng.choice(size.streams, round(_VARIANT_SHARE * size.streams), replace=False)
    plan.variant[unusual] = rng.integers(1, 64, unusual.size)
    plan.variant[np.isin(plan.kind, (NULL, BAD_USER, BAD_TIME))] = 0


def _plant_duplicates(rng: np.random.Generator, plan: _Plan) -> None:
    """Copy an earlier valid event, alternately from the same file and from an earlier one."""
    dup = np.flatnonzero(plan.kind == DUPLICATE)
    valid = np.flatnonzero(plan.kind == VALID)
    before = np.searchsorted(valid, dup)
    file_start = plan.starts[np.searchsorted(plan.starts, dup, side="right") - 1]
    in_file = np.searchsorted(valid, file_start)
    same = np.arange(dup.size) % 2 == 0
    lo, hi = np.where(same, in_file, 0), np.where(same, before, in_file)
    empty = hi <= lo
    lo[empty], hi[empty] = 0, before[empty]
    source = valid[lo + (rng.random(dup.size) * (hi - lo)).astype(np.int64)]
    for column in (plan.user, plan.track, plan.sec, plan.variant, plan.aux):
        column[dup] = column[source]


def _unknown_tracks(rng: np.random.Generator, known: list[str]) -> list[str]:
    """Ids absent from the catalogue: random ones, plus known ones with the case swapped."""
    count = min(1_000, max(10, len(known)))
    swapped = [i.swapcase() for i in known[: count // 4]]
    catalog = set(known)
    swapped = [i for i in swapped if i not in catalog]
    return swapped + _track_ids(rng, count - len(swapped), exclude=catalog | set(swapped))


class _Tables:
    """Lookup tables that turn a numeric plan into the strings of a stream file."""

    def __init__(self, tracks: list[str], days: int, end_date: dt.date) -> None:
        first = end_date - dt.timedelta(days=days - 1)
        dates = [(first + dt.timedelta(days=d)).isoformat() for d in range(days)]
        self.dates = pl.Series(dates + list(FUTURE_DAYS))
        clock = pl.Series(np.arange(_DAY, dtype=np.int64))
        self.clock = pl.from_epoch(clock, time_unit="s").dt.strftime("%H:%M:%S")
        self.tracks = pl.Series(tracks)

    def render(self, plan: _Plan, lo: int, hi: int) -> pl.DataFrame:
        """The rows `lo..hi` of the plan as a stream file."""
        aux, sec = plan.aux[lo:hi], plan.sec[lo:hi]
        frame = pl.DataFrame(
            {
                "user": plan.user[lo:hi],
                "kind": plan.kind[lo:hi],
                "variant": plan.variant[lo:hi],
                "field": aux % 3,
                "track": self.tracks.gather(plan.track[lo:hi]),
                "date": self.dates.gather(sec // _DAY),
                "clock": self.clock.gather(sec % _DAY),
                "zeros": _pick(_ZEROS, aux),
                "left": _pick(_PADS, aux),
                "right": _pick(_PADS, aux // 4),
                "bad_user": _pick(BAD_USER_IDS, aux),
                "bad_time": _pick(BAD_TIMES, aux),
                "blank": _pick(_BLANKS, aux // 3),
            }
        )
        return frame.select(
            user_id=_finish(_user_expr(), 0, _PAD_USER),
            track_id=_finish(pl.col("track"), 1, _PAD_TRACK),
            listen_time=_finish(_time_expr(), 2, _PAD_TIME),
        )


def _pick(pool: tuple[str | None, ...], index: Ints) -> pl.Series:
    return pl.Series(pool, dtype=pl.String).gather(index % len(pool))


def _has(bit: int) -> pl.Expr:
    return (pl.col("variant") & bit) != 0


def _user_expr() -> pl.Expr:
    user = pl.col("user").cast(pl.String)
    user = pl.when(_has(_ZEROED)).then(pl.concat_str("zeros", user)).otherwise(user)
    return pl.when(pl.col("kind") == BAD_USER).then(pl.col("bad_user")).otherwise(user)


def _time_expr() -> pl.Expr:
    sep = pl.when(_has(_T)).then(pl.lit("T")).otherwise(pl.lit(" "))
    zone = pl.when(_has(_Z)).then(pl.lit("Z")).otherwise(pl.lit(""))
    stamp = pl.concat_str("date", sep, "clock", zone)
    return pl.when(pl.col("kind") == BAD_TIME).then(pl.col("bad_time")).otherwise(stamp)


def _finish(value: pl.Expr, field: int, pad: int) -> pl.Expr:
    """Pad `value` when its variant bit is set; blank it on null rows that chose this field."""
    padded = pl.when(_has(pad)).then(pl.concat_str("left", value, "right")).otherwise(value)
    blank = (pl.col("kind") == NULL) & (pl.col("field") == field)
    return pl.when(blank).then(pl.col("blank")).otherwise(padded)


def _report(
    catalog: _Catalog, plan: _Plan, keys: tuple[str, ...], users: int, *, dimensions: bool
) -> GenerateReport:
    spans = [(key, int(plan.starts[i]), int(plan.starts[i + 1])) for i, key in enumerate(keys)]
    return GenerateReport(
        keys=(*((RAW_USERS, RAW_SONGS) if dimensions else ()), *keys),
        stream_keys=keys,
        users=users,
        song_rows=catalog.frame.height,
        tracks=len(catalog.track_ids),
        multi_genre_tracks=catalog.multi_genre,
        duplicate_song_rows=catalog.duplicates,
        stream_rows=plan.kind.size,
        rows_per_file={key: hi - lo for key, lo, hi in spans},
        unusual_spellings=int(np.count_nonzero(plan.variant[plan.kind == VALID])),
        bad_rows=_by_reason(plan.kind),
        bad_rows_per_file={key: _by_reason(plan.kind[lo:hi]) for key, lo, hi in spans},
    )


def _by_reason(kind: Ints) -> dict[str, int]:
    """Counts for every row-level reason of the streams contract, in its order."""
    counts = np.bincount(kind, minlength=len(PLANTED) + 1)
    planted = {reason: int(counts[i + 1]) for i, reason in enumerate(PLANTED)}
    return {reason: planted.get(reason, 0) for reason in STREAMS.reasons}
