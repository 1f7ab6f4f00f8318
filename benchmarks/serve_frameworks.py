"""Starlette or FastAPI for `music-etl serve`: requests/s of `/api/v1/days/{day}`.

Both apps answer the same route with the same function (`serving_views.one_day`) over
the same read-only SQLite store, through each framework's own test client, in one
process: what differs is only the framework's routing, parameter handling and response.

    python benchmarks/serve_frameworks.py --lake ./demo-lake --requests 3000
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

from music_etl.adapters.serving import open_serving
from music_etl.serve import serving_views
from music_etl.settings import load_settings


def starlette_app(store: Any) -> Any:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def day(request: Request) -> JSONResponse:
        return JSONResponse(serving_views.one_day(store, request.path_params["day"]))

    return Starlette(routes=[Route("/api/v1/days/{day}", day)])


def fastapi_app(store: Any) -> Any:
    from fastapi import FastAPI

    app = FastAPI()

    @app.get("/api/v1/days/{day}")
    def day(day: str) -> dict[str, Any]:
        return serving_views.one_day(store, day)

    return app


def measure(app: Any, day: str, requests: int) -> tuple[float, float]:
    """Requests per second of wall time and per second of this process's CPU time.

    CPU time (all threads: the test client runs the app in a portal thread) is what
    the framework costs; wall time also counts whatever else the machine is doing.
    """
    from starlette.testclient import TestClient

    with TestClient(app) as client:
        for _ in range(50):
            client.get(f"/api/v1/days/{day}")
        wall, cpu = time.perf_counter(), time.process_time()
        for _ in range(requests):
            assert client.get(f"/api/v1/days/{day}").status_code == 200
        return requests / (time.perf_counter() - wall), requests / (time.process_time() - cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--lake", default="./demo-lake")
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    store = open_serving(load_settings(lake=args.lake).serving_url, read_only=True)
    day = store.days()[-1]
    builders = {"starlette": starlette_app, "fastapi": fastapi_app}
    rates: dict[str, list[tuple[float, float]]] = {name: [] for name in builders}
    for _ in range(args.repeats):  # interleaved, so a burst of load hits both alike
        for name, build in builders.items():
            rates[name].append(measure(build(store), day, args.requests))
    for name, pairs in rates.items():
        wall = statistics.median(p[0] for p in pairs)
        cpu = statistics.median(p[1] for p in pairs)
        print(
            f"{name}: median {wall:.0f} req/s (wall), {cpu:.0f} req/CPU-s, "
            f"{args.repeats} runs of {args.requests} requests"
        )


if __name__ == "__main__":
    main()
