"""Benchmark `music-etl run --engine spark` against a hand-written PySpark job of the contract.

Generates a landing zone once, then, in each round, runs the engine's whole first run
(`music-etl run --engine spark`: dimensions, one batch of stream files, the days) on a
copy of it and `spark_reference.py` on the same raw files, each in a fresh subprocess with
the same Spark settings (the engine's `spark_session()`: `local[*]`, 4 GB driver). It
checks that both produce the same output tables and the same bad rows per reason, and
writes a "Spark" section into `docs/benchmarks.md` (replacing the one an earlier run
wrote, keeping the others).

CPU time is user + system time of the child's whole process tree (Python and the JVM),
read from `/proc` by the child itself when its work is done; peak memory is the sum of the
peak RSS (`VmHWM`) of those processes. The machine may be shared: the script runs the
engine and the reference alternately, several rounds, and reports medians and the load.

    .venv/bin/python benchmarks/spark_benchmark.py --rows 2_000_000 --rounds 2
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
NOW = "2024-07-01T00:00:00Z"
SEED = 20_240_701
HEADING = "## Spark"
TABLES = {
    "daily_genre_kpis": ["date", "genre"],
    "top_songs": ["date", "genre", "rank"],
    "top_genres": ["date", "rank"],
}
_TICKS = os.sysconf("SC_CLK_TCK")


# --------------------------------------------------------------------------- child


def _stat(pid: int) -> tuple[int, float, int, str]:
    """Parent pid, CPU seconds (own + waited-for children), peak RSS bytes and name of `pid`."""
    head, tail = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)
    fields = tail.split()
    cpu = sum(int(v) for v in fields[11:15]) / _TICKS
    peak = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            peak = int(line.split()[1]) * 1024
    return int(fields[1]), cpu, peak, head.split("(", 1)[1]


def _tree_usage() -> dict[str, Any]:
    """CPU seconds and summed peak RSS of this process and all its descendants.

    `peak_rss_by` splits the peak RSS by process name (`python`, `java`).
    """
    stats = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stats[int(entry.name)] = _stat(int(entry.name))
            except (OSError, IndexError):
                continue
    tree, grew = {os.getpid()}, True
    while grew:
        more = {pid for pid, (ppid, *_rest) in stats.items() if ppid in tree} - tree
        tree |= more
        grew = bool(more)
    mine = [stats[p] for p in tree if p in stats]
    by_name: dict[str, int] = {}
    for _ppid, _cpu, peak, name in mine:
        by_name[name] = by_name.get(name, 0) + peak
    return {
        "cpu": sum(s[1] for s in mine),
        "peak_rss": sum(s[2] for s in mine),
        "peak_rss_by": by_name,
    }


def _child_engine(lake: str) -> dict[str, Any]:
    from music_etl.pipeline.run import run
    from music_etl.settings import load_settings

    settings = load_settings(env={}, lake=lake, engine="spark", now=NOW, settle_seconds=0)
    report = run(settings)
    return {
        "rows_in": sum(f.rows_in for f in report.files),
        "rows_valid": sum(f.rows_valid for f in report.processed),
        "failed": len(report.failed),
    }


def _child(kind: str, lake: str, out: str) -> None:
    start = time.perf_counter()
    if kind == "engine":
        result = _child_engine(lake)
    else:
        sys.path.insert(0, str(HERE))
        import spark_reference

        clock = datetime.fromisoformat(NOW.replace("Z", "+00:00"))
        spark_reference.main(Path(lake), Path(out), clock)
        result = {}
    result["seconds"] = time.perf_counter() - start
    result.update(_tree_usage())
    sys.stdout.write(json.dumps(result) + "\n")


# --------------------------------------------------------------------------- parent


def _measure(kind: str, lake: Path, out: Path) -> dict[str, Any]:
    load = os.getloadavg()[0]
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, __file__, "--child", kind, str(lake), str(out)],
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.perf_counter() - start
    if done.returncode:
        raise SystemExit(f"{kind} run failed:\n{done.stderr[-4000:]}")
    result = dict(json.loads(done.stdout.strip().splitlines()[-1]))
    result.update(wall=wall, load=(load + os.getloadavg()[0]) / 2)
    return result


def _read(folder: Path, name: str) -> pl.DataFrame:
    keys = TABLES[name]
    frame = pl.read_parquet(str(folder / name / "**" / "*.parquet"), hive_partitioning=True)
    frame = frame.with_columns(pl.col("date").cast(pl.String))
    numeric = [c for c, t in frame.schema.items() if t.is_integer()]
    return frame.with_columns(pl.col(numeric).cast(pl.Int64)).sort(keys)


def _bad_counts(folder: Path) -> dict[str, int]:
    counts: dict[str, int] = {}
    for path in folder.rglob("*.parquet"):
        reason = next(p for p in path.parts[len(folder.parts) :] if p).removeprefix("reason=")
        counts[reason] = (
            counts.get(reason, 0) + pl.scan_parquet(path).select(pl.len()).collect().item()
        )
    return dict(sorted(counts.items()))


def _compare(engine_lake: Path, reference_out: Path) -> dict[str, Any]:
    same = {}
    for name in TABLES:
        left = _read(engine_lake / "processed", name)
        right = _read(reference_out, name).select(left.columns)
        same[name] = left.equals(right)
    bad_engine = _bad_counts(engine_lake / "bad-records" / "streams")
    bad_reference = _bad_counts(reference_out / "bad-records")
    return {"tables": same, "bad": bad_engine, "bad_same": bad_engine == bad_reference}


def _round(work: Path, rows: int) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    lake, out = work / "engine", work / "reference"
    shutil.rmtree(lake, ignore_errors=True)
    shutil.rmtree(out, ignore_errors=True)
    shutil.copytree(work / "base", lake)
    engine = _measure("engine", lake, out)
    reference = _measure("reference", work / "base", out)
    compared = _compare(lake, out)
    for name, result in (("engine", engine), ("reference", reference)):
        print(f"{rows:,} rows {name}: {json.dumps(result)}", flush=True)
    print(f"compared: {compared}", flush=True)
    return engine, reference, compared


def _median(results: list[dict[str, Any]], field: str) -> float:
    return statistics.median(r[field] for r in results)


def _rows_section(
    rows: int, engines: list[dict[str, Any]], refs: list[dict[str, Any]]
) -> list[str]:
    lines = []
    for name, results in (("`--engine spark`", engines), ("hand-written reference", refs)):
        lines.append(
            f"| {rows / 1e6:g} M | {name} | {_median(results, 'wall'):.1f} | "
            f"{_median(results, 'seconds'):.1f} | {_median(results, 'cpu'):.1f} | "
            f"{_median(results, 'peak_rss') / 2**30:.2f} | {_median(results, 'load'):.1f} |"
        )
    cpu = _median(engines, "cpu") / _median(refs, "cpu")
    wall = _median(engines, "seconds") / _median(refs, "seconds")
    rss = _median(engines, "peak_rss") / _median(refs, "peak_rss")
    lines.append(
        f"| {rows / 1e6:g} M | **engine / reference** | | {wall:.2f}x | {cpu:.2f}x | {rss:.2f}x | |"
    )
    return lines


def _round_line(engine: dict[str, Any], ref: dict[str, Any]) -> str:
    def gb(result: dict[str, Any]) -> str:
        java = result.get("peak_rss_by", {}).get("java", 0)
        return f"{result['peak_rss'] / 2**30:.2f} ({java / 2**30:.2f})"

    return f"CPU {engine['cpu']:.1f} / {ref['cpu']:.1f} s, peak RSS {gb(engine)} / {gb(ref)} GiB"


def _section(args: argparse.Namespace, measured: dict[int, Any]) -> str:
    import pyspark

    lines = [
        HEADING,
        "",
        f"Generated by `benchmarks/spark_benchmark.py --rows {' '.join(map(str, args.rows))} "
        f"--rounds {args.rounds}`; re-run it to refresh this section.",
        "",
        f"Machine: {os.cpu_count()} cores ({platform.machine()}), shared with other work (the "
        f"*load* column: the 1-minute load average during the run), Python "
        f"{platform.python_version()}, PySpark {pyspark.__version__} in local mode "
        f"(`local[*]` = {os.cpu_count()} threads, 4 GB driver), "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC. Data: `generate` with {args.files} files "
        f"over {args.days} days (2 % planted bad rows).",
        "",
        "Each round runs, each in a fresh subprocess with the same Spark settings: "
        "`music-etl run --engine spark` (users, songs, one batch of all stream files, the "
        "days: validated files, bad records, outputs, serving store, ledger) on a copy of the "
        "landing zone, then `benchmarks/spark_reference.py` (a one-shot hand-written PySpark "
        "job of the contract writing validated rows, bad records and the three outputs). "
        "Medians of the rounds. *run* is the work inside the process, *wall* includes "
        "Python imports and the JVM start; *CPU* is user + system seconds of Python and "
        "the JVM; *peak RSS* sums the peak resident memory of those processes.",
        "",
        "| rows | job | wall (s) | run (s) | CPU (s) | peak RSS (GiB) | load |",
        "|---:|---|---:|---:|---:|---:|---:|",
    ]
    for rows, (engines, refs, _compared) in measured.items():
        lines += _rows_section(rows, engines, refs)
    lines.append("")
    lines.append(
        "Per round, engine / reference: CPU seconds, peak RSS in GiB (of which the JVM's). "
        "The JVM's peak follows its heap, which G1 grows by its own measure of allocation "
        "pressure: it varies by several hundred MB between identical runs, so only "
        "medians over rounds mean anything."
    )
    lines.append("")
    for rows, (engines, refs, _compared) in measured.items():
        for number, (engine, ref) in enumerate(zip(engines, refs, strict=True), start=1):
            lines.append(f"- {rows / 1e6:g} M, round {number}: {_round_line(engine, ref)}")
    lines.append("")
    for rows, (_engines, _refs, compared) in measured.items():
        tables = ", ".join(
            f"{n} {'equal' if ok else 'DIFFERENT'}" for n, ok in compared["tables"].items()
        )
        bad = "equal" if compared["bad_same"] else "DIFFERENT"
        lines.append(f"- {rows:,} rows: {tables}; bad rows per reason {bad} ({compared['bad']}).")
    lines.append("")
    return "\n".join(lines)


def _write(out: Path, section: str) -> None:
    """Replace this script's section, keeping every section before and after it."""
    text = out.read_text(encoding="utf-8") if out.exists() else "# Benchmarks\n"
    before, after = text, ""
    if HEADING + "\n" in text:
        start = text.index(HEADING + "\n")
        end = text.find("\n## ", start + len(HEADING))
        before = text[:start]
        after = text[end + 1 :] if end != -1 else ""
    updated = before.rstrip("\n") + "\n\n" + section
    if after:
        updated = updated.rstrip("\n") + "\n\n" + after
    out.write_text(updated, encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[2_000_000, 10_000_000])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--files", type=int, default=10)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks.md")
    parser.add_argument("--no-write", action="store_true", help="print, do not edit the docs")
    parser.add_argument("--child", nargs=3, metavar=("KIND", "LAKE", "OUT"))
    args = parser.parse_args()
    if args.child:
        _child(*args.child)
        return
    from music_etl.adapters.storage.local import LocalStorage
    from music_etl.sample.generator import generate

    measured = {}
    for rows in args.rows:
        work = Path(tempfile.mkdtemp(prefix="spark-bench-"))
        try:
            generate(
                LocalStorage(work / "base"),
                streams=rows,
                files=args.files,
                days=args.days,
                seed=SEED,
            )
            rounds = [_round(work, rows) for _ in range(args.rounds)]
            measured[rows] = ([r[0] for r in rounds], [r[1] for r in rounds], rounds[-1][2])
        finally:
            shutil.rmtree(work, ignore_errors=True)
    section = _section(args, measured)
    if not args.no_write:
        _write(args.out, section)
    print(section)


if __name__ == "__main__":
    main()
