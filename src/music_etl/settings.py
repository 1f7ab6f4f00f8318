"""One settings object: CLI flag > `MUSIC_ETL_*` environment > `music-etl.toml` > default."""

from __future__ import annotations

import logging
import math
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from music_etl.errors import ConfigError, redact_url

log = logging.getLogger(__name__)
ENV_PREFIX = "MUSIC_ETL_"
CONFIG_FILE = "music-etl.toml"
#: `MUSIC_ETL_*` variables that are not settings but are read elsewhere.
OTHER_ENV = ("CONFIG", "DEBUG", "JOB_CONFIGS", "LOG_FORMAT")
#: The latest `now`: the future-timestamp check adds 24 h to it, so leave two days of calendar.
LATEST_NOW = datetime.max - timedelta(days=2)
S3_SCHEME = "s3://"
ENGINES = ("polars", "spark")
#: What a `notifier` URL may start with (`music_etl.adapters.notify.open_notifier`).
NOTIFIER_SCHEMES = ("sns://", "https://", "http://")


@dataclass(frozen=True, kw_only=True)
class Settings:
    """Everything a run needs to know; defaults are the embedded mode."""

    lake: str = "./lake"
    """Lake root: a local folder or `s3://bucket/prefix`."""
    engine: str = "polars"
    """Engine that executes the contract: `polars` (embedded) or `spark`."""
    serving: str = ""
    """Serving store URL (`sqlite:///path`); empty: `<lake>/_state/serving.sqlite`."""
    ledger: str = ""
    """Ledger URL (`sqlite:///path`); empty: `<lake>/_state/ledger.sqlite`."""
    aws_endpoint: str = ""
    """Endpoint override for S3, DynamoDB and SNS (moto, LocalStack); empty: boto3's default."""
    bad_row_threshold: float = 0.05
    """A file with a larger share of bad rows fails whole instead of loading."""
    lease_seconds: int = 900
    """How long a claim or the lake lock stays valid without being renewed."""
    lock_wait_seconds: float = 60.0
    """How long `run` waits for another runner's lake lock before giving up."""
    batch_bytes: int = 512_000_000
    """Raw CSV bytes validated together; bounds memory on large backlogs."""
    notifier: str = ""
    """Where failures are reported: `sns://<topic ARN>` or an https webhook; empty: log only."""
    now: str = ""
    """Processing clock as ISO-8601 UTC, for reproducible runs; empty: the real clock."""
    settle_seconds: float = 5.0
    """A local landing file is taken once unchanged (size and mtime) this long; 0: at once."""

    def __post_init__(self) -> None:
        _validate(self)

    @property
    def serving_url(self) -> str:
        """The serving store URL with the default filled in."""
        return self.serving or _default_sqlite(self.lake, "serving.sqlite")

    @property
    def ledger_url(self) -> str:
        """The ledger URL with the default filled in."""
        return self.ledger or _default_sqlite(self.lake, "ledger.sqlite")

    def clock(self) -> datetime:
        """The processing clock (UTC, naive)."""
        if self.now:
            return _parse_now(self.now)
        return datetime.now(UTC).replace(tzinfo=None)

    def with_overrides(self, **overrides: Any) -> Settings:
        """A copy with the non-None `overrides` applied (CLI flags)."""
        given = {k: v for k, v in overrides.items() if v is not None}
        return replace(self, **given)


def load_settings(
    *, config: Path | None = None, env: Mapping[str, str] | None = None, **flags: Any
) -> Settings:
    """Settings from the layers, highest first: `flags`, environment, config file, defaults.

    Example:
        >>> load_settings(lake="/tmp/lake", env={}).engine
        'polars'
    """
    env = os.environ if env is None else env
    values: dict[str, Any] = {}
    values.update(_from_file(config or _config_from_env(env)))
    _warn_unknown_env(env)
    values.update(_from_env(env))
    values.update({k: v for k, v in flags.items() if v is not None})
    unknown = set(values) - _field_names()
    if unknown:
        raise ConfigError(f"Unknown setting(s): {', '.join(sorted(unknown))}.")
    return Settings(**{k: _coerce(k, v) for k, v in values.items()})


def load_cli_settings(*, config: Path | None = None, **flags: Any) -> Settings:
    """`load_settings` for a command line: a `--config` that names no file is an error."""
    if config is not None:
        require_config(config, "--config")
    return load_settings(config=config, **flags)


def _field_names() -> set[str]:
    return {f.name for f in fields(Settings)}


def _config_from_env(env: Mapping[str, str]) -> Path:
    """`MUSIC_ETL_CONFIG` must name a file; the default `./music-etl.toml` may be absent."""
    named = env.get(ENV_PREFIX + "CONFIG")
    if named is None:
        return Path(CONFIG_FILE)
    require_config(Path(named), "MUSIC_ETL_CONFIG")
    return Path(named)


def require_config(path: Path, source: str) -> None:
    """Raise `ConfigError` unless `path` (named by `source`, e.g. `--config`) is a file.

    Example:
        >>> require_config(Path("/nonexistent.toml"), "--config")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        music_etl.errors.ConfigError: --config /nonexistent.toml: no such file. ...
    """
    if not path.is_file():
        raise ConfigError(
            f"{source} {path}: no such file. Fix the path, or drop it to use "
            f"./{CONFIG_FILE} and the defaults."
        )


def _warn_unknown_env(env: Mapping[str, str]) -> None:
    known = {ENV_PREFIX + name.upper() for name in (*_field_names(), *OTHER_ENV)}
    for name in sorted(n for n in env if n.startswith(ENV_PREFIX) and n not in known):
        log.warning(
            "warning: ignoring unknown environment variable %s (the settings are %s).",
            name,
            ", ".join(ENV_PREFIX + f.upper() for f in sorted(_field_names())),
        )


def _from_file(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}. Fix or remove it.") from exc
    return dict(data.get("music-etl", data))


def _from_env(env: Mapping[str, str]) -> dict[str, str]:
    names = _field_names()
    found = {
        k.removeprefix(ENV_PREFIX).lower(): v for k, v in env.items() if k.startswith(ENV_PREFIX)
    }
    return {k: v for k, v in found.items() if k in names}


def _coerce(name: str, value: Any) -> Any:
    kind = {f.name: f.type for f in fields(Settings)}[name]
    try:
        if kind == "int":
            return int(value)
        if kind == "float":
            return float(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"Setting {name} must be a number, got {value!r}.") from exc
    return str(value)


def _validate(settings: Settings) -> None:
    _validate_lake(settings.lake)
    _validate_numbers(settings)
    if settings.engine not in ENGINES:
        raise ConfigError(
            f"Unknown engine {settings.engine!r}: choose one of {', '.join(ENGINES)}."
        )
    if not 0.0 <= settings.bad_row_threshold <= 1.0:
        raise ConfigError("bad_row_threshold is a share between 0 and 1, e.g. 0.05.")
    if settings.settle_seconds < 0:
        raise ConfigError("settle_seconds must be 0 or more, e.g. 5.")
    if settings.lease_seconds <= 0 or settings.batch_bytes <= 0:
        raise ConfigError("lease_seconds and batch_bytes must be positive.")
    if settings.now:
        _parse_now(settings.now)


def _validate_lake(lake: str) -> None:
    if not lake.strip():
        raise ConfigError(
            "The lake path is empty: pass --lake (or MUSIC_ETL_LAKE) with a folder, e.g. ./lake, "
            "or s3://bucket/prefix."
        )
    if lake.lower().startswith("s3:") and not lake.startswith(S3_SCHEME):
        raise ConfigError(
            f"Lake {lake!r}: an S3 lake is written s3://bucket/prefix (lower-case, two slashes)."
        )
    if lake.startswith(S3_SCHEME) and not lake.removeprefix(S3_SCHEME).split("/", 1)[0]:
        raise ConfigError(f"Lake {lake!r} names no bucket: use s3://bucket/prefix.")


def _validate_numbers(settings: Settings) -> None:
    for f in fields(Settings):
        value = getattr(settings, f.name)
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"Setting {f.name} must be a finite number, got {value!r}.")
    if settings.lock_wait_seconds < 0:
        raise ConfigError("lock_wait_seconds must be 0 or more, e.g. 60.")
    if settings.notifier and not settings.notifier.startswith(NOTIFIER_SCHEMES):
        raise ConfigError(
            f"notifier {redact_url(settings.notifier)!r}: use "
            "sns://arn:aws:sns:<region>:<account>:<topic>, an https:// webhook URL, "
            "or leave it empty."
        )


def _parse_now(text: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        if parsed.tzinfo is not None:
            parsed = parsed.astimezone(UTC).replace(tzinfo=None)
    except (ValueError, OverflowError) as exc:
        raise ConfigError(
            f"now must be ISO-8601, e.g. 2024-07-01T00:00:00Z; got {text!r}."
        ) from exc
    if parsed > LATEST_NOW:
        raise ConfigError(
            f"now {text!r} is too close to the end of the calendar: the future-timestamp check "
            f"adds 24 h to it. Use a time up to {LATEST_NOW:%Y-%m-%dT%H:%M:%S}Z."
        )
    return parsed


def _default_sqlite(lake: str, name: str) -> str:
    if lake.startswith("s3://"):
        return "dynamodb://"
    return f"sqlite:///{Path(lake).expanduser().resolve() / '_state' / name}"
