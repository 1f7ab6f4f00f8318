"""A reader never sees a day half replaced in DynamoDB (moto over HTTP).

Each load writes a new copy of its days, flips the days' pointers in one transaction and
then copies the new copy into the plain partitions (`docs/aws.md`). Faults are injected
with botocore event hooks on the writer's client; readers are other store objects.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from aws.helpers import AwsLake, client
from conformance.test_serving_conformance import D1, D2, items, merged
from music_etl.adapters.aws.codec import decode
from music_etl.adapters.serving.dynamodb import FLOAT_ATTRIBUTES, DynamoDBServingStore
from music_etl.errors import LoadConflict
from music_etl.logic.serving_model import SERVING_KEYS

pytestmark = pytest.mark.aws

OLD = [f"old-{n:02d}" for n in range(30)]
NEW = [f"new-{n:02d}" for n in range(30)]
_WRITES = frozenset({"BatchWriteItem", "PutItem", "DeleteItem", "UpdateItem", "TransactWriteItems"})


class Crash(Exception):
    """The writer dies here (nothing after it runs)."""


def live(store: DynamoDBServingStore, day: str) -> dict[str, list[dict[str, Any]]]:
    """What a pointer-following reader sees of `day`."""
    return {table: store.read(table, [day]) for table in SERVING_KEYS}


def plain(lake: AwsLake, day: str) -> dict[str, list[dict[str, Any]]]:
    """What a plain `Query date = day` on each table returns (the seed's keys)."""
    dynamodb = client("dynamodb", lake.endpoint)
    found: dict[str, list[dict[str, Any]]] = {}
    for table, (pk, sk) in SERVING_KEYS.items():
        pages = dynamodb.get_paginator("query").paginate(
            TableName=f"{lake.name}-{table}",
            KeyConditionExpression="#d = :d",
            ExpressionAttributeNames={"#d": pk},
            ExpressionAttributeValues={":d": {"S": day}},
            ConsistentRead=True,
        )
        rows = [decode(i, floats=FLOAT_ATTRIBUTES) for page in pages for i in page["Items"]]
        found[table] = sorted(rows, key=lambda row: (row[pk], row[sk]))
    return found


def partitions(lake: AwsLake, table: str = "TopGenresPerDay") -> set[str]:
    """Every partition of `table`, read with a raw scan."""
    pages = (
        client("dynamodb", lake.endpoint)
        .get_paginator("scan")
        .paginate(TableName=f"{lake.name}-{table}")
    )
    return {item["date"]["S"] for page in pages for item in page["Items"]}


def genres_of(view: dict[str, list[dict[str, Any]]]) -> set[str]:
    return {row["genre"] for table in SERVING_KEYS for row in view[table]}


def on_call(store: DynamoDBServingStore, when: str, handler: Callable[..., Any]) -> None:
    """Run `handler(operation)` `when` ('before' or 'after') each DynamoDB call of `store`."""

    def hook(model: Any, **_: Any) -> None:
        handler(model.name)

    store.client.meta.events.register(f"{when}-call.dynamodb", hook)


def test_a_reader_never_sees_a_mixed_day_while_a_replace_is_in_progress(
    aws_lake: AwsLake,
) -> None:
    writer, reader = aws_lake.serving(), aws_lake.serving()
    writer.replace_days([D1], items(D1, OLD))
    seen: list[set[str]] = []
    on_call(writer, "after", lambda op: op in _WRITES and seen.append(genres_of(live(reader, D1))))
    writer.replace_days([D1], items(D1, NEW))
    assert len(seen) > 5, "the replace took several writes"
    assert all(each in (set(OLD), set(NEW)) for each in seen), [sorted(s)[:3] for s in seen]
    assert seen[0] == set(OLD)
    assert seen[-1] == set(NEW)
    assert live(reader, D1) == items(D1, NEW)
    assert plain(aws_lake, D1) == live(reader, D1)


def test_a_crash_before_the_flip_leaves_the_old_day_and_the_next_load_cleans_up(
    aws_lake: AwsLake,
) -> None:
    aws_lake.serving().replace_days([D1], items(D1, OLD))
    writer, reader = aws_lake.serving(), aws_lake.serving()
    batches = iter(range(1000))

    def die_mid_write(op: str) -> None:
        if op == "BatchWriteItem" and next(batches) == 2:
            raise Crash

    on_call(writer, "before", die_mid_write)
    with pytest.raises(Crash):
        writer.replace_days([D1], items(D1, NEW))
    assert live(reader, D1) == items(D1, OLD)
    assert reader.scan("DailyGenreKPIs") == items(D1, OLD)["DailyGenreKPIs"]
    assert plain(aws_lake, D1) == items(D1, OLD)
    orphans = {p for p in partitions(aws_lake, "DailyGenreKPIs") if p.startswith(f"{D1}#")}
    assert len(orphans) == 2, "the live copy and the crashed load's"

    aws_lake.serving().replace_days([D1], items(D1, NEW))
    assert live(reader, D1) == items(D1, NEW)
    assert plain(aws_lake, D1) == items(D1, NEW)
    after = {p for p in partitions(aws_lake, "DailyGenreKPIs") if p.startswith(f"{D1}#")}
    assert len(after & orphans) == 1, "the crashed load's copy is swept; the old one retired"


def test_a_crash_after_the_flip_serves_the_new_day_and_the_next_load_copies_it(
    aws_lake: AwsLake,
) -> None:
    aws_lake.serving().replace_days([D1], items(D1, OLD))
    writer, reader = aws_lake.serving(), aws_lake.serving()
    version = reader.version()
    flipped: list[str] = []

    def die_after_the_flip(op: str) -> None:
        if flipped and op == "BatchWriteItem":
            raise Crash

    on_call(writer, "after", lambda op: op == "TransactWriteItems" and flipped.append(op))
    on_call(writer, "before", die_after_the_flip)
    with pytest.raises(Crash):
        writer.replace_days([D1], items(D1, NEW))
    assert live(reader, D1) == items(D1, NEW)
    assert reader.days() == [D1]
    assert reader.version() != version
    assert plain(aws_lake, D1) == items(D1, OLD), "plain readers: not copied yet"

    aws_lake.serving().replace_days([D1], items(D1, NEW))
    assert plain(aws_lake, D1) == live(reader, D1) == items(D1, NEW)


#: When the second loader runs, inside the first one: (hook, operation, call number).
MOMENTS = {
    "while the first writes": ("before", "BatchWriteItem", 2),
    "just before the first flips": ("before", "TransactWriteItems", 1),
    "after the first flipped": ("after", "TransactWriteItems", 1),
}


@pytest.mark.parametrize("moment", MOMENTS)
def test_two_loaders_of_one_day_end_with_one_consistent_version(
    aws_lake: AwsLake, moment: str
) -> None:
    aws_lake.serving().replace_days([D1], items(D1, ["first"]))
    first, second, reader = aws_lake.serving(), aws_lake.serving(), aws_lake.serving()
    when, operation, nth = MOMENTS[moment]
    calls: list[str] = []

    def other_loader(op: str) -> None:
        if op == operation:
            calls.append(op)
            if len(calls) == nth:
                second.replace_days([D1], items(D1, NEW))

    on_call(first, when, other_loader)
    if when == "before":
        with pytest.raises(LoadConflict, match="run again"):
            first.replace_days([D1], items(D1, OLD))
    else:
        first.replace_days([D1], items(D1, OLD))
    assert len(calls) >= nth
    assert live(reader, D1) == items(D1, NEW), "the load that flipped last"
    assert plain(aws_lake, D1) == items(D1, NEW)
    copies = {p for p in partitions(aws_lake, "DailyGenreKPIs") if p.startswith(f"{D1}#")}
    assert len(copies) == 2, "the live copy and the one it retired; the loser's is gone"
    first.replace_days([D1], items(D1, OLD))  # the loser, run again
    assert plain(aws_lake, D1) == live(reader, D1) == items(D1, OLD)


def test_days_is_one_query_and_plain_queries_equal_the_live_view(aws_lake: AwsLake) -> None:
    writer, reader = aws_lake.serving(), aws_lake.serving()
    writer.replace_days([D1, D2], merged(items(D1, OLD), items(D2, ["pop"])))
    writer.replace_days([D1], items(D1, NEW[:3]))
    writer.replace_days([D2], {})
    calls: list[str] = []
    on_call(reader, "before", calls.append)
    assert reader.days() == [D1]
    assert calls == ["Query"]
    for day in (D1, D2):
        assert plain(aws_lake, day) == live(reader, day)
    assert live(reader, D1) == items(D1, NEW[:3])
    assert reader.scan("TopSongsPerGenre") == items(D1, NEW[:3])["TopSongsPerGenre"]


def test_days_loaded_before_pointers_are_read_and_adopted(aws_lake: AwsLake) -> None:
    """The seed's layout as the old code wrote it: plain partitions, a `__load__` flag."""
    dynamodb = client("dynamodb", aws_lake.endpoint)
    old = merged(items(D1, OLD[:4]), items(D2, ["pop", "rock"]))
    loader = DynamoDBServingStore(aws_lake.dynamodb, client=dynamodb)
    for table, rows in old.items():
        for row in rows:
            dynamodb.put_item(TableName=f"{aws_lake.name}-{table}", Item=_encoded(row))
    flag = {"date": "__load__", "genre": D1, "skipped": 2, "issues": [], "loaded_at": "x"}
    dynamodb.put_item(TableName=f"{aws_lake.name}-DailyGenreKPIs", Item=_encoded(flag))

    reader = aws_lake.serving()
    assert reader.days() == [D1, D2]
    assert live(reader, D1) == items(D1, OLD[:4])
    assert reader.scan("TopGenresPerDay") == old["TopGenresPerDay"]
    assert reader.flagged_days() == {D1: 2}

    loader.replace_days([D2], items(D2, ["jazz"]))
    calls: list[str] = []
    on_call(reader, "before", calls.append)
    assert reader.days() == [D1, D2]
    assert calls == ["Query"], "adopted: the pointers list the old days too"
    assert live(reader, D1) == plain(aws_lake, D1) == items(D1, OLD[:4])
    assert live(reader, D2) == plain(aws_lake, D2) == items(D2, ["jazz"])
    assert reader.flagged_days() == {D1: 2}


def _encoded(row: dict[str, Any]) -> dict[str, Any]:
    from music_etl.adapters.aws.codec import encode

    return encode(row)
