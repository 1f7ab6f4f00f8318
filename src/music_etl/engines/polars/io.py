"""Reading raw CSVs and writing Parquet through the lake's storage."""

from __future__ import annotations

import os
from collections.abc import Collection, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from datetime import date

import polars as pl

from music_etl.adapters.storage.base import Storage
from music_etl.logic import layout
from music_etl.logic.checks import missing_columns, normalize_header
from music_etl.logic.contract import MISSING_COLUMN, UNREADABLE_FILE, DatasetContract

LINE = "_line"
ORDER = "_order"
_WRITERS = max(2, os.cpu_count() or 1)
#: The header is line 1, so the first data row is line 2.
_FIRST_DATA_LINE = 2


class FileRejected(Exception):
    """The whole file is unusable; `reason` is a file-level reason."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


def read_raw(path: str, contract: DatasetContract, order: int) -> pl.DataFrame:
    """The contract's columns of a raw CSV as untouched strings, with line numbers.

    Raises `FileRejected` for a file that is not a readable CSV with the required columns.
    """
    try:
        frame = pl.scan_csv(
            path,
            infer_schema=False,
            encoding="utf8-lossy",
            truncate_ragged_lines=True,
            raise_if_empty=False,
            row_index_name=LINE,
            with_column_names=lambda names: [normalize_header(n) for n in names],
        )
        header = frame.collect_schema().names()
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise FileRejected(UNREADABLE_FILE, f"not a readable CSV file: {exc}") from exc
    missing = missing_columns(contract, header)
    if missing:
        raise FileRejected(MISSING_COLUMN, f"missing required column(s): {', '.join(missing)}")
    keep = [*contract.columns, *(c for c in contract.optional if c in header)]
    try:
        return frame.select(
            (pl.col(LINE).cast(pl.Int64) + _FIRST_DATA_LINE).alias(LINE),
            pl.lit(order, dtype=pl.Int32).alias(ORDER),
            *(pl.col(c) for c in keep),
        ).collect()
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise FileRejected(UNREADABLE_FILE, f"not a readable CSV file: {exc}") from exc


@contextmanager
def local_paths(storage: Storage, keys: Sequence[str]) -> Iterator[list[str]]:
    """Local paths holding each key's bytes for as long as the block runs."""
    with ExitStack() as stack:
        yield [str(stack.enter_context(storage.local_copy(key))) for key in keys]


def write_parquet(storage: Storage, key: str, frame: pl.DataFrame) -> None:
    """Write `frame` to `key` atomically."""
    with storage.writer(key) as path:
        frame.write_parquet(path, compression="zstd", statistics=True)


def write_all(storage: Storage, parts: Iterable[tuple[str, pl.DataFrame]]) -> None:
    """Write many small frames at once; Polars releases the GIL while it encodes."""
    with ThreadPoolExecutor(max_workers=_WRITERS) as pool:
        for future in [pool.submit(write_parquet, storage, key, frame) for key, frame in parts]:
            future.result()


def day_files(storage: Storage, day: date, exclude: Collection[str] = ()) -> list[str]:
    """The valid-row files of one listen date, except those of the `exclude` source ids."""
    prefix = layout.validated_day_prefix(day)
    return [
        info.key
        for info in storage.list(prefix)
        if info.key.endswith(".parquet") and info.key[len(prefix) : -len(".parquet")] not in exclude
    ]
