"""Plain Python values to DynamoDB attribute values and back; numbers travel as `Decimal`.

A float becomes the `Decimal` of its shortest repr, so it reads back as the same float;
on the way back, integral numbers become `int` unless their attribute is a float one.

Example:
    >>> encode({"date": "2024-06-01", "avg": 2.5})
    {'date': {'S': '2024-06-01'}, 'avg': {'N': '2.5'}}
    >>> decode({"n": {"N": "3"}, "avg": {"N": "2"}}, floats={"avg"})
    {'n': 3, 'avg': 2.0}
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from decimal import Decimal
from typing import Any

from music_etl.errors import ServiceError


def encode(values: Mapping[str, Any]) -> dict[str, Any]:
    """A DynamoDB item (attribute name -> attribute value) for plain `values`."""
    from boto3.dynamodb.types import TypeSerializer

    serializer = TypeSerializer()
    return {name: serializer.serialize(to_decimals(value)) for name, value in values.items()}


def decode(item: Mapping[str, Any], *, floats: Collection[str] = ()) -> dict[str, Any]:
    """Plain Python values for a DynamoDB item; `floats` name attributes that stay floats."""
    from boto3.dynamodb.types import TypeDeserializer

    deserializer = TypeDeserializer()
    return {
        name: from_decimals(deserializer.deserialize(value), as_float=name in floats)
        for name, value in item.items()
    }


def to_decimals(value: Any) -> Any:
    """`value` with every float (also inside lists and maps) turned into a `Decimal`."""
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ServiceError(f"DynamoDB cannot store the number {value!r}.")
        return Decimal(repr(value))
    if isinstance(value, Mapping):
        return {k: to_decimals(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_decimals(v) for v in value]
    return value


def from_decimals(value: Any, *, as_float: bool = False) -> Any:
    """`value` with every `Decimal` turned into an `int` (if integral) or a `float`."""
    if isinstance(value, Decimal):
        if as_float or value != value.to_integral_value():
            return float(value)
        return int(value)
    if isinstance(value, Mapping):
        return {k: from_decimals(v) for k, v in value.items()}
    if isinstance(value, list):
        return [from_decimals(v) for v in value]
    return value
