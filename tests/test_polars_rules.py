"""The Polars translation of first-occurrence: exact even when digests collide."""

from __future__ import annotations

import polars as pl
import pytest

from music_etl.engines.outcomes import LINE, ORDER, REASON
from music_etl.engines.polars import rules
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
