"""Whether DynamoDB can store an item, checked before it is sent.

An item DynamoDB would reject (a missing or empty key, a NaN, more than 400 KB) is
reported with its reason instead of failing the whole write; `batch.py` also reports
what DynamoDB itself rejects (`ValidationException`) when an item slips past these checks.

Example:
    >>> item_problem({"date": "", "genre": "pop"}, ("date", "genre"))
    "empty string in key attribute 'date'"
    >>> item_problem({"date": "2024-06-01", "genre": "pop", "n": float("nan")}, ("date", "genre"))
    "not a finite number in attribute 'n'"
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

#: DynamoDB's item size limit, attribute names included.
MAX_ITEM_BYTES = 400 * 1024


def item_problem(item: Mapping[str, Any], keys: Sequence[str]) -> str:
    """Why DynamoDB would reject `item` with key attributes `keys`; empty if it would not."""
    for name in keys:
        problem = _key_problem(name, item.get(name))
        if problem:
            return problem
    for name, value in item.items():
        if not _finite(value):
            return f"not a finite number in attribute {name!r}"
    size = item_size(item)
    if size > MAX_ITEM_BYTES:
        return f"item is {size:,} bytes, over DynamoDB's 400 KB limit"
    return ""


def _key_problem(name: str, value: Any) -> str:
    if value is None:
        return f"missing key attribute {name!r}"
    if value == "":
        return f"empty string in key attribute {name!r}"
    number = isinstance(value, int | Decimal) or (isinstance(value, float) and math.isfinite(value))
    if isinstance(value, bool) or not (isinstance(value, str) or number):
        return f"key attribute {name!r} is not a string or a finite number: {value!r}"
    return ""


def _finite(value: Any) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, Decimal):
        return value.is_finite()
    if isinstance(value, Mapping):
        return all(_finite(v) for v in value.values())
    if isinstance(value, list | tuple | set | frozenset):
        return all(_finite(v) for v in value)
    return True


def item_size(item: Mapping[str, Any]) -> int:
    """An upper bound of the size DynamoDB counts for `item` (names plus values), in bytes."""
    return sum(len(name.encode()) + _value_size(value) for name, value in item.items())


def _value_size(value: Any) -> int:
    if isinstance(value, str | bytes | bytearray):
        return len(value.encode() if isinstance(value, str) else value)
    if value is None or isinstance(value, bool):
        return 1
    if isinstance(value, int | float | Decimal):
        return len(repr(value)) // 2 + 2
    if isinstance(value, Mapping):
        return 3 + sum(len(str(k).encode()) + 1 + _value_size(v) for k, v in value.items())
    if isinstance(value, list | tuple | set | frozenset):
        return 3 + sum(1 + _value_size(v) for v in value)
    return len(repr(value).encode())
