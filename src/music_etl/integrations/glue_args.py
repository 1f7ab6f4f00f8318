"""Glue job arguments: `--NAME value` pairs, read by Glue's own parser when it is there.

On Glue, `awsglue.utils.getResolvedOptions` reads them; anywhere else (a laptop, the
tests) an argparse parser takes the same `--NAME value` pairs, so one script runs in both.

| argument | setting | notes |
|---|---|---|
| `--LAKE_ROOT` | `lake` | `s3://bucket/prefix` or a folder (or the seed's `--S3_OUTPUT_PATH`) |
| `--ENGINE` | `engine` | default `spark` |
| `--LEDGER`, `--SERVING` | `ledger`, `serving` | default: DynamoDB for an S3 lake |
| `--AWS_ENDPOINT`, `--NOTIFIER` | `aws_endpoint`, `notifier` | |
| `--BAD_ROW_THRESHOLD`, `--NOW` | `bad_row_threshold`, `now` | |
| `--RAW_KEY` | | validation only: the key that triggered the run (logged) |
| `--LOG_FORMAT` | | `human` or `json` (events on stderr); else `MUSIC_ETL_LOG_FORMAT` |
| `--FLOW_ID` | | the flow the job is a stage of: in its run artifact and events |
"""

from __future__ import annotations

import argparse
import importlib
import os
from collections.abc import Sequence
from typing import Any

from music_etl.errors import ConfigError
from music_etl.settings import Settings, load_settings

#: Job argument -> the setting it sets.
SETTING_OF = {
    "LAKE_ROOT": "lake",
    "ENGINE": "engine",
    "LEDGER": "ledger",
    "SERVING": "serving",
    "AWS_ENDPOINT": "aws_endpoint",
    "NOTIFIER": "notifier",
    "BAD_ROW_THRESHOLD": "bad_row_threshold",
    "NOW": "now",
}
#: Arguments of every job that are not settings (`log_format`, the flow id).
JOB_ARGS = ("LOG_FORMAT", "FLOW_ID")
#: The variable that sets the log format when `--LOG_FORMAT` is not given.
LOG_FORMAT_ENV = "MUSIC_ETL_LOG_FORMAT"
#: The seed's name for where the job writes; here the lake root.
SEED_LAKE = "S3_OUTPUT_PATH"
DEFAULT_ENGINE = "spark"


def resolve_args(argv: Sequence[str], extra: Sequence[str] = ()) -> dict[str, str]:
    """The job's arguments present in `argv` (all optional but the lake).

    Example:
        >>> resolve_args(["job.py", "--LAKE_ROOT", "s3://b/m", "--JOB_NAME", "x"])
        {'LAKE_ROOT': 's3://b/m'}
    """
    names = [*SETTING_OF, SEED_LAKE, *JOB_ARGS, *extra]
    try:
        glue_utils = importlib.import_module("awsglue.utils")
    except ImportError:
        args = _parse(argv, names)
    else:  # pragma: no cover - only on Glue
        present = [name for name in names if f"--{name}" in argv]
        args = dict(glue_utils.getResolvedOptions(list(argv), present))
    if not (args.get("LAKE_ROOT") or args.get(SEED_LAKE)):
        raise ConfigError("Give the lake: --LAKE_ROOT s3://bucket/prefix (or a local folder).")
    return args


def job_settings(args: dict[str, str]) -> Settings:
    """Settings from the job arguments over `MUSIC_ETL_*` variables; the engine is Spark."""
    flags: dict[str, Any] = {setting: args.get(name) for name, setting in SETTING_OF.items()}
    flags["lake"] = args.get("LAKE_ROOT") or args.get(SEED_LAKE)
    flags["engine"] = args.get("ENGINE") or os.environ.get("MUSIC_ETL_ENGINE") or DEFAULT_ENGINE
    return load_settings(**flags)


def log_format(args: dict[str, str]) -> str:
    """`human` or `json`: `--LOG_FORMAT`, else `MUSIC_ETL_LOG_FORMAT`, else `human`."""
    chosen = (args.get("LOG_FORMAT") or os.environ.get(LOG_FORMAT_ENV) or "human").lower()
    if chosen not in ("human", "json"):
        raise ConfigError(f"--LOG_FORMAT / {LOG_FORMAT_ENV} is human or json, not {chosen!r}.")
    return chosen


def _parse(argv: Sequence[str], names: Sequence[str]) -> dict[str, str]:
    parser = argparse.ArgumentParser(prog=argv[0] if argv else "glue-job", add_help=False)
    for name in names:
        parser.add_argument(f"--{name}", default=None)
    known, _unknown = parser.parse_known_args(list(argv[1:]))
    return {name: value for name, value in vars(known).items() if value is not None}
