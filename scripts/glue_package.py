"""Build what the AWS Glue jobs need into `dist/glue/` (`make glue-package`).

The folder mirrors the artifact keys `infra/music-etl.yaml` expects under its
`ArtifactsPrefix`:

- `dist/music_streaming_etl-<version>-py3-none-any.whl`: the package, for the jobs'
  `--additional-python-modules` (the template's `PackageKey`);
- `glue_jobs/{validation,transform,load}/….py`: the three entry scripts (`ScriptLocation`);
- `glue-jobs.json`: each job's script key and default arguments, as
  `docs/deploy-glue.md` describes them.

Usage:
    python scripts/glue_package.py [--out dist/glue]
    aws s3 sync dist/glue "s3://$ARTIFACTS/music-etl/"
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: The wheel's folder under the output (the template's `PackageKey` is `dist/<wheel>`).
WHEEL_DIR = "dist"
SCRIPTS = {
    "validation": ROOT / "glue_jobs" / "validation" / "glue_validation.py",
    "transform": ROOT / "glue_jobs" / "transform" / "glue_transform.py",
    "load": ROOT / "glue_jobs" / "load" / "load_dynamo.py",
}


def build_wheel(out: Path) -> Path:
    """The package wheel in `out` (the build backend comes from PyPI unless installed)."""
    before = set(out.glob("*.whl"))
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--wheel-dir", str(out)]
    if importlib.util.find_spec("hatchling") is not None:
        command.append("--no-build-isolation")
    subprocess.run([*command, str(ROOT)], check=True)  # noqa: S603 - our own interpreter
    built = sorted(set(out.glob("music_streaming_etl-*.whl")) - before) or sorted(
        out.glob("music_streaming_etl-*.whl")
    )
    if not built:
        raise SystemExit(f"pip wheel wrote no music_streaming_etl wheel into {out}")
    return built[-1]


def copy_scripts(out: Path) -> dict[str, str]:
    """The entry scripts under `out`, at their repository paths; stage -> key."""
    keys = {}
    for stage, script in SCRIPTS.items():
        key = script.relative_to(ROOT).as_posix()
        (out / key).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(script, out / key)
        keys[stage] = key
    return keys


def job_manifest(wheel: Path, scripts: dict[str, str]) -> dict[str, object]:
    """What each job needs; `s3://ARTIFACTS/music-etl/` stands for where `out` is synced."""
    where = "s3://ARTIFACTS/music-etl/"
    arguments = {
        "--additional-python-modules": f"{where}{WHEEL_DIR}/{wheel.name}",
        "--LAKE_ROOT": "s3://LAKE-BUCKET/music",
    }
    return {
        "wheel": f"{WHEEL_DIR}/{wheel.name}",
        "jobs": {
            stage: {"script": where + name, "arguments": arguments}
            for stage, name in scripts.items()
        },
    }


def main(argv: list[str] | None = None) -> int:
    """Build the wheel, copy the scripts, write the manifest; print what is where."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "dist" / "glue", help="Output folder.")
    out: Path = parser.parse_args(argv).out
    (out / WHEEL_DIR).mkdir(parents=True, exist_ok=True)
    for old in (out / WHEEL_DIR).glob("music_streaming_etl-*.whl"):
        old.unlink()
    wheel = build_wheel(out / WHEEL_DIR)
    scripts = copy_scripts(out)
    manifest = out / "glue-jobs.json"
    manifest.write_text(json.dumps(job_manifest(wheel, scripts), indent=2) + "\n")
    for path in sorted(p for p in out.rglob("*") if p.is_file()):
        sys.stdout.write(f"{path.relative_to(out)}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
