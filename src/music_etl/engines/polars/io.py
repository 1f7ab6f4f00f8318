"""Reading raw CSVs and writing Parquet through the lake's storage."""

from __future__ import annotations

import os
from collections.abc import Collection, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import date

import polars as pl

from music_etl.adapters.storage.base import Storage
from music_etl.engines.outcomes import FIRST_DATA_LINE, LINE, ORDER, FileRejected
from music_etl.engines.procedure import day_files
from music_etl.errors import StorageError, UnreadableFile
from music_etl.logic.checks import missing_columns, normalize_header
from music_etl.logic.contract import MISSING_COLUMN, UNREADABLE_FILE, DatasetContract

_WRITERS = max(2, os.cpu_count() or 1)
#: Parquet bytes of valid rows handled at once when scanning many days (~18 M rows).
CHUNK_BYTES = 256 * 1024 * 1024


def read_raw(path: str, contract: DatasetContract, order: int) -> pl.DataFrame:
    """The contract's columns of a raw CSV as untouched strings, with line numbers.

    Raises `FileRejected` for a file that is not a readable CSV with the required columns.
    """
    try:
        frame = pl.scan_csv(
            path,
            glob=False,
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
            (pl.col(LINE).cast(pl.Int64) + FIRST_DATA_LINE).alias(LINE),
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


def read_parquet(
    storage: Storage, keys: Sequence[str], columns: Sequence[str] | None = None
) -> pl.DataFrame:
    """The rows of the lake's Parquet files `keys` (or of their `columns`) as one frame.

    Raises `UnreadableFile` naming the file when one is truncated or corrupt.
    """
    with local_paths(storage, keys) as paths:
        try:
            return pl.read_parquet(paths, columns=_columns(columns), glob=False)
        except (pl.exceptions.PolarsError, OSError) as exc:
            culprit = _unreadable(keys, paths, columns)
            if culprit is None:
                message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                detail = f"{len(keys)} file(s) from {keys[0]} on cannot be read together"
                raise StorageError(
                    f"{detail} ({message}): `music-etl rebuild --lake {storage.root}` "
                    "recreates them from the archive."
                ) from exc
            raise UnreadableFile(culprit, storage.root) from exc


def _columns(columns: Sequence[str] | None) -> list[str] | None:
    return None if columns is None else list(columns)


def _unreadable(
    keys: Sequence[str], paths: Sequence[str], columns: Sequence[str] | None
) -> str | None:
    """The first of `keys` that cannot be read on its own (only on the error path)."""
    for key, path in zip(keys, paths, strict=True):
        try:
            pl.read_parquet(path, columns=_columns(columns), glob=False)
        except (pl.exceptions.PolarsError, OSError):
            return key
    return None


def write_parquet(storage: Storage, key: str, frame: pl.DataFrame) -> None:
    """Write `frame` to `key` atomically."""
    with storage.writer(key) as path:
        frame.write_parquet(path, compression="zstd", compression_level=1, statistics=True)


def write_all(storage: Storage, parts: Iterable[tuple[str, pl.DataFrame]]) -> None:
    """Write many small frames at once; Polars releases the GIL while it encodes."""
    with ThreadPoolExecutor(max_workers=_WRITERS) as pool:
        for future in [pool.submit(write_parquet, storage, key, frame) for key, frame in parts]:
            future.result()


@dataclass(frozen=True, kw_only=True)
class DayChunk:
    """Consecutive listen dates whose valid-row files fit one memory budget."""

    files: dict[date, list[str]]
    """Each day's valid-row file keys, days in order."""

    @property
    def days(self) -> list[date]:
        """The chunk's days, in order."""
        return list(self.files)

    @property
    def keys(self) -> list[str]:
        """Every file key of the chunk."""
        return [key for keys in self.files.values() for key in keys]


def day_chunks(
    storage: Storage, days: Iterable[date], exclude: Collection[str] = (), budget: int = 0
) -> list[DayChunk]:
    """The days' valid-row files (but the `exclude` source ids'), grouped by size.

    Work over many days runs chunk by chunk, so memory stays bounded by `budget`
    bytes of Parquet (about 14 bytes a row) whatever the history holds.
    """
    budget = budget or CHUNK_BYTES
    chunks = [DayChunk(files={})]
    used = 0
    for day in sorted(days):
        files = day_files(storage, day, exclude)
        size = sum(info.size for info in files)
        if chunks[-1].keys and used + size > budget:
            chunks.append(DayChunk(files={}))
            used = 0
        chunks[-1].files[day] = [info.key for info in files]
        used += size
    return [chunk for chunk in chunks if chunk.files]
