"""Query and path parameters: parsed and checked, or an `ApiError` naming the fix."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from music_etl.serve.errors import BAD_DATE, BAD_PARAMETER, BAD_RANGE, ApiError

#: The longest range (in days, both ends included) a range endpoint answers.
MAX_RANGE_DAYS = 366
#: Days in a range when `from` is not given (ending at `to`).
DEFAULT_RANGE_DAYS = 30
#: Bounds and default of `/runs?limit=`.
MAX_RUNS, DEFAULT_RUNS = 500, 50


@dataclass(frozen=True)
class DayRange:
    """Both ends included, `start <= end`, at most `MAX_RANGE_DAYS` days."""

    start: date
    end: date

    def holds(self, day: str) -> bool:
        """Whether the ISO day `day` lies in the range."""
        return self.start.isoformat() <= day <= self.end.isoformat()


def parse_day(text: str, name: str) -> date:
    """A real `YYYY-MM-DD` date, else `bad_date` naming the parameter `name`.

    Example:
        >>> parse_day("2024-02-29", "day")
        datetime.date(2024, 2, 29)
    """
    if len(text) == len("YYYY-MM-DD") and text[4] == "-" and text[7] == "-":
        try:
            return date.fromisoformat(text)
        except ValueError:
            pass
    raise ApiError(
        400, BAD_DATE, f"{name}={text!r} is not a real date: use YYYY-MM-DD, e.g. 2024-06-01."
    )


def day_range(query: Mapping[str, str], default_end: date) -> DayRange:
    """`from`/`to` of `query`; `to` defaults to `default_end`, `from` to 30 days ending at `to`."""
    end = parse_day(query["to"], "to") if "to" in query else default_end
    start = (
        parse_day(query["from"], "from")
        if "from" in query
        else end - timedelta(days=DEFAULT_RANGE_DAYS - 1)
    )
    if start > end:
        raise ApiError(
            400, BAD_RANGE, f"from={start} is after to={end}: swap them or pick an earlier from."
        )
    if (end - start).days + 1 > MAX_RANGE_DAYS:
        raise ApiError(
            400,
            BAD_RANGE,
            f"from={start} to={end} spans {(end - start).days + 1} days; ask for at most "
            f"{MAX_RANGE_DAYS} at a time.",
        )
    return DayRange(start, end)


def parse_limit(query: Mapping[str, str]) -> int:
    """`limit` as an int in 1..`MAX_RUNS` (default `DEFAULT_RUNS`), else `bad_parameter`."""
    text = query.get("limit", str(DEFAULT_RUNS))
    if text.isascii() and text.isdigit() and 1 <= int(text) <= MAX_RUNS:
        return int(text)
    raise ApiError(
        400, BAD_PARAMETER, f"limit={text!r} is not a whole number from 1 to {MAX_RUNS}."
    )


def today() -> date:
    """Today's date in UTC (the default end of `/quality`)."""
    return datetime.now(UTC).date()
