"""The Starlette app: routes, caching (ETags) and the JSON error format.

Example:
    >>> from music_etl.settings import load_settings
    >>> app = create_app(load_settings(lake="./demo-lake"))  # doctest: +SKIP
    >>> # uvicorn.run(app, host="127.0.0.1", port=8000)
"""

from __future__ import annotations

import hashlib
import logging
import sqlite3
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from music_etl import __version__
from music_etl.adapters.ledger import Ledger
from music_etl.adapters.serving import ServingStore
from music_etl.adapters.sqlite_common import sqlite_error
from music_etl.errors import MusicEtlError, Retryable
from music_etl.serve import ledger_views, serving_views
from music_etl.serve.cache import BodyCache
from music_etl.serve.errors import BAD_PARAMETER, NOT_FOUND, STORE_ERROR, UNAVAILABLE, ApiError
from music_etl.serve.openapi import PREFIX, openapi_document
from music_etl.serve.params import day_range, parse_day, parse_limit, today
from music_etl.serve.sources import Sources, open_sources
from music_etl.serve.warm import Warmer
from music_etl.settings import Settings

log = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"
_NO_STORE = {"Cache-Control": "no-store"}
#: Bytes of ledger answers kept (`/files` of two years of daily files is about 400 KB).
LEDGER_MAX_BYTES = 16 * 2**20


def create_app(source: Settings | Sources, *, warm: bool = True) -> Starlette:
    """The API over `source`: settings (opened read-only here) or already opened sources.

    With `warm`, a background thread precomputes the single-day answers of each serving
    store version while the app runs (from its startup to its shutdown; `serve/warm.py`).
    """
    sources = source if isinstance(source, Sources) else open_sources(source)
    served = _ServedBy(sources)

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        if warm:
            served.warmer.start()
        try:
            yield
        finally:
            served.warmer.stop()

    return Starlette(
        routes=_routes(served),
        lifespan=lifespan,
        exception_handlers={
            ApiError: _api_error,
            HTTPException: _http_error,
            MusicEtlError: _store_error,
            sqlite3.Error: _sqlite_error,
            Exception: _internal_error,
        },
    )


def _routes(served: _ServedBy) -> list[BaseRoute]:
    api = {
        "/days": served.serving(lambda store, _r: serving_views.days(store)),
        "/days/{day}": served.serving(_one_day, queried=False),
        "/days/{day}/genres/{genre}/top-songs": served.serving(_top_songs, queried=False),
        "/genres/{genre}/trend": served.serving(_trend),
        "/top-genres": served.serving(_top_genres),
        "/quality": served.ledger(_quality),
        "/runs": served.ledger(_runs),
        "/files": served.ledger(_files),
        "/health": served.health,
        "/openapi.json": _openapi,
    }
    return [
        *(Route(PREFIX + path, endpoint, methods=["GET"]) for path, endpoint in api.items()),
        Route("/", _index, methods=["GET"]),
        Mount("/static", StaticFiles(directory=STATIC, check_dir=False), name="static"),
    ]


class _ServedBy:
    """Endpoint factories: read through `sources`, answer with an ETag, honour 304."""

    def __init__(self, sources: Sources) -> None:
        self.sources = sources
        self.bodies = BodyCache()
        self.ledger_bodies = BodyCache(max_bytes=LEDGER_MAX_BYTES)
        self.warmer = Warmer(sources, self.bodies, _path_tag, PREFIX)

    def health(self, _request: Request) -> Response:
        """`/health`: up, the version, and how far the warm-up of the day answers has come."""
        current = self.sources.quick_version()  # None on DynamoDB: no network call here
        if current is not None:
            self.warmer.notice(current)  # a load landed: not warm for it (yet)
        body = {"status": "ok", "version": __version__, "warm": self.warmer.status().health()}
        return JSONResponse(body, headers=_NO_STORE)

    def serving(
        self, build: Callable[[ServingStore, Request], Any], *, queried: bool = True
    ) -> Callable[..., Any]:
        """An endpoint over the serving store: the ETag comes before any item is read.

        An endpoint that reads no query parameter (not `queried`: the single-day ones,
        whose answers the warm-up precomputes) does not keep an answer to a URL with a
        query: it is the same answer, and URLs made unique (cache busting) would push the
        precomputed days out of the cache.

        The encoded answer is kept by its ETag until the store's version moves, so a day
        asked again is neither read nor encoded again (docs/api.md, "Caching"). A kept
        answer (or a 304) is sent from the event loop when the version is a quick local
        read; anything else runs in the thread pool.
        """
        sources, bodies, warmer = self.sources, self.bodies, self.warmer

        def kept(request: Request, version: str) -> Response | None:
            """A 304 or the kept answer, without reading an item; None when not kept."""
            tag = _tag(request, version)
            if _fresh(request, tag):
                return _not_modified(tag)
            body = bodies.get(version, tag)
            return None if body is None else _json_bytes(body, tag)

        def slow(request: Request) -> Response:
            """In a worker thread: the version, then the kept answer or a fresh read."""
            version = sources.call(sources.serving.version)
            warmer.notice(version)
            found = kept(request, version)
            if found is not None:
                return found
            body = _encode(sources.call(lambda: build(sources.serving, request)))
            keep = queried or not request.url.query
            if keep and sources.call(sources.serving.version) == version:  # not across a load
                bodies.put(version, _tag(request, version), body)
            return _json_bytes(body, _tag(request, version))

        async def endpoint(request: Request) -> Response:
            version = sources.quick_version()
            quick = None if version is None else kept(request, version)
            return quick if quick is not None else await run_in_threadpool(slow, request)

        return endpoint

    def ledger(self, build: Callable[[Ledger, Request], Any]) -> Callable[..., Response]:
        """An endpoint over the ledger: kept, and tagged, per ledger version and UTC day.

        `Ledger.version()` moves when any record, run or lock is written (SQLite at once,
        DynamoDB every `VERSION_SECONDS`); the UTC day is part of it because `/quality`'s
        default range ends today. So an answer is built from the ledger's records once
        per version, not on every request (docs/api.md, "Caching").
        """
        sources, bodies = self.sources, self.ledger_bodies

        def endpoint(request: Request) -> Response:
            version = f"{sources.call(sources.ledger.version)} {today().isoformat()}"
            tag = _tag(request, version)
            if _fresh(request, tag):
                return _not_modified(tag)
            body = bodies.get(version, tag)
            if body is None:
                body = _encode(sources.call(lambda: build(sources.ledger, request)))
                bodies.put(version, tag, body)
            return _json_bytes(body, tag)

        return endpoint


def _one_day(store: ServingStore, request: Request) -> Any:
    return serving_views.one_day(store, _day(request))


def _top_songs(store: ServingStore, request: Request) -> Any:
    return serving_views.top_songs(store, _day(request), request.path_params["genre"])


def _trend(store: ServingStore, request: Request) -> Any:
    span = day_range(request.query_params, _default_end(store, request))
    return serving_views.trend(store, request.path_params["genre"], span)


def _top_genres(store: ServingStore, request: Request) -> Any:
    return serving_views.top_genres(
        store, day_range(request.query_params, _default_end(store, request))
    )


def _quality(ledger: Ledger, request: Request) -> Any:
    return ledger_views.quality(ledger, day_range(request.query_params, today()))


def _runs(ledger: Ledger, request: Request) -> Any:
    return ledger_views.runs(ledger, parse_limit(request.query_params))


def _files(ledger: Ledger, request: Request) -> Any:
    return ledger_views.files(ledger, request.query_params.get("status"))


def _day(request: Request) -> str:
    return parse_day(request.path_params["day"], "day").isoformat()


def _default_end(store: ServingStore, request: Request) -> Any:
    """The latest day, asked of the store only when `to` is not given."""
    if "to" in request.query_params:
        return parse_day(request.query_params["to"], "to")
    return serving_views.latest_day(store)


def _openapi(_request: Request) -> Response:
    return JSONResponse(openapi_document(__version__))


def _index(_request: Request) -> Response:
    return FileResponse(STATIC / "index.html", media_type="text/html; charset=utf-8")


def _encode(body: Any) -> bytes:
    """`body` as compact UTF-8 JSON (orjson: ~30 µs for a day's 60 KB, `json` ~540 µs)."""
    return orjson.dumps(body)


def _tag(request: Request, version: str) -> str:
    """The ETag of an answer: the store's (or ledger's) version, the path and the query."""
    return _path_tag(version, request.url.path, request.url.query)


def _path_tag(version: str, path: str, query: str = "") -> str:
    """The ETag of the answer to `path?query` under `version` (the warm-up's too)."""
    return _etag(f"{version} {path}?{query}")


def _etag(seed: str) -> str:
    return f'W/"{hashlib.sha256(seed.encode()).hexdigest()[:32]}"'


def _fresh(request: Request, tag: str) -> bool:
    """Whether `If-None-Match` names `tag` (weak comparison, `*` matches)."""
    header = request.headers.get("if-none-match", "")
    offered = {part.strip().removeprefix("W/") for part in header.split(",")}
    return "*" in offered or tag.removeprefix("W/") in offered


def _headers(tag: str) -> dict[str, str]:
    return {"ETag": tag, "Cache-Control": "no-cache"}


def _not_modified(tag: str) -> Response:
    return Response(status_code=304, headers=_headers(tag))


def _json_bytes(body: bytes, tag: str) -> Response:
    return Response(body, media_type="application/json", headers=_headers(tag))


def _error(error: ApiError) -> Response:
    return JSONResponse(error.body(), status_code=error.status, headers=_NO_STORE)


async def _api_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return _error(exc)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        message = f"No such path {request.url.path}: GET {PREFIX}/openapi.json lists them."
        return _error(ApiError(404, NOT_FOUND, message))
    text = f"{request.method} {request.url.path}: {exc.detail}; the API answers GET only."
    return _error(ApiError(exc.status_code, BAD_PARAMETER, text))


async def _store_error(_request: Request, exc: Exception) -> Response:
    """The store or ledger failed: 503 when it may pass (throttling, a lock), else 500."""
    if isinstance(exc, Retryable):
        return _error(ApiError(503, UNAVAILABLE, f"{exc} (try again shortly)"))
    return _error(ApiError(500, STORE_ERROR, str(exc)))


async def _sqlite_error(request: Request, exc: Exception) -> Response:
    """A locked, unreadable or corrupt SQLite file is the store's failure; bad SQL is a bug."""
    assert isinstance(exc, sqlite3.Error)
    ours = sqlite_error(exc)
    if ours is None:
        return await _internal_error(request, exc)
    return await _store_error(request, ours)


async def _internal_error(_request: Request, exc: Exception) -> Response:
    log.error("Internal error answering a request", exc_info=exc)
    message = "Internal error (a bug): the server log has the details; please report it."
    return _error(ApiError(500, "internal", message))
