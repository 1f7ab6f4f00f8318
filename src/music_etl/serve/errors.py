"""The API's error: an HTTP status, a stable code and a message that names the fix."""

from __future__ import annotations

from typing import Any

from music_etl.errors import MusicEtlError

BAD_DATE = "bad_date"
BAD_RANGE = "bad_range"
BAD_PARAMETER = "bad_parameter"
NO_SUCH_DAY = "no_such_day"
NO_SUCH_GENRE = "no_such_genre"
NOT_FOUND = "not_found"
UNAVAILABLE = "unavailable"
"""503: the serving store or ledger failed in a way that may pass (throttling, a lock)."""
STORE_ERROR = "store_error"
"""500: the serving store or ledger cannot be read (permissions, a corrupt file)."""


class ApiError(MusicEtlError):
    """A request the API refuses: `status` (4xx), `code` (see docs/api.md), `message`.

    Example:
        >>> ApiError(404, NO_SUCH_DAY, "No results on 2024-06-31.").body()["error"]["code"]
        'no_such_day'
    """

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message

    def body(self) -> dict[str, Any]:
        """The JSON error body every error response carries."""
        return {"error": {"status": self.status, "code": self.code, "message": self.message}}
