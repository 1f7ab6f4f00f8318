"""Small pure decisions shared by every engine and the pipeline."""

from __future__ import annotations

from collections.abc import Iterable

from music_etl.logic.contract import DatasetContract
from music_etl.logic.rules import TRIM_CHARS

_BOM = "\ufeff"


def normalize_header(name: str) -> str:
    """A header cell as the contract spells it: no BOM, no padding, lower case.

    >>> normalize_header(' "User_ID" ')
    'user_id'
    """
    return name.replace(_BOM, "").strip(TRIM_CHARS + '"').lower()


def missing_columns(contract: DatasetContract, header: Iterable[str]) -> list[str]:
    """Required columns of `contract` absent from `header` (already normalized)."""
    present = set(header)
    return [name for name in contract.columns if name not in present]


def exceeds_threshold(rows_in: int, rows_bad: int, threshold: float) -> bool:
    """Whether a file has too many bad rows to load any of it."""
    return rows_in > 0 and rows_bad / rows_in > threshold
