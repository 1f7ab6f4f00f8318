"""The Polars translation of first-occurrence: exact even when digests collide."""

from __future__ import annotations

import itertools

import polars as pl
import pytest

from music_etl.engines.outcomes import LINE, ORDER, RAW_PREFIX, REASON
from music_etl.engines.polars import rules
from music_etl.engines.polars.validate import without_raw
from music_etl.logic.rules import FirstOccurrence

RULE = FirstOccurrence(reason="duplicate_event", key=("user_id", "track_id"), across_files=True)


def _frame() -> pl.DataFrame:
    return pl.DataFrame(
        {
            ORDER: [0, 0, 0, 1, 1, 1],
            LINE: [2, 3, 4, 2, 3, 4],
            "user_id": [1, 1, 2, 1, 2, 3],
            "track_id": ["a", "b", "a", "a", "a", "c"],
            REASON: [None, None, None, None, "bad_timestamp", None],
        }
    )


def _reasons(frame: pl.DataFrame) -> list[str | None]:
    return frame.get_column(REASON).to_list()


def test_later_repeats_of_valid_rows_are_marked() -> None:
    out = rules.apply_first_occurrence(_frame(), RULE, elsewhere=None)
    assert _reasons(out) == [None, None, None, "duplicate_event", "bad_timestamp", None]


def test_every_digest_colliding_rejects_nothing_more(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rules, "key_digest", lambda key: pl.lit(7, dtype=pl.UInt64))
    out = rules.apply_first_occurrence(_frame(), RULE, elsewhere=None)
    assert _reasons(out) == [None, None, None, "duplicate_event", "bad_timestamp", None]


def test_rows_seen_in_other_files_are_marked_unless_already_bad() -> None:
    elsewhere = pl.DataFrame(
        {ORDER: [0, 1], LINE: [3, 3]}, schema={ORDER: pl.Int32, LINE: pl.Int64}
    )
    out = rules.apply_first_occurrence(_frame(), RULE, elsewhere=elsewhere)
    assert _reasons(out) == [
        None,
        "duplicate_event",
        None,
        "duplicate_event",
        "bad_timestamp",
        None,
    ]


def _present(frame: pl.DataFrame, others: pl.DataFrame) -> list[int]:
    found = rules.present_in(frame.lazy(), others, RULE.key).collect()
    return sorted(found.get_column(LINE).to_list())


@pytest.mark.parametrize("collide", [False, True], ids=["digests", "all-digests-collide"])
def test_present_in_finds_exactly_the_keys_the_other_rows_hold(
    monkeypatch: pytest.MonkeyPatch, collide: bool
) -> None:
    if collide:
        monkeypatch.setattr(rules, "key_digest", lambda key: pl.lit(7, dtype=pl.UInt64))
    others = pl.DataFrame({"user_id": [1, 3, 9], "track_id": ["b", "c", "a"]})
    assert _present(_frame(), others) == [3, 4]
    assert _present(_frame(), others.clear()) == []


def _pieces(column: pl.Series, *cuts: int) -> pl.Series:
    """`column` as chunks cut at the row indexes `cuts`, without copying."""
    bounds = [0, *cuts, column.len()]
    return pl.concat([column.slice(a, b - a) for a, b in itertools.pairwise(bounds)], rechunk=False)


def _unaligned() -> pl.DataFrame:
    """`_frame()` (with a raw column) chunked as Polars 2's streaming engine leaves a judged
    batch: columns in different numbers of chunks.
    """
    frame = _frame().with_columns(pl.col("track_id").alias(RAW_PREFIX + "track_id"))
    cuts = {LINE: (2, 4), ORDER: (3,), "track_id": (2, 4)}
    return pl.DataFrame([_pieces(frame.get_column(c), *cuts.get(c, ())) for c in frame.columns])


def test_marking_repeats_shares_the_columns_it_does_not_change() -> None:
    frame = _unaligned()
    out = rules.apply_first_occurrence(frame, RULE, elsewhere=None)
    assert _reasons(out) == [None, None, None, "duplicate_event", "bad_timestamp", None]
    # Not rechunked (a rechunk copies the whole 10 M-row batch: over 1 GB on the benchmark).
    assert out.get_column("track_id").n_chunks() == 3
    assert _reasons(frame) == [None, None, None, None, "bad_timestamp", None]


def test_dropping_the_raw_values_shares_the_other_columns() -> None:
    frame = _unaligned()
    out = without_raw(frame)
    assert out.columns == [ORDER, LINE, "user_id", "track_id", REASON]
    assert out.get_column("track_id").n_chunks() == 3
    assert RAW_PREFIX + "track_id" in frame.columns
