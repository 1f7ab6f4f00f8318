"""Benchmark `music-etl run` against hand-written Polars and DuckDB yardsticks.

Generates a lake once, then times, each in a fresh subprocess (so its peak RSS is its own):
the Polars reference, the DuckDB reference, `run` on a copy of the lake, and two incremental
cases (one new 1 M-row file on the lake after `run`, spread over all days or late data on the
last 2 days, versus that file alone on a fresh lake).
Writes the numbers into a markdown page (default `docs/benchmarks.md`).

    .venv/bin/python benchmarks/run_benchmark.py --rows 10_000_000
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
NOW = "2024-07-01T00:00:00Z"
SEED = 20_240_701
NEW_FILE_ROWS = 1_000_000
TARGET_RATIO = 1.2
TARGET_RSS_GB = 3.0
TARGET_INCREMENTAL = 3.0
TABLES = ("daily_genre_kpis", "top_songs", "top_genres")
KEYS = {
    "daily_genre_kpis": ["date", "genre"],
    "top_songs": ["date", "genre", "rank"],
    "top_genres": ["date", "rank"],
}


# --------------------------------------------------------------------------- children


def _child_reference(engine: str, lake: str, out: Path) -> dict[str, Any]:
    sys.path.insert(0, str(HERE))
    if engine == "polars":
        import reference_polars as reference
    else:
        import reference_duckdb as reference
    clock = datetime.fromisoformat(NOW.replace("Z", "+00:00")).replace(tzinfo=None)
    start = time.perf_counter()
    tables = reference.compute(lake, clock)
    seconds = time.perf_counter() - start
    for name, table in tables.items():
        table.write_parquet(out / f"{name}.parquet")
    reasons = dict(tables["reasons"].iter_rows())
    return {"seconds": seconds, "reasons": reasons}


@dataclass
class _Steps:
    """Inclusive wall time and call count per instrumented step of `run`."""

    seconds: dict[str, float] = field(default_factory=dict)
    calls: dict[str, int] = field(default_factory=dict)

    def wrap(self, owner: Any, attr: str, label: str) -> None:
        func: Callable[..., Any] = getattr(owner, attr)

        @functools.wraps(func)
        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return func(*args, **kwargs)
            finally:
                self.seconds[label] = self.seconds.get(label, 0.0) + time.perf_counter() - start
                self.calls[label] = self.calls.get(label, 0) + 1

        setattr(owner, attr, timed)


def _instrument() -> _Steps:
    """Wrap the steps of `run` with timers (a few calls each: no measurable overhead)."""
    from music_etl.engines.polars import engine, io, streams
    from music_etl.pipeline import batch, run

    steps = _Steps()
    cls = engine.PolarsEngine
    for owner, attr, label in (
        (run, "refresh_dimensions", "dimensions (validate users+songs)"),
        (run, "discover", "discover (list + content hash)"),
        (batch, "process_batch", "process_batch (total)"),
        (cls, "validate_streams", "validate_streams (total)"),
        (cls, "read_raw", "read CSV"),
        (cls, "judge_rows", "row rules (trim, regex, parse, lookups)"),
        (cls, "first_occurrence", "duplicate check (in batch + earlier files)"),
        (streams, "_write_valid", "write validated day files"),
        (cls, "write_bad", "write bad records"),
        (batch, "recompute", "recompute days (total, incl. serving load)"),
        (cls, "compute_days", "compute_days (read, join, aggregate, write)"),
        (cls, "write_tables", "write processed files"),
        (io, "write_all", "parallel Parquet writes (all)"),
    ):
        steps.wrap(owner, attr, label)
    return steps


def _child_run(lake: str) -> dict[str, Any]:
    steps = _instrument()
    from music_etl.pipeline.run import run
    from music_etl.settings import Settings

    start = time.perf_counter()
    # The generated files are complete when written: time the work, not the settle wait.
    report = run(Settings(lake=lake, now=NOW, settle_seconds=0))
    seconds = time.perf_counter() - start
    reasons: dict[str, int] = {}
    for result in report.processed:
        for reason, rows in result.bad_by_reason.items():
            reasons[reason] = reasons.get(reason, 0) + rows
    reasons["valid"] = sum(f.rows_valid for f in report.processed)
    return {
        "seconds": seconds,
        "reasons": reasons,
        "files": len(report.files),
        "failed": {f.key: f.error for f in report.failed},
        "days": len(report.days),
        "steps": steps.seconds,
        "calls": steps.calls,
    }


def _child_generate(args: argparse.Namespace) -> dict[str, Any]:
    from music_etl.adapters.storage.local import LocalStorage
    from music_etl.sample.generator import generate

    start = time.perf_counter()
    report = generate(
        LocalStorage(args.lake),
        streams=args.rows,
        files=args.files,
        days=args.days,
        seed=SEED,
        append=args.append,
    )
    return {
        "seconds": time.perf_counter() - start,
        "stream_keys": list(report.stream_keys),
        "bad_rows": report.bad_rows,
        "valid_rows": report.valid_rows,
    }


def child_main(args: argparse.Namespace) -> None:
    out = Path(args.result)
    out.mkdir(parents=True, exist_ok=True)
    if args.child == "run":
        result = _child_run(args.lake)
    elif args.child == "generate":
        result = _child_generate(args)
    else:
        result = _child_reference(args.child, args.lake, out)
    (out / "result.json").write_text(json.dumps(result, default=str))


# --------------------------------------------------------------------------- parent


@dataclass
class Measured:
    """One child process: its own timing, its peak RSS, its result."""

    name: str
    seconds: float
    process_seconds: float
    peak_rss_mb: float
    result: dict[str, Any]
    out: Path


def measure(name: str, child: str, lake: Path, out: Path, timeout: float = 3600) -> Measured:
    """Run one child in a fresh interpreter; peak RSS from `wait4` of that child alone."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", child]
    cmd += ["--lake", str(lake), "--result", str(out)]
    print(f"  {name} …", flush=True)
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT)
    deadline = start + timeout
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if time.perf_counter() > deadline:
            proc.kill()
            pid, status, usage = os.wait4(proc.pid, 0)
            break
        time.sleep(0.05)
    proc.returncode = os.waitstatus_to_exitcode(status)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{name} failed with exit code {proc.returncode}")
    result = json.loads((out / "result.json").read_text())
    rss = usage.ru_maxrss / 1024  # kilobytes on Linux
    print(f"    {result['seconds']:.1f} s, peak RSS {rss:,.0f} MB", flush=True)
    return Measured(name, result["seconds"], elapsed, rss, result, out)


def generate_lake(lake: Path, rows: int, files: int, days: int, append: int = 0) -> dict[str, Any]:
    """Run the generator in a child process and return its report.

    The parent stays small this way: a child's `ru_maxrss` starts from its parent's size
    at the fork, so a parent that had generated 10 M rows would lend every child its peak.
    """
    out = Path(tempfile.mkdtemp(prefix="generate-"))
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", "generate"]
    cmd += ["--lake", str(lake), "--result", str(out), "--rows", str(rows)]
    cmd += ["--files", str(files), "--days", str(days), "--append", str(append)]
    try:
        subprocess.run(cmd, cwd=ROOT, check=True)
        result: dict[str, Any] = json.loads((out / "result.json").read_text())
    finally:
        shutil.rmtree(out, ignore_errors=True)
    return result


def new_stream_file(path: Path, rows: int, days: int, batch: int = 1) -> dict[str, int]:
    """One stream file of `rows` over the SAME users and song catalogue as the lake.

    Its listens span the last `days` days of the lake's; `batch` picks other rows.
    """
    scratch = Path(tempfile.mkdtemp(prefix="new-file-"))
    try:
        report = generate_lake(scratch, rows, 1, days, append=batch)
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(scratch / report["stream_keys"][0], path)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    bad: dict[str, int] = report["bad_rows"]
    return bad


def _norm(table: pl.DataFrame, name: str) -> pl.DataFrame:
    casts = {c: pl.Int64 for c, t in table.schema.items() if t.is_integer() and c not in ("date",)}
    frame = table.with_columns(
        pl.col("date").cast(pl.String), *(pl.col(c).cast(t) for c, t in casts.items())
    )
    columns = list(frame.columns)
    return frame.select(sorted(columns)).sort(KEYS[name])


def processed(lake: Path, name: str) -> pl.DataFrame:
    pattern = str(lake / "processed" / name / "**" / "*.parquet")
    return pl.read_parquet(pattern, hive_partitioning=True)


def compare(reference: Measured, lake: Path) -> dict[str, str]:
    """Per output table: `equal`, or what differs between the reference and `run`'s lake."""
    verdict = {}
    for name in TABLES:
        ref = _norm(pl.read_parquet(reference.out / f"{name}.parquet"), name)
        got = _norm(processed(lake, name), name)
        if ref.columns != got.columns:
            verdict[name] = f"columns differ: {ref.columns} vs {got.columns}"
        elif ref.height != got.height:
            verdict[name] = f"rows differ: {ref.height} vs {got.height}"
        else:
            floats = [c for c, t in ref.schema.items() if t.is_float()]
            exact = [c for c in ref.columns if c not in floats]
            same = ref.select(exact).equals(got.select(exact))
            for column in floats:
                same = same and bool(np.allclose(ref[column].to_numpy(), got[column].to_numpy()))
            verdict[name] = "equal" if same else "values differ"
    return verdict


def machine() -> dict[str, str]:
    import duckdb

    mem_kb = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            mem_kb = int(line.split()[1])
    return {
        "nproc": str(os.cpu_count()),
        "ram": f"{mem_kb / 1024**2:.1f} GiB",
        "cpu": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "polars": pl.__version__,
        "duckdb": duckdb.__version__,
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


def _ok(flag: bool) -> str:
    return "✅ met" if flag else "❌ missed"


def render(ctx: dict[str, Any]) -> str:
    m = ctx["machine"]
    pol, duck, run = ctx["polars"], ctx["duckdb"], ctx["run"]
    fastest = min(pol, duck, key=lambda x: x.seconds)
    ratio = run.seconds / fastest.seconds
    lines = [
        "# Benchmarks",
        "",
        "Generated by `benchmarks/run_benchmark.py` "
        f"(`--rows {ctx['rows']:_} --files {ctx['files']} --days {ctx['days']}`); "
        "do not edit by hand, re-run it.",
        "",
        f"Machine: {m['nproc']} cores, {m['ram']} RAM ({m['cpu']}), Python {m['python']}, "
        f"Polars {m['polars']}, DuckDB {m['duckdb']}, run on {m['date']}.",
        "",
        f"Data: {ctx['rows']:,} stream rows in {ctx['files']} CSV files "
        f"({ctx['raw_mb']:,.0f} MB) over {ctx['days']} days, 10,000 users, 20,000 tracks "
        f"(~15 % in two genres), 2 % planted bad rows of every reason; generated in "
        f"{ctx['generate_s']:.1f} s. Clock fixed at `{NOW}`.",
        "",
        "Every case runs in a fresh subprocess; *time* is measured inside it around the work "
        "(imports excluded), *peak RSS* is the child's `ru_maxrss` from `wait4`.",
        "",
        "## Full load",
        "",
        "| case | time (s) | process wall (s) | peak RSS (MB) | vs fastest reference |",
        "|---|---:|---:|---:|---:|",
    ]
    for case in (pol, duck, run):
        lines.append(
            f"| {case.name} | {case.seconds:.1f} | {case.process_seconds:.1f} | "
            f"{case.peak_rss_mb:,.0f} | {case.seconds / fastest.seconds:.2f}x |"
        )
    incremental = [(case, *ctx[case.key]) for case in INCREMENTAL_CASES if case.key in ctx]
    if incremental:
        lines += [
            "",
            "## Incremental",
            "",
            f"One new file of {NEW_FILE_ROWS:,} rows (other seed, same users and songs) dropped "
            "on the lake after the full `run`, versus the same file alone on a fresh lake with "
            "the same dimensions. The first file spreads its listens over all the lake's "
            f"{ctx['days']} days, so `run` rechecks and recomputes every day (the worst case); "
            "the second is late data on the last 2 days, as a late delivery is. "
            "The target applies to both.",
            "",
            "| new file | on the loaded lake (s) | peak RSS (MB) | alone (s) | peak RSS (MB) "
            "| ratio |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for case, inc, cold in incremental:
            lines.append(
                f"| {case.label} | {inc.seconds:.1f} | {inc.peak_rss_mb:,.0f} | "
                f"{cold.seconds:.1f} | {cold.peak_rss_mb:,.0f} | "
                f"{inc.seconds / cold.seconds:.2f}x |"
            )
    lines += ["", "## Targets", "", "| target | measured | status |", "|---|---|---|"]
    lines.append(
        f"| `run` ≤ {TARGET_RATIO}x fastest reference ({fastest.name}) | {ratio:.2f}x | "
        f"{_ok(ratio <= TARGET_RATIO)} |"
    )
    extra = [c for _, inc, cold in incremental for c in (inc, cold)]
    peak = max([run.peak_rss_mb, *(c.peak_rss_mb for c in extra)])
    lines.append(
        f"| `run` peak RSS ≤ {TARGET_RSS_GB:.0f} GB | {peak / 1024:.2f} GB | "
        f"{_ok(peak / 1024 <= TARGET_RSS_GB)} |"
    )
    for case, inc, cold in incremental:
        r = inc.seconds / cold.seconds
        lines.append(
            f"| new file {case.label} ≤ {TARGET_INCREMENTAL:.0f}x cold run of the same file "
            f"| {r:.2f}x | {_ok(r <= TARGET_INCREMENTAL)} |"
        )
    lines += ["", "## Same work", ""]
    for ref in (pol, duck):
        verdict = ", ".join(f"{k}: {v}" for k, v in ctx["compare"][ref.name].items())
        lines.append(f"- `run`'s processed tables vs {ref.name}: {verdict}.")
    lines.append(f"- Rows per reason, planted by the generator: {ctx['planted']}.")
    for case in (pol, duck, run):
        lines.append(
            f"- Rows per reason, {case.name}: {dict(sorted(case.result['reasons'].items()))}."
        )
    lines += ["", "## Where `run`'s time goes", ""]
    for case in (run, *extra):
        lines += [
            f"{case.name} (inclusive wall time per step; nested steps overlap):",
            "",
            "| step | calls | seconds | share |",
            "|---|---:|---:|---:|",
        ]
        steps = case.result["steps"]
        for label, seconds in sorted(steps.items(), key=lambda kv: -kv[1]):
            calls = case.result["calls"][label]
            lines.append(f"| {label} | {calls} | {seconds:.2f} | {seconds / case.seconds:.0%} |")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


@dataclass(frozen=True)
class IncrementalCase:
    """One new file dropped on the loaded lake, and the same file alone on a fresh lake."""

    key: str
    label: str
    days: int
    """Days the file's listens span, the last ones of the lake's; 0: all of them."""
    batch: int


INCREMENTAL_CASES = (
    IncrementalCase(key="spread", label="over all the lake's days", days=0, batch=1),
    IncrementalCase(key="late", label="of late data on the last 2 days", days=2, batch=2),
)


def _incremental(
    base: Path, gen: Path, lake: Path, case: IncrementalCase, days: int
) -> tuple[Measured, Measured]:
    scratch = base / "scratch" / f"streams_{case.key}.csv"
    new_stream_file(scratch, NEW_FILE_ROWS, days, case.batch)
    name = f"streams_new_{case.key}.csv"
    shutil.copy(scratch, lake / "raw/streams" / name)
    loaded = measure(
        f"`run` with the new file on the loaded lake ({case.key})",
        "run",
        lake,
        base / f"out-{case.key}",
    )
    cold = base / f"cold-{case.key}"
    for sub in ("raw/users", "raw/songs", "raw/streams"):
        (cold / sub).mkdir(parents=True)
    shutil.copy(gen / "raw/users/users.csv", cold / "raw/users/users.csv")
    shutil.copy(gen / "raw/songs/songs.csv", cold / "raw/songs/songs.csv")
    shutil.copy(scratch, cold / "raw/streams" / name)
    alone = measure(
        f"`run` of that file alone on a fresh lake ({case.key})",
        "run",
        cold,
        base / f"out-cold-{case.key}",
    )
    return loaded, alone


def _kept_sections(page: Path) -> str:
    """Sections other scripts own (from `## Spark` on), carried over unchanged."""
    text = page.read_text() if page.exists() else ""
    start = text.find("\n## Spark")
    return "" if start < 0 else text[start:]


def main() -> None:
    args = parse_args()
    if args.child:
        child_main(args)
        return
    base = Path(tempfile.mkdtemp(prefix="music-etl-bench-"))
    try:
        bench(args, base)
    finally:
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)


def bench(args: argparse.Namespace, base: Path) -> None:
    gen = base / "generated"
    print(f"Generating {args.rows:,} rows into {gen} …", flush=True)
    report = generate_lake(gen, args.rows, args.files, args.days)
    generate_s = report["seconds"]
    raw_mb = sum(p.stat().st_size for p in (gen / "raw/streams").glob("*.csv")) / 1024**2
    print(f"  {generate_s:.1f} s, {raw_mb:,.0f} MB of stream CSV", flush=True)
    planted = dict(report["bad_rows"])
    planted["valid"] = report["valid_rows"]
    ctx: dict[str, Any] = {
        "rows": args.rows,
        "files": args.files,
        "days": args.days,
        "raw_mb": raw_mb,
        "generate_s": generate_s,
        "planted": planted,
        "machine": machine(),
    }
    print("Full load:", flush=True)
    ctx["polars"] = measure("Polars reference", "polars", gen, base / "out-polars")
    ctx["duckdb"] = measure("DuckDB reference", "duckdb", gen, base / "out-duckdb")
    lake = base / "lake"
    shutil.copytree(gen, lake)
    ctx["run"] = measure("`music-etl run`", "run", lake, base / "out-run")
    ctx["compare"] = {ref.name: compare(ref, lake) for ref in (ctx["polars"], ctx["duckdb"])}
    print(f"  same work: {ctx['compare']}", flush=True)
    if not args.skip_incremental:
        print("Incremental:", flush=True)
        for case in INCREMENTAL_CASES:
            days = args.days if case.days == 0 else case.days
            ctx[case.key] = _incremental(base, gen, lake, case, days)
    out = ROOT / args.out if not Path(args.out).is_absolute() else Path(args.out)
    out.write_text(render(ctx) + _kept_sections(out))
    print(f"Wrote {out}", flush=True)
    print(out.read_text())


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--files", type=int, default=10)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--out", default="docs/benchmarks.md")
    parser.add_argument("--skip-incremental", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the temporary lakes")
    parser.add_argument(
        "--child", choices=("polars", "duckdb", "run", "generate"), help=argparse.SUPPRESS
    )
    parser.add_argument("--append", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--lake", help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    return parser.parse_args()


if __name__ == "__main__":
    main()
