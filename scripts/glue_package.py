"""Build what the AWS Glue jobs need into `dist/glue/` (`make glue-package`), installable offline.

Glue 5.0/5.1 install `--additional-python-modules` with pip at every job start. Naming only
the package wheel makes that pip fetch its dependencies from PyPI (a job in a VPC without
NAT fails; Glue's own numpy and pyarrow get replaced). This build instead ships every wheel
the jobs need that Glue does not already provide at a compatible version, for Glue's
platform (CPython 3.11, manylinux x86_64), and the job arguments that install them with
`--no-index`, as the Glue documentation recommends ("zip of wheels", Glue 5.0 and later;
`GLUE_DOC`).

The output mirrors the artifact keys `infra/music-etl.yaml` expects under its `ArtifactsPrefix`:

- `dist/music_streaming_etl-<version>.gluewheels.zip`: the zip of wheels (the template's
  `PackageKey`), with `--python-modules-installer-option --no-index`;
- `dist/music_streaming_etl-<version>-py3-none-any.whl`: the package alone (MWAA plugins);
- `wheels/*.whl`: the same wheels one by one (the alternative: a comma-separated list);
- `glue_jobs/{validation,transform,load}/….py`: the three entry scripts (`ScriptLocation`);
- `glue-jobs.json`: the manifest: the exact job arguments, what Glue provides, what is missing.

The dependencies are read from `pyproject.toml` at build time, so the build follows the
project's dependency list. NumPy, PyArrow, Polars, DuckDB and PySpark are never downloaded:
Glue provides NumPy, PyArrow and Spark, and the jobs must not need Polars or DuckDB.

Usage:
    python scripts/glue_package.py [--out dist/glue] [--strict]
    aws s3 sync dist/glue "s3://$ARTIFACTS/music-etl/"
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import shutil
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name, parse_wheel_filename

ROOT = Path(__file__).resolve().parents[1]
#: The project wheel and the zip of wheels, under the output (the template's `PackageKey`).
PACKAGE_DIR = "dist"
#: Every wheel the jobs install, one by one (the wheelhouse).
WHEEL_DIR = "wheels"
SCRIPTS = {
    "validation": ROOT / "glue_jobs" / "validation" / "glue_validation.py",
    "transform": ROOT / "glue_jobs" / "transform" / "glue_transform.py",
    "load": ROOT / "glue_jobs" / "load" / "load_dynamo.py",
}

GLUE_VERSION = "5.0"
GLUE_DOC = "https://docs.aws.amazon.com/glue/latest/dg/aws-glue-programming-python-libraries.html"
#: "Python modules already provided in AWS Glue", section "AWS Glue version 5.0" of GLUE_DOC.
#: Glue 5.1 provides newer versions of the same modules; a build for 5.0 runs on both.
GLUE_PROVIDED = {
    "aiobotocore": "2.13.1",
    "aiohappyeyeballs": "2.3.5",
    "aiohttp": "3.10.1",
    "aioitertools": "0.11.0",
    "aiosignal": "1.3.1",
    "appdirs": "1.4.4",
    "attrs": "24.2.0",
    "boto3": "1.34.131",
    "botocore": "1.34.131",
    "certifi": "2024.7.4",
    "charset-normalizer": "3.3.2",
    "contourpy": "1.2.1",
    "cycler": "0.12.1",
    "fonttools": "4.53.1",
    "frozenlist": "1.4.1",
    "fsspec": "2024.6.1",
    "idna": "2.10",
    "jmespath": "0.10.0",
    "kaleido": "0.2.1",
    "kiwisolver": "1.4.5",
    "matplotlib": "3.9.0",
    "multidict": "6.0.5",
    "numpy": "1.26.4",
    "packaging": "24.1",
    "pandas": "2.2.2",
    "pillow": "10.4.0",
    "pip": "23.0.1",
    "plotly": "5.23.0",
    "pyarrow": "17.0.0",
    "pyparsing": "3.1.2",
    "python-dateutil": "2.9.0.post0",
    "pytz": "2024.1",
    "requests": "2.32.2",
    "s3fs": "2024.6.1",
    "s3transfer": "0.10.2",
    "seaborn": "0.13.2",
    "setuptools": "59.6.0",
    "six": "1.16.0",
    "tenacity": "9.0.0",
    "tzdata": "2024.1",
    "urllib3": "1.25.10",
    "virtualenv": "20.4.0",
    "wrapt": "1.16.0",
    "yarl": "1.9.4",
    # Not a pip module there but Glue 5.0's Spark ("Spark 3.5.4, Python 3.11").
    "pyspark": "3.5.4",
}
#: Never shipped: Glue's own (numpy, pyarrow, pyspark) or what the jobs must not need.
NEVER_SHIPPED = frozenset({"numpy", "pyarrow", "polars", "duckdb", "pyspark"})
#: Glue 5.0/5.1's platform (AL2023, glibc 2.34): the tags pip may pick wheels for.
PLATFORMS = ("manylinux2014_x86_64", "manylinux_2_28_x86_64", "manylinux_2_34_x86_64")
PYTHON_VERSION = "3.11"
#: The job argument that makes Glue's pip install from the artifacts alone.
INSTALLER_OPTION = "--no-index"
#: Where `out` is synced to, in the manifest.
WHERE = "s3://ARTIFACTS/music-etl/"


# --------------------------------------------------------------------------- requirements


def project_metadata(pyproject: Path = ROOT / "pyproject.toml") -> tuple[str, list[str]]:
    """The project's version and its dependencies without extras, from `pyproject.toml`."""
    project = tomllib.loads(pyproject.read_text())["project"]
    return str(project["version"]), [str(r) for r in project.get("dependencies", [])]


def glue_environment() -> dict[str, str]:
    """Marker values of Glue 5.0's Python (CPython 3.11 on Linux x86_64)."""
    return default_environment() | {
        "python_version": PYTHON_VERSION,
        "python_full_version": f"{PYTHON_VERSION}.0",
        "implementation_name": "cpython",
        "platform_python_implementation": "CPython",
        "sys_platform": "linux",
        "platform_system": "Linux",
        "platform_machine": "x86_64",
        "os_name": "posix",
    }


def split_requirements(requirements: list[str]) -> dict[str, list[str]]:
    """Sort the requirements: `provided` by Glue, `download`, or `unsatisfied` (with why)."""
    split: dict[str, list[str]] = {"provided": [], "download": [], "unsatisfied": []}
    env = glue_environment()
    for text in requirements:
        requirement = Requirement(text)
        if requirement.marker is not None and not requirement.marker.evaluate(env):
            continue
        name = canonicalize_name(requirement.name)
        glue = GLUE_PROVIDED.get(name)
        if glue is not None and requirement.specifier.contains(glue, prereleases=True):
            split["provided"].append(f"{name}=={glue}")
        elif name in NEVER_SHIPPED:
            why = f"Glue {GLUE_VERSION} has {glue}" if glue else f"Glue {GLUE_VERSION} has none"
            split["unsatisfied"].append(f"{text} ({why}; never shipped)")
        else:
            split["download"].append(text)
    return split


def constraints_text() -> str:
    """Glue's own modules pinned, so a resolve keeps them (one `name==version` a line)."""
    return "".join(f"{name}=={version}\n" for name, version in sorted(GLUE_PROVIDED.items()))


# --------------------------------------------------------------------------- building


def build_wheel(out: Path) -> Path:
    """The package wheel in `out` (the build backend comes from PyPI unless installed)."""
    before = set(out.glob("*.whl"))
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--wheel-dir", str(out)]
    if importlib.util.find_spec("hatchling") is not None:
        command.append("--no-build-isolation")
    subprocess.run([*command, "--quiet", str(ROOT)], check=True)  # noqa: S603 - our interpreter
    built = sorted(set(out.glob("music_streaming_etl-*.whl")) - before) or sorted(
        out.glob("music_streaming_etl-*.whl")
    )
    if not built:
        raise SystemExit(f"pip wheel wrote no music_streaming_etl wheel into {out}")
    return built[-1]


def download_wheels(requirements: list[str], into: Path) -> list[Path]:
    """The wheels of `requirements` and their dependencies for Glue's platform, in `into`.

    One resolve for CPython 3.11 manylinux x86_64 with Glue's modules pinned as
    constraints (all of them but those the requirements name; only NumPy and PyArrow if
    that cannot resolve). A wheel of a module at the version Glue has is dropped (Glue's
    own is used); one at another version is shipped (it replaces Glue's, as it must).
    """
    into.mkdir(parents=True, exist_ok=True)
    if not requirements:
        return []
    named = {canonicalize_name(Requirement(text).name) for text in requirements}
    pins = {name: v for name, v in GLUE_PROVIDED.items() if name not in named}
    with tempfile.TemporaryDirectory() as tmp:
        try:
            _resolve(requirements, pins, Path(tmp))
        except subprocess.CalledProcessError:
            kept_by_glue = NEVER_SHIPPED & GLUE_PROVIDED.keys()
            _resolve(requirements, {n: GLUE_PROVIDED[n] for n in kept_by_glue}, Path(tmp))
        kept = []
        for wheel in sorted(Path(tmp).glob("*.whl")):
            name, version, *_ = parse_wheel_filename(wheel.name)
            if GLUE_PROVIDED.get(canonicalize_name(name)) == str(version):
                continue
            if canonicalize_name(name) in NEVER_SHIPPED:
                raise SystemExit(f"{wheel.name} was resolved for the Glue jobs; it must not be.")
            kept.append(Path(shutil.copy2(wheel, into / wheel.name)))
    return kept


def _resolve(requirements: list[str], pins: dict[str, str], dest: Path) -> None:
    for old in dest.glob("*.whl"):
        old.unlink()
    constraints = dest / "glue-constraints.txt"
    constraints.write_text("".join(f"{name}=={v}\n" for name, v in sorted(pins.items())))
    command = [sys.executable, "-m", "pip", "download", "--quiet", "--dest", str(dest)]
    command += ["--only-binary=:all:", "--implementation", "cp"]
    command += ["--python-version", PYTHON_VERSION, "--abi", "cp311"]
    for platform in PLATFORMS:
        command += ["--platform", platform]
    command += ["--constraint", str(constraints), *requirements]
    subprocess.run(command, check=True)  # noqa: S603 - our own interpreter


def write_zip(wheels: list[Path], target: Path) -> Path:
    """The zip of wheels Glue installs from: `wheels/*.whl` and `wheels/requirements.txt`."""
    pins = []
    for wheel in wheels:
        name, version, *_ = parse_wheel_filename(wheel.name)
        pins.append(f"{name}=={version}\n")
    target.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for wheel in wheels:
            archive.write(wheel, f"{WHEEL_DIR}/{wheel.name}")
        archive.writestr(f"{WHEEL_DIR}/requirements.txt", "".join(sorted(pins)))
    return target


def copy_scripts(out: Path) -> dict[str, str]:
    """The entry scripts under `out`, at their repository paths; stage -> key."""
    keys = {}
    for stage, script in SCRIPTS.items():
        key = script.relative_to(ROOT).as_posix()
        (out / key).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(script, out / key)
        keys[stage] = key
    return keys


def job_manifest(
    archive: str, wheels: list[str], scripts: dict[str, str], split: dict[str, list[str]]
) -> dict[str, object]:
    """What each job needs; keys are relative to `out` (`WHERE` stands for its S3 copy)."""
    arguments = {
        "--additional-python-modules": WHERE + archive,
        "--python-modules-installer-option": INSTALLER_OPTION,
        "--LAKE_ROOT": "s3://LAKE-BUCKET/music",
    }
    return {
        "glue_version": GLUE_VERSION,
        "python": PYTHON_VERSION,
        "platforms": list(PLATFORMS),
        "source": GLUE_DOC + "#glue-modules-provided",
        "zip_of_wheels": archive,
        "wheels": wheels,
        "wheel_list_arguments": {
            "--additional-python-modules": ",".join(WHERE + key for key in wheels),
            "--python-modules-installer-option": INSTALLER_OPTION,
        },
        "provided_by_glue": split["provided"],
        "unsatisfied": split["unsatisfied"],
        "jobs": {
            stage: {"script": WHERE + key, "arguments": arguments} for stage, key in scripts.items()
        },
    }


def build(out: Path) -> dict[str, object]:
    """Lay out `out` afresh (see the module docstring); returns the manifest."""
    for folder in (PACKAGE_DIR, WHEEL_DIR):
        shutil.rmtree(out / folder, ignore_errors=True)
        (out / folder).mkdir(parents=True)
    version, requirements = project_metadata()
    split = split_requirements(requirements)
    package = build_wheel(out / PACKAGE_DIR)
    wheels = [Path(shutil.copy2(package, out / WHEEL_DIR / package.name))]
    wheels += download_wheels(split["download"], out / WHEEL_DIR)
    archive = write_zip(wheels, out / PACKAGE_DIR / f"music_streaming_etl-{version}.gluewheels.zip")
    manifest = job_manifest(
        archive.relative_to(out).as_posix(),
        [wheel.relative_to(out).as_posix() for wheel in wheels],
        copy_scripts(out),
        split,
    )
    (out / "glue-jobs.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def main(argv: list[str] | None = None) -> int:
    """Build the artifacts; print what is where and anything the jobs would still lack."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "dist" / "glue", help="Output folder.")
    parser.add_argument(
        "--strict", action="store_true", help="Fail when a requirement cannot be met on Glue."
    )
    args = parser.parse_args(argv)
    manifest = build(args.out)
    for path in sorted(p for p in args.out.rglob("*") if p.is_file()):
        sys.stdout.write(f"{path.relative_to(args.out)}\n")
    unsatisfied = manifest["unsatisfied"]
    assert isinstance(unsatisfied, list)
    for line in unsatisfied:
        sys.stderr.write(f"NOT INSTALLABLE ON GLUE {GLUE_VERSION}: {line}\n")
    if unsatisfied:
        sys.stderr.write(
            "The package's own dependencies (pyproject.toml [project].dependencies) must not "
            "need these on Glue: move them to an extra.\n"
        )
        return 1 if args.strict else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
