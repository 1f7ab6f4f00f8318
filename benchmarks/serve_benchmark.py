"""Benchmark `music-etl serve` under 50 concurrent keep-alive clients on two years of days.

Builds a lake of 730 days x 110 genres (80,300 `DailyGenreKPIs` rows, as many
`TopSongsPerGenre` items of 3 songs, 5 `TopGenresPerDay` rows a day) by writing generated
rows shaped like `run`'s output through the serving store's public `replace_days` (SQLite),
and a ledger of one stream file a day (a few failed) and one run a day through the
ledger's `claim`/`save`/`add_run`. Running the pipeline on two years of listens would take
minutes and measure nothing the API sees: `serve` reads only these tables.

Then starts the real `music-etl serve` CLI in a subprocess and drives each endpoint with
Debian's `wrk` (one thread, 50 connections, a Lua script picking URLs at random) for a fixed
time after a warm-up, and reports requests/s, p50/p95/p99 latency, errors, and the CPU
seconds the server and `wrk` each used. Writes an "API" section at the end of
`docs/benchmarks.md` (replacing the one an earlier run wrote).

    apt-get install wrk      # the load generator (C, event-driven: little CPU of its own)
    .venv/bin/python benchmarks/serve_benchmark.py --repeats 3
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from music_etl.adapters.ledger.base import DONE, FAILED, FileRecord, RunRecord
from music_etl.adapters.ledger.sqlite import SQLiteLedger
from music_etl.adapters.serving.sqlite import SQLiteServingStore
from music_etl.adapters.storage.local import LocalStorage
from music_etl.logic.serving_model import DAILY_GENRE_KPIS, TOP_GENRES_PER_DAY, TOP_SONGS_PER_GENRE
from music_etl.pipeline.lake import mark_lake

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
HEADING = "## API (`music-etl serve`)"
DAYS = 730
GENRES = 110
FAILED_EVERY = 73  # one failed file in 73: 10 over two years
SEED = 20_240_701
TARGET_P95_MS = 50.0
REASONS = ("bad_timestamp", "bad_user_id", "duplicate_event", "null_field", "unknown_track")
WORDS = ("Midnight", "Velvet", "Angel", "Noche", "Garden", "Electric", "Home", "Thunder", "Vida")
NAMES = ("Priya Khan", "Kwame Patel", "Mateo Kim", "Luca Müller", "Yuki García", "Zoe Thompson")


# --------------------------------------------------------------------------- the lake


def build_lake(lake: Path, last_day: date) -> dict[str, Any]:
    """Write the serving store and ledger of a lake whose days end on `last_day`."""
    rng = random.Random(SEED)
    LocalStorage(lake).write_bytes("raw/.keep", b"")
    mark_lake(LocalStorage(lake))
    days = [(last_day - timedelta(days=DAYS - 1 - i)).isoformat() for i in range(DAYS)]
    genres = [f"genre-{i:03d}" for i in range(GENRES)]
    store = SQLiteServingStore(f"sqlite:///{lake / '_state' / 'serving.sqlite'}")
    for start in range(0, DAYS, 73):  # 10 loads, as a history of runs would leave it
        chunk = days[start : start + 73]
        store.replace_days(chunk, _serving_items(rng, chunk, genres))
    store.close()
    ledger = SQLiteLedger(f"sqlite:///{lake / '_state' / 'ledger.sqlite'}")
    for index, day in enumerate(days):
        _ledger_day(ledger, rng, index, day)
    ledger.close()
    return {"days": days, "genres": genres}


def _serving_items(
    rng: random.Random, days: list[str], genres: list[str]
) -> dict[str, list[dict[str, Any]]]:
    kpis, songs, tops = [], [], []
    for day in days:
        counts = {g: rng.randint(200, 2200) for g in genres}
        for genre, count in counts.items():
            listeners = int(count * rng.uniform(0.75, 0.97))
            total = count * rng.randint(150_000, 280_000)
            kpis.append(
                {
                    "date": day,
                    "genre": genre,
                    "listen_count": count,
                    "unique_listeners": listeners,
                    "total_listening_time": total,
                    "avg_listening_time": total / listeners,
                }
            )
            songs.append({"date": day, "genre": genre, "songs": _songs(rng, count)})
        ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:5]
        tops += [
            {"date": day, "rank": r, "genre": g, "listen_count": c}
            for r, (g, c) in enumerate(ranked, start=1)
        ]
    return {DAILY_GENRE_KPIS: kpis, TOP_SONGS_PER_GENRE: songs, TOP_GENRES_PER_DAY: tops}


def _songs(rng: random.Random, count: int) -> list[dict[str, Any]]:
    plays = sorted((rng.randint(10, max(11, count // 10)) for _ in range(3)), reverse=True)
    return [
        {
            "rank": rank,
            "track_id": "".join(rng.choices("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefgh", k=22)),
            "track_name": " ".join(rng.sample(WORDS, rng.randint(1, 3))),
            "artists": ";".join(rng.sample(NAMES, rng.randint(1, 3))),
            "play_count": play,
        }
        for rank, play in enumerate(plays, start=1)
    ]


def _ledger_day(ledger: SQLiteLedger, rng: random.Random, index: int, day: str) -> None:
    """One stream file of the day, processed the next morning by one run."""
    key = f"raw/streams/streams_{day}.csv"
    owner = "bench"
    ledger.claim(key, f"{index:064x}", owner, 600)
    stamp = f"{date.fromisoformat(day) + timedelta(days=1)}T02:00:00+00:00"
    rows_in = rng.randint(90_000, 110_000)
    bad = {reason: rng.randint(200, 400) for reason in REASONS}
    failed = index % FAILED_EVERY == FAILED_EVERY - 1
    record = FileRecord(
        file_key=key,
        content_hash=f"{index:064x}",
        status=FAILED if failed else DONE,
        owner=owner,
        timestamp=stamp,
        processed_at=stamp,
        rows_in=0 if failed else rows_in,
        rows_valid=0 if failed else rows_in - sum(bad.values()),
        rows_bad=0 if failed else sum(bad.values()),
        bad_by_reason={} if failed else bad,
        days=() if failed else (day,),
        error="missing column 'ts': the header must name user_id, track_id, ts" if failed else "",
    )
    ledger.save(record)
    finished = stamp.replace("02:00:00", f"02:00:{rng.randint(3, 9):02d}")
    ledger.add_run(
        RunRecord(
            run_id=f"{index:012x}",
            started=stamp,
            finished=finished,
            files=1,
            rows_in=record.rows_in,
            rows_valid=record.rows_valid,
            rows_bad=record.rows_bad,
            days=len(record.days),
            status="failed" if failed else "ok",
        )
    )


# --------------------------------------------------------------------------- the server


@dataclass
class Server:
    """The `music-etl serve` child and its URL."""

    process: subprocess.Popen[str]
    base: str

    def cpu_seconds(self) -> float:
        """User + system CPU seconds of the server process so far."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def rss_mb(self) -> float:
        """Resident memory of the server process now, in MB."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return 0.0

    def stop(self) -> None:
        """SIGTERM (graceful shutdown), then wait."""
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start_server(lake: Path) -> Server:
    """`music-etl serve --port 0` as a user runs it; the URL is read from its first line."""
    cli = Path(sys.executable).parent / "music-etl"
    process = subprocess.Popen(
        [str(cli), "serve", "--lake", str(lake), "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    found = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
    if not found:
        process.kill()
        raise SystemExit(f"`music-etl serve` did not print its URL: {line!r}")
    base = f"http://127.0.0.1:{found.group(1)}"
    for _ in range(100):
        try:
            _get(base, "/api/v1/health")
            break
        except OSError:
            time.sleep(0.1)
    return Server(process, base)


def wait_warm(server: Server, timeout: float = 600) -> dict[str, Any]:
    """Poll `/api/v1/health` until the warm-up of the day answers is done; what it took."""
    rss_before = server.rss_mb()
    started = time.perf_counter()
    while True:
        warm = _health(server.base)["warm"]
        if warm["done"]:
            break
        if time.perf_counter() - started > timeout:
            raise SystemExit(f"the warm-up was not done after {timeout:.0f} s: {warm}")
        time.sleep(0.2)
    return {
        "warm_seconds": time.perf_counter() - started,
        "warm_days": warm["days"],
        "rss_before_mb": rss_before,
        "rss_after_mb": server.rss_mb(),
    }


def _health(base: str) -> dict[str, Any]:
    host, port = base.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=60)
    try:
        connection.request("GET", "/api/v1/health")
        answer: dict[str, Any] = json.loads(connection.getresponse().read())
        return answer
    finally:
        connection.close()


# --------------------------------------------------------------------------- the load


@dataclass(frozen=True)
class Case:
    """One row of the table: URLs picked at random, and whether to send `If-None-Match`."""

    name: str
    paths: list[str]
    single_day: bool = False
    conditional: bool = False
    uncached: bool = False
    """Each request adds a query parameter of its own: the server's kept answers never match."""


def cases(days: list[str], genres: list[str], rng: random.Random) -> list[Case]:
    """The endpoints measured, with random days and genres."""
    pick_days = rng.sample(days, 200)
    pairs = [(rng.choice(days), rng.choice(genres)) for _ in range(400)]
    last = days[-1]
    year_ago = (date.fromisoformat(last) - timedelta(days=365)).isoformat()
    return [
        Case("`/api/v1/days`", ["/api/v1/days"]),
        Case(
            "`/api/v1/days/{day}` (random days)",
            [f"/api/v1/days/{d}" for d in pick_days],
            single_day=True,
        ),
        Case(
            "`/api/v1/days/{day}` (random days), never kept",
            [f"/api/v1/days/{d}" for d in pick_days],
            single_day=True,
            uncached=True,
        ),
        Case(
            "`/api/v1/days/{day}/genres/{genre}/top-songs` (random)",
            [f"/api/v1/days/{d}/genres/{g}/top-songs" for d, g in pairs],
            single_day=True,
        ),
        Case(
            "`/api/v1/days/{day}/genres/{genre}/top-songs` (random), never kept",
            [f"/api/v1/days/{d}/genres/{g}/top-songs" for d, g in pairs],
            single_day=True,
            uncached=True,
        ),
        Case(
            "`/api/v1/genres/{genre}/trend` (default 30 days)",
            [f"/api/v1/genres/{g}/trend" for g in genres],
        ),
        Case(
            "`/api/v1/genres/{genre}/trend` (366 days)",
            [f"/api/v1/genres/{g}/trend?from={year_ago}&to={last}" for g in genres],
        ),
        Case("`/api/v1/top-genres` (default 30 days)", ["/api/v1/top-genres"]),
        Case("`/api/v1/quality` (default 30 days)", ["/api/v1/quality"]),
        Case("`/api/v1/runs` (default 50)", ["/api/v1/runs"]),
        Case(
            "`/` + static (page, app.js, charts.js, app.css)",
            ["/", "/static/app.js", "/static/charts.js", "/static/app.css"],
        ),
        Case(
            "`/api/v1/days/{day}` with `If-None-Match` (304)",
            [f"/api/v1/days/{d}" for d in pick_days],
            single_day=True,
            conditional=True,
        ),
    ]


_LUA = """
local targets = {TARGETS}
math.randomseed(SEED)
local sent = 0
request = function()
  local t = targets[math.random(#targets)]
  local headers = {}
  local path = t[1]
  if t[2] ~= "" then headers["If-None-Match"] = t[2] end
  if UNCACHED then
    sent = sent + 1
    path = path .. "?request=" .. sent
  end
  return wrk.format("GET", path, headers)
end
response = function(status, headers, body)
  if status ~= EXPECT then bad = bad + 1 end
end
init = function(args) bad = 0 end
done = function(summary, latency, requests)
  local e = summary.errors
  io.stderr:write(string.format(
    'RESULT {"requests":%d,"seconds":%f,"p50":%f,"p95":%f,"p99":%f,'
    .. '"socket_errors":%d,"non_2xx_3xx":%d}\\n',
    summary.requests, summary.duration / 1e6, latency:percentile(50) / 1e3,
    latency:percentile(95) / 1e3, latency:percentile(99) / 1e3,
    e.connect + e.read + e.write + e.timeout, e.status))
end
"""


def _lua(server: Server, case: Case) -> str:
    targets = []
    for path in case.paths:
        status, etag = _get(server.base, path)
        if status != 200:
            raise SystemExit(f"GET {path} answered {status}, not 200")
        tag = etag if case.conditional else ""
        targets.append("{%s, %s}" % (json.dumps(path), json.dumps(tag)))  # noqa: UP031
    expect = "304" if case.conditional else "200"
    return (
        _LUA.replace("{TARGETS}", "{" + ",\n".join(targets) + "}")
        .replace("SEED", str(SEED))
        .replace("EXPECT", expect)
        .replace("UNCACHED", "true" if case.uncached else "false")
    )


def _get(base: str, path: str) -> tuple[int, str]:
    """GET `path` of the server at `base`: the status and the ETag."""
    host, port = base.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=60)
    try:
        connection.request("GET", path)
        answer = connection.getresponse()
        answer.read()
        return answer.status, answer.headers.get("ETag", "")
    finally:
        connection.close()


def run_case(server: Server, case: Case, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """Warm up, then `wrk` for `args.seconds`; latency in ms, CPU seconds of server and wrk."""
    script = work / "case.lua"
    script.write_text(_lua(server, case), encoding="utf-8")
    command = ["wrk", "-t1", f"-c{args.clients}", "--timeout", "30s", "-s", str(script)]
    _wrk([*command, f"-d{args.warmup}s", server.base])
    server_cpu = server.cpu_seconds()
    result, wrk_cpu = _wrk([*command, f"-d{args.seconds}s", server.base])
    result["server_cpu"] = server.cpu_seconds() - server_cpu
    result["wrk_cpu"] = wrk_cpu
    result["rps"] = result["requests"] / result["seconds"]
    result["errors"] = result["socket_errors"] + result["non_2xx_3xx"]
    return result


def _wrk(command: list[str]) -> tuple[dict[str, Any], float]:
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    out, err = child.stdout.read(), child.stderr.read()  # type: ignore[union-attr]
    line = next((x for x in err.splitlines() if x.startswith("RESULT ")), None)
    if child.returncode != 0 or line is None:
        raise SystemExit(f"wrk failed ({child.returncode}): {err or out}")
    return json.loads(line.removeprefix("RESULT ")), usage.ru_utime + usage.ru_stime


# --------------------------------------------------------------------------- the report


def _load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} / {five:.2f} / {fifteen:.2f}"


def _median_row(case: Case, runs: list[dict[str, Any]]) -> str:
    def med(key: str) -> float:
        return statistics.median(r[key] for r in runs)

    def spread(key: str, fmt: str) -> str:
        values = [r[key] for r in runs]
        return f"{format(med(key), fmt)} ({format(min(values), fmt)} to {format(max(values), fmt)})"

    cpu = med("server_cpu") / med("seconds")
    wrk = med("wrk_cpu") / med("seconds")
    per_cpu = statistics.median(r["requests"] / max(r["server_cpu"], 1e-9) for r in runs)
    mark = ""
    if case.single_day:
        mark = " ✅" if med("p95") < TARGET_P95_MS else " ❌"
    return (
        f"| {case.name} | {spread('rps', ',.0f')} | {med('p50'):.1f} | "
        f"{spread('p95', '.1f')}{mark} | {med('p99'):.1f} | {sum(r['errors'] for r in runs)} | "
        f"{cpu:.2f} | {wrk:.2f} | {per_cpu:,.0f} |"
    )


def section(
    args: argparse.Namespace, info: dict[str, Any], results: list[tuple[Case, list[dict[str, Any]]]]
) -> str:
    """The markdown section for `docs/benchmarks.md`."""
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        HEADING,
        "",
        f"Generated by `benchmarks/serve_benchmark.py --repeats {args.repeats} --seconds "
        f"{args.seconds}` (`make bench-serve`); re-run it to refresh this section.",
        "",
        f"Machine: {os.cpu_count()} cores ({platform.machine()}), Python "
        f"{platform.python_version()}, run on {stamp}, shared with other engineers' test runs: "
        f"load average (1/5/15 min) {info['load_before']} before, {info['load_after']} after.",
        "",
        f"Lake: {DAYS} days x {GENRES} genres = {DAYS * GENRES:,} `DailyGenreKPIs` rows, as many "
        f"`TopSongsPerGenre` items (3 songs each), 5 `TopGenresPerDay` rows a day, written "
        f"through `SQLiteServingStore.replace_days` in 10 loads of 73 days from generated rows "
        f"shaped like `run`'s output (built in {info['build_seconds']:.1f} s; running the "
        f"pipeline over two years of listens would take minutes and `serve` reads only these "
        f"tables); a ledger of {DAYS} stream files (one a day, {DAYS // FAILED_EVERY} failed) "
        f"and {DAYS} runs. Serving store {info['serving_mb']:.0f} MB.",
        "",
        f"Server: the real `music-etl serve --lake … --port 0` in a subprocess. Load: Debian's "
        f"`wrk` 4.1 in its own process (1 thread, {args.clients} keep-alive connections, no "
        f"think time: each connection sends its next request as soon as the answer arrives), "
        f"a Lua script picking each request's URL at random from the row's list (200 random "
        f"days; 400 random day/genre pairs; the 110 genres); {args.warmup} s of warm-up, then "
        f"{args.seconds} s measured, per endpoint, {args.repeats} rounds over all endpoints. "
        f"Figures are the median of the rounds, (min to max) where shown; errors are summed over "
        f"all rounds (socket errors, timeouts, and any status other than the expected 200/304).",
        "",
        "*server CPU* and *wrk CPU* are CPU seconds per second of wall time of each process "
        "(1.00 = one core): the load generator's share shows it does not starve the server. "
        "*requests per server CPU-s* is what the server costs, whatever else the machine is "
        "doing; latency is not: with 50 clients and no think time, p50 is about 50 / "
        "(requests/s) (Little's law), so it moves with the share of a core the server gets.",
        "",
        "The server keeps each encoded answer until the serving store's (or, for "
        "`/quality` and `/runs`, the ledger's) version moves, and precomputes the single-day "
        "answers (every `/days/{day}` and each of its genres' top songs) of a new version in a "
        'background thread (docs/api.md, "Caching"). The benchmark waits for that warm-up '
        "(`/api/v1/health` `warm.done`) before measuring: "
        f"{info['warm_days']} days in {info['warm_seconds']:.1f} s, server RSS "
        f"{info['rss_before_mb']:.0f} MB before and {info['rss_after_mb']:.0f} MB after. "
        "So the rows without *never kept* are answered from memory, whether a day was asked "
        "before or not. *never kept* rows add a query parameter of their own to every request "
        "(no kept or precomputed answer matches it), so each one reads SQLite and encodes "
        "JSON: the cold path, as a request for a day the warm-up has not reached yet.",
        "",
        "| endpoint | requests/s | p50 (ms) | p95 (ms) | p99 (ms) | errors | server CPU "
        "| wrk CPU | requests per server CPU-s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        *(_median_row(case, runs) for case, runs in results),
        "",
        f"✅/❌: the target, p95 < {TARGET_P95_MS:.0f} ms for the single-day endpoints, at the "
        f"load average above.",
        "",
        "Reading it: the kernel shares a busy machine's CPU per thread. A kept answer is sent "
        "from the server's event loop (one busy thread), so under a high load average the "
        "server gets a small share of a core there (*server CPU*) and latency rises although "
        "each request costs an order of magnitude less CPU than a read (*requests per server "
        "CPU-s*); a read runs in the thread pool, whose many runnable threads win a larger "
        "share. At one core for the server, the kept single-day answers come to about "
        "*requests per server CPU-s* requests/s, i.e. a p50 near 50 clients / that rate.",
        "",
    ]
    return "\n".join(lines)


def write(out: Path, text: str) -> None:
    """Replace this script's section, keeping every section before and after it."""
    page = out.read_text(encoding="utf-8") if out.exists() else "# Benchmarks\n"
    before, after = page, ""
    if HEADING + "\n" in page:
        start = page.index(HEADING + "\n")
        end = page.find("\n## ", start + len(HEADING))
        before = page[:start]
        after = page[end + 1 :] if end != -1 else ""
    updated = before.rstrip("\n") + "\n\n" + text
    if after:
        updated = updated.rstrip("\n") + "\n\n" + after
    out.write_text(updated, encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--only", help="Measure only the endpoints whose name contains this.")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks.md")
    parser.add_argument("--no-write", action="store_true", help="Print, do not write the page.")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is missing: apt-get install wrk (Debian's package)")
    work = Path(tempfile.mkdtemp(prefix="serve-bench-"))
    try:
        lake = work / "lake"
        started = time.perf_counter()
        built = build_lake(lake, datetime.now(UTC).date() - timedelta(days=1))
        info: dict[str, Any] = {
            "build_seconds": time.perf_counter() - started,
            "serving_mb": (lake / "_state" / "serving.sqlite").stat().st_size / 1e6,
            "load_before": _load(),
        }
        print(f"lake built in {info['build_seconds']:.1f} s; load {info['load_before']}")
        chosen = cases(built["days"], built["genres"], random.Random(SEED))
        chosen = [c for c in chosen if not args.only or args.only in c.name]
        server = start_server(lake)
        info.update(wait_warm(server))
        print(
            f"warm-up: {info['warm_days']} days in {info['warm_seconds']:.1f} s; server RSS "
            f"{info['rss_before_mb']:.0f} MB -> {info['rss_after_mb']:.0f} MB; load {_load()}",
            flush=True,
        )
        results: list[tuple[Case, list[dict[str, Any]]]] = [(c, []) for c in chosen]
        try:
            for round_ in range(args.repeats):
                for case, runs in results:
                    runs.append(run_case(server, case, args, work))
                    r = runs[-1]
                    print(
                        f"round {round_ + 1} {case.name}: {r['rps']:.0f} req/s, p50 "
                        f"{r['p50']:.1f} p95 {r['p95']:.1f} p99 {r['p99']:.1f} ms, errors "
                        f"{r['errors']}, server CPU {r['server_cpu'] / r['seconds']:.2f}, wrk "
                        f"CPU {r['wrk_cpu'] / r['seconds']:.2f}, load {_load()}",
                        flush=True,
                    )
        finally:
            server.stop()
        info["load_after"] = _load()
        text = section(args, info, results)
        print(text)
        if not args.no_write:
            write(args.out, text)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
