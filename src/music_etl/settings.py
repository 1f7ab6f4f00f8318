"""One settings object: CLI flag > `MUSIC_ETL_*` environment > `music-etl.toml` > default."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from music_etl.errors import ConfigError

ENV_PREFIX = "MUSIC_ETL_"
CONFIG_FILE = "music-etl.toml"
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
    values.update(_from_file(config or Path(env.get(ENV_PREFIX + "CONFIG", CONFIG_FILE))))
    values.update(_from_env(env))
    values.update({k: v for k, v in flags.items() if v is not None})
    unknown = set(values) - _field_names()
    if unknown:
        raise ConfigError(f"Unknown setting(s): {', '.join(sorted(unknown))}.")
    return Settings(**{k: _coerce(k, v) for k, v in values.items()})


def _field_names() -> set[str]:
    return {f.name for f in fields(Settings)}


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
    if settings.notifier and not settings.notifier.startswith(NOTIFIER_SCHEMES):
        raise ConfigError(
            f"notifier {settings.notifier!r}: use sns://arn:aws:sns:<region>:<account>:<topic>, "
            "an https:// webhook URL, or leave it empty."
        )


def _parse_now(text: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ConfigError(
            f"now must be ISO-8601, e.g. 2024-07-01T00:00:00Z; got {text!r}."
        ) from exc
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(UTC).replace(tzinfo=None)
    return parsed


def _default_sqlite(lake: str, name: str) -> str:
    if lake.startswith("s3://"):
        return "dynamodb://"
    return f"sqlite:///{Path(lake).expanduser().resolve() / '_state' / name}"
