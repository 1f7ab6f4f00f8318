"""One ledger suite over SQLite and DynamoDB (moto over HTTP)."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import pytest

from aws.helpers import AwsLake, LostResponse
from music_etl.adapters.ledger import dynamodb, open_ledger
from music_etl.adapters.ledger.base import (
    CLAIMED,
    DONE,
    FAILED,
    FileRecord,
    FileStatus,
    Ledger,
    RunRecord,
    RunStatus,
    new_owner,
)
from music_etl.adapters.ledger.dynamodb import DynamoDBLedger
from music_etl.errors import ClaimLost

OpenLedger = Callable[[], Ledger]


@pytest.fixture(params=["sqlite", pytest.param("dynamodb", marks=pytest.mark.aws)])
def opener(request: pytest.FixtureRequest, tmp_path: Path) -> OpenLedger:
    """Opens a new connection to one ledger (each runner has its own)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'ledger.sqlite'}"
        return lambda: open_ledger(url)
    aws_lake: AwsLake = request.getfixturevalue("aws_lake")
    return lambda: open_ledger(aws_lake.dynamodb, endpoint=aws_lake.endpoint)


@pytest.fixture
def ledger(opener: OpenLedger) -> Ledger:
    return opener()


def claimed(ledger: Ledger, key: str) -> FileRecord:
    record = ledger.get(key)
    assert record is not None and record.status == CLAIMED
    return record


def test_claim_is_exclusive_while_the_owner_lives(ledger: Ledger) -> None:
    assert ledger.claim("raw/streams/a.csv", "h1", new_owner(), 60)
    assert not ledger.claim("raw/streams/a.csv", "h1", new_owner(), 60)
    assert not ledger.claim("raw/streams/a.csv", "h2", new_owner(), 60)


def test_only_one_of_many_racing_runners_wins(opener: OpenLedger) -> None:
    ledgers = [opener() for _ in range(6)]
    with ThreadPoolExecutor(len(ledgers)) as pool:
        wins = list(
            pool.map(lambda lg: lg.claim("raw/streams/race.csv", "h", new_owner(), 60), ledgers)
        )
    assert wins.count(True) == 1


def test_done_file_is_claimable_only_with_new_content(ledger: Ledger) -> None:
    ledger.claim("k", "h1", new_owner(), 60)
    ledger.save(replace(claimed(ledger, "k"), status=DONE, rows_in=5, days=("2024-06-01",)))
    done = ledger.get("k")
    assert done is not None and done.status == DONE and done.days == ("2024-06-01",)
    assert not ledger.claim("k", "h1", new_owner(), 60)
    assert ledger.claim("k", "h2", new_owner(), 60)
    again = claimed(ledger, "k")
    assert again.content_hash == "h2" and again.days == ("2024-06-01",) and again.rows_in == 5


def test_failed_file_is_retried_only_when_retryable(ledger: Ledger) -> None:
    ledger.claim("k", "h1", new_owner(), 60)
    ledger.save(replace(claimed(ledger, "k"), status=FAILED, error="missing_column"))
    assert not ledger.claim("k", "h1", new_owner(), 60)
    ledger.claim("k2", "h", new_owner(), 60)
    ledger.save(replace(claimed(ledger, "k2"), status=FAILED, retryable=True, error="boom"))
    assert ledger.claim("k2", "h", new_owner(), 60)
    assert claimed(ledger, "k2").error == ""


def test_mark_retryable_frees_only_a_failed_file(ledger: Ledger) -> None:
    owner = new_owner()
    for key in ("failed", "done", "claimed"):
        ledger.claim(key, "h", owner, 60)
    judged = {"users": "u1", "clock": "2020-01-01T00:00:00+00:00"}
    failed = replace(claimed(ledger, "failed"), status=FAILED, error="too_many_bad_rows")
    ledger.save(replace(failed, judged_against=judged))
    ledger.save(replace(claimed(ledger, "done"), status=DONE))
    assert not ledger.claim("failed", "h", new_owner(), 60)
    before = {r.file_key: r for r in ledger.records()}
    assert before["failed"].judged_against == judged

    assert not ledger.mark_retryable("done")
    assert not ledger.mark_retryable("claimed")
    assert not ledger.mark_retryable("never-seen")
    assert ledger.mark_retryable("failed")

    after = {r.file_key: r for r in ledger.records()}
    assert after["done"] == before["done"] and after["claimed"] == before["claimed"]
    assert "never-seen" not in after
    assert (after["failed"].status, after["failed"].retryable) == (FAILED, True)
    assert after["failed"].judged_against == judged and after["failed"].error == "too_many_bad_rows"
    ledger.save(replace(claimed(ledger, "claimed"), status=DONE))  # the claim is still held
    assert ledger.claim("failed", "h", new_owner(), 60)


def test_mark_retryable_never_takes_over_a_claim(ledger: Ledger) -> None:
    ledger.claim("k", "h1", new_owner(), 60)
    ledger.save(replace(claimed(ledger, "k"), status=FAILED, error="too_many_bad_rows"))
    runner = new_owner()
    assert ledger.claim("k", "h2", runner, 60)  # a new version arrives and is being processed
    assert not ledger.mark_retryable("k")
    record = claimed(ledger, "k")
    assert (record.owner, record.content_hash, record.retryable) == (runner, "h2", False)


def test_expired_lease_or_dead_owner_frees_a_claim(ledger: Ledger) -> None:
    assert ledger.claim("k", "h", "other-host:1:x", -1)
    assert ledger.claim("k", "h", new_owner(), 60)
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    owner_of_dead = new_owner().split(":")[0] + f":{dead}:gone"
    assert ledger.claim("k3", "h", owner_of_dead, 600)
    assert ledger.claim("k3", "h", new_owner(), 60)


def test_save_after_losing_the_claim_is_refused(ledger: Ledger) -> None:
    first = new_owner()
    ledger.claim("k", "h", first, -1)
    stale = claimed(ledger, "k")
    ledger.claim("k", "h", new_owner(), 60)
    with pytest.raises(ClaimLost):
        ledger.save(replace(stale, status=DONE))
    ledger.save(replace(claimed(ledger, "k"), status=DONE))
    with pytest.raises(ClaimLost):
        ledger.save(replace(claimed_or_done(ledger, "k"), status=FAILED))


def claimed_or_done(ledger: Ledger, key: str) -> FileRecord:
    record = ledger.get(key)
    assert record is not None
    return record


def test_records_are_ordered_by_their_last_change(ledger: Ledger) -> None:
    owner = new_owner()
    for key in ("c", "a", "b"):
        ledger.claim(key, "h", owner, 60)
    ledger.save(replace(claimed(ledger, "c"), status=DONE))
    assert [r.file_key for r in ledger.records()] == ["a", "b", "c"]


RUN = RunRecord(
    run_id="r1",
    started="2024-06-01T00:00:00Z",
    finished="2024-06-01T00:01:00Z",
    files=1,
    rows_in=1,
    rows_valid=1,
    rows_bad=0,
    days=1,
    status=RunStatus.OK,
)
WRITES: dict[str, Callable[[Ledger], object]] = {
    "claim": lambda ledger: ledger.claim("raw/streams/a.csv", "h", new_owner(), 60),
    "run": lambda ledger: ledger.add_run(RUN),
    "lock": lambda ledger: ledger.acquire_lock("lake", new_owner(), 60),
}


def _lag(ledger: Ledger) -> float:
    """How long a change may take to move `ledger.version()`: none on SQLite."""
    return dynamodb.VERSION_SECONDS if isinstance(ledger, DynamoDBLedger) else 0.0


@pytest.mark.parametrize("write", sorted(WRITES))
@pytest.mark.parametrize("by", ["another connection", "this connection"])
def test_version_moves_after_every_kind_of_write(
    opener: OpenLedger, monkeypatch: pytest.MonkeyPatch, write: str, by: str
) -> None:
    monkeypatch.setattr(dynamodb, "VERSION_SECONDS", 0.2)
    reader = opener()
    writer = opener() if by == "another connection" else reader
    before = reader.version()
    WRITES[write](writer)
    time.sleep(_lag(reader))
    assert reader.version() != before


def test_version_holds_while_nothing_is_written_on_sqlite(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    open_ledger(url).claim("raw/streams/a.csv", "h", new_owner(), 60)
    reader = open_ledger(url, read_only=True)
    before = reader.version()
    assert reader.records() and reader.get("raw/streams/a.csv") and reader.runs(5) == []
    assert reader.version() == before
    assert open_ledger(url).version() != before  # another connection: another token


def test_lock_is_exclusive_reentrant_and_expires(ledger: Ledger) -> None:
    one, two = new_owner(), new_owner()
    assert ledger.acquire_lock("lake", one, 60)
    assert ledger.acquire_lock("lake", one, 60)
    assert not ledger.acquire_lock("lake", two, 60)
    ledger.release_lock("lake", two)
    assert not ledger.acquire_lock("lake", two, 60)
    ledger.release_lock("lake", one)
    assert ledger.acquire_lock("lake", two, -1)
    assert ledger.acquire_lock("lake", one, 60)
    assert ledger.acquire_lock("other", two, 60)


def test_runs_and_forget_files(ledger: Ledger) -> None:
    for n in range(3):
        ledger.add_run(
            RunRecord(
                run_id=f"r{n}",
                started=f"2024-07-01T00:00:0{n}+00:00",
                finished="2024-07-01T00:01:00+00:00",
                files=n,
                rows_in=10 * n,
                rows_valid=9 * n,
                rows_bad=n,
                days=1,
                status="ok",
            )
        )
    owner = new_owner()
    ledger.acquire_lock("lake", owner, 60)
    ledger.claim("raw/streams/a.csv", "h", owner, 60)
    assert [r.run_id for r in ledger.runs(2)] == ["r2", "r1"]
    assert ledger.runs(5)[0].rows_in == 20
    ledger.forget_files()
    assert ledger.records() == []
    assert len(ledger.runs(10)) == 3
    assert not ledger.acquire_lock("lake", new_owner(), 60)


# --------------------------------------------------------------------------- DynamoDB only


@pytest.mark.aws
@pytest.mark.parametrize("operation", ["claim", "save", "acquire_lock"])
def test_a_retried_write_that_had_landed_counts_as_done(aws_lake: AwsLake, operation: str) -> None:
    ledger = aws_lake.ledger()
    owner = new_owner()
    if operation == "save":
        ledger.claim("k", "h", owner, 60)
    ledger.client.meta.events.register("before-send", LostResponse("PutItem"))
    if operation == "claim":
        assert ledger.claim("k", "h", owner, 60)
        assert claimed(ledger, "k").owner == owner
    elif operation == "save":
        ledger.save(replace(claimed(ledger, "k"), status=DONE))
        assert claimed_or_done(ledger, "k").status == DONE
    else:
        assert ledger.acquire_lock("lake", owner, 60)
        assert not aws_lake.ledger().acquire_lock("lake", new_owner(), 60)


@pytest.mark.aws
def test_table_prefix_and_internal_items(aws_lake: AwsLake) -> None:
    ledger = open_ledger(f"{aws_lake.dynamodb}&region=us-east-1", endpoint=aws_lake.endpoint)
    assert isinstance(ledger, DynamoDBLedger)
    assert ledger.table == f"{aws_lake.name}-ProcessedStreams"
    ledger.acquire_lock("lake", new_owner(), 60)
    ledger.claim("raw/streams/a.csv", "h", new_owner(), 60)
    assert [r.file_key for r in ledger.records()] == ["raw/streams/a.csv"]


@pytest.mark.aws
def test_mark_retryable_loses_to_a_claim_between_its_read_and_write(aws_lake: AwsLake) -> None:
    ledger, other = aws_lake.ledger(), aws_lake.ledger()
    ledger.claim("k", "h1", new_owner(), 60)
    ledger.save(replace(claimed(ledger, "k"), status=FAILED, error="too_many_bad_rows"))
    runner = new_owner()
    claims = []

    def claim_first(event_name: str, **_: object) -> None:
        if event_name.endswith(".PutItem") and not claims:
            claims.append(other.claim("k", "h2", runner, 60))

    ledger.client.meta.events.register("before-send", claim_first)
    assert not ledger.mark_retryable("k")
    assert claims == [True]
    record = claimed(ledger, "k")
    assert (record.owner, record.content_hash, record.retryable) == (runner, "h2", False)


def test_unclaim_puts_the_previous_record_back_or_removes_a_new_one(ledger: Ledger) -> None:
    owner = new_owner()
    assert ledger.claim("raw/streams/new.csv", "h1", owner, 60)
    ledger.unclaim("raw/streams/new.csv", owner, None)
    assert ledger.get("raw/streams/new.csv") is None

    first = new_owner()
    assert ledger.claim("raw/streams/old.csv", "h1", first, 60)
    done = replace(claimed(ledger, "raw/streams/old.csv"), status=DONE, rows_in=3)
    ledger.save(done)
    second = new_owner()
    assert ledger.claim("raw/streams/old.csv", "h2", second, 60)
    ledger.unclaim("raw/streams/old.csv", second, done)
    back = ledger.get("raw/streams/old.csv")
    assert back is not None
    assert (back.status, back.content_hash, back.rows_in) == (DONE, "h1", 3)


def test_unclaim_never_touches_a_claim_another_runner_holds(ledger: Ledger) -> None:
    holder = new_owner()
    assert ledger.claim("raw/streams/a.csv", "h1", holder, 60)
    ledger.unclaim("raw/streams/a.csv", new_owner(), None)
    assert claimed(ledger, "raw/streams/a.csv").owner == holder


@pytest.mark.aws
def test_dynamodb_statuses_are_stored_as_before_and_old_items_read_unchanged(
    aws_lake: AwsLake,
) -> None:
    ledger = aws_lake.ledger()
    ledger.claim("raw/streams/new.csv", "h", new_owner(), 60)
    item = ledger.client.get_item(
        TableName=ledger.table, Key={"file_key": {"S": "raw/streams/new.csv"}}
    )["Item"]
    assert item["status"] == {"S": "claimed"}
    # An item as the code before the enums wrote it: the status is plain text.
    ledger.client.put_item(TableName=ledger.table, Item={**item, "status": {"S": "failed"}})
    record = ledger.get("raw/streams/new.csv")
    assert record is not None
    assert record.status is FileStatus.FAILED
