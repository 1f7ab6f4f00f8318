"""The OpenAPI 3.1 description of the API, written out (the contract in docs/api.md).

The KPI fields come from the contract (`contract.KPI_METRICS`), as the answers' do.
"""

from __future__ import annotations

from typing import Any

from music_etl.logic import contract
from music_etl.serve.params import DEFAULT_RUNS, MAX_RANGE_DAYS, MAX_RUNS
from music_etl.serve.serving_views import JSON_KINDS

PREFIX = "/api/v1"
_DATE = {"type": "string", "format": "date", "example": "2024-06-01"}
_INT = {"type": "integer"}
_STR = {"type": "string"}
_COUNTS = {"type": "object", "additionalProperties": _INT}


def openapi_document(version: str) -> dict[str, Any]:
    """The whole document; `version` is the package version."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "music-etl serve",
            "version": version,
            "description": "Daily genre KPIs, data quality and runs of a music-etl lake "
            "(read-only). Every 4xx has the body of `Error`.",
        },
        "paths": {PREFIX + path: {"get": op} for path, op in _operations().items()},
        "components": {"schemas": _schemas()},
    }


def _operations() -> dict[str, dict[str, Any]]:
    day, genre = _path_param("day", _DATE), _path_param("genre", _STR)
    ranged = [_query("from", _DATE), _query("to", _DATE)]
    return {
        "/days": _op("Days that have results, ascending, and the latest", "Days"),
        "/days/{day}": _op(
            "One day: KPIs per genre, top genres, top songs per genre", "Day", [day], (400, 404)
        ),
        "/days/{day}/genres/{genre}/top-songs": _op(
            "The top songs of one genre on one day", "TopSongs", [day, genre], (400, 404)
        ),
        "/genres/{genre}/trend": _op(
            f"One genre's KPIs per day (default: 30 days to the latest; at most {MAX_RANGE_DAYS})",
            "Trend",
            [genre, *ranged],
            (400, 404),
        ),
        "/top-genres": _op("The top genres of each day of a range", "TopGenres", ranged, (400,)),
        "/quality": _op(
            "Bad rows per reason per day and per file, failed files (default: 30 days to today)",
            "Quality",
            ranged,
            (400,),
        ),
        "/runs": _op(
            "Recent runs, newest first",
            "Runs",
            [_query("limit", {**_INT, "minimum": 1, "maximum": MAX_RUNS, "default": DEFAULT_RUNS})],
            (400,),
        ),
        "/files": _op(
            "The ledger's files, by key",
            "Files",
            [_query("status", {"type": "string", "enum": ["claimed", "done", "failed"]})],
            (400,),
        ),
        "/health": _op(
            "Liveness, the package version, and how far the precomputing of the single-day "
            "answers of the serving store's current version has come (warm.done)",
            "Health",
        ),
        "/openapi.json": {
            "summary": "This document",
            "responses": {"200": {"description": "OpenAPI 3.1"}},
        },
    }


def _op(
    summary: str,
    schema: str,
    params: list[dict[str, Any]] | None = None,
    errors: tuple[int, ...] = (),
) -> dict[str, Any]:
    responses: dict[str, Any] = {"200": _body("OK", schema)}
    if schema not in {"Health"}:
        responses["304"] = {"description": "Not modified (If-None-Match matched the ETag)"}
    for status in errors:
        responses[str(status)] = _body("Error", "Error")
    return {"summary": summary, "parameters": params or [], "responses": responses}


def _body(description: str, schema: str) -> dict[str, Any]:
    ref = {"$ref": f"#/components/schemas/{schema}"}
    return {"description": description, "content": {"application/json": {"schema": ref}}}


def _path_param(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": schema}


def _query(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema}


def _object(**properties: Any) -> dict[str, Any]:
    return {"type": "object", "required": list(properties), "properties": properties}


def _array(item: Any) -> dict[str, Any]:
    return {"type": "array", "items": item}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _schemas() -> dict[str, Any]:
    kpis = {m.name: {"type": [JSON_KINDS[m.kind][1], "null"]} for m in contract.KPI_METRICS}
    song = _object(rank=_INT, track_id=_STR, track_name=_STR, artists=_STR, play_count=_INT)
    ranked = _object(rank=_INT, genre=_STR, listen_count=_INT)
    return {
        "Error": _object(
            error=_object(status=_INT, code={"type": "string", "enum": _CODES}, message=_STR)
        ),
        "Days": _object(days=_array(_DATE), latest={**_DATE, "type": ["string", "null"]}),
        "Song": song,
        "RankedGenre": ranked,
        "Day": _object(
            date=_DATE,
            kpis=_array(_object(genre=_STR, **kpis)),
            top_genres=_array(_ref("RankedGenre")),
            top_songs=_array(_object(genre=_STR, songs=_array(_ref("Song")))),
            flagged=_INT,
        ),
        "TopSongs": _object(date=_DATE, genre=_STR, songs=_array(_ref("Song"))),
        "Trend": _object(
            genre=_STR, **{"from": _DATE, "to": _DATE}, points=_array(_object(date=_DATE, **kpis))
        ),
        "TopGenres": _object(
            **{"from": _DATE, "to": _DATE},
            days=_array(_object(date=_DATE, genres=_array(_ref("RankedGenre")))),
        ),
        "Quality": _object(
            **{"from": _DATE, "to": _DATE},
            by_day=_array(_object(date=_DATE, rows_in=_INT, rows_bad=_INT, reasons=_COUNTS)),
            by_file=_array(
                _object(
                    file_key=_STR,
                    status=_STR,
                    day=_DATE,
                    rows_in=_INT,
                    rows_valid=_INT,
                    rows_bad=_INT,
                    bad_by_reason=_COUNTS,
                )
            ),
            failed_files=_array(
                _object(
                    file_key=_STR, status=_STR, day=_DATE, error=_STR, retryable={"type": "boolean"}
                )
            ),
        ),
        "Runs": _object(
            runs=_array(
                _object(
                    run_id=_STR,
                    started=_STR,
                    finished=_STR,
                    duration_seconds={"type": ["number", "null"]},
                    files=_INT,
                    rows_in=_INT,
                    rows_valid=_INT,
                    rows_bad=_INT,
                    days=_INT,
                    status=_STR,
                )
            )
        ),
        "Files": _object(
            files=_array(
                _object(
                    file_key=_STR,
                    status=_STR,
                    content_hash=_STR,
                    timestamp=_STR,
                    rows_in=_INT,
                    rows_valid=_INT,
                    rows_bad=_INT,
                    bad_by_reason=_COUNTS,
                    days=_array(_DATE),
                    error=_STR,
                    retryable={"type": "boolean"},
                )
            )
        ),
        "Health": _object(
            status=_STR,
            version=_STR,
            warm=_object(days=_INT, done={"type": "boolean"}),
        ),
    }


_CODES = [
    "bad_date",
    "bad_range",
    "bad_parameter",
    "no_such_day",
    "no_such_genre",
    "not_found",
    "unavailable",
    "store_error",
    "internal",
]
