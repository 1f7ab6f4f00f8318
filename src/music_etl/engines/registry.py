"""The engine registry: an engine by name, its heavy packages imported only when asked for.

It lives apart from `engines.base` (the contract), which the engines themselves import:
`make_engine` imports the engines, so keeping it there made the only import cycle.
"""

from __future__ import annotations

from music_etl.adapters.storage.base import Storage
from music_etl.engines.base import Engine
from music_etl.errors import ConfigError

#: The packages of the `embedded` extra (`pip install 'music-streaming-etl[embedded]'`).
EMBEDDED_PACKAGES = frozenset({"duckdb", "numpy", "polars", "pyarrow"})


def missing_extra(exc: ImportError) -> ConfigError | None:
    """The user's error for a missing package of the `embedded` extra, or None for any other.

    Example:
        >>> missing_extra(ModuleNotFoundError("No module named 'polars'", name="polars"))
        ConfigError("The embedded engine needs polars, which is not installed: pip install 'music-streaming-etl[embedded]'.")
    """  # noqa: E501 - a doctest output is one line
    root = (exc.name or "").partition(".")[0]
    if not isinstance(exc, ModuleNotFoundError) or root not in EMBEDDED_PACKAGES:
        return None
    return ConfigError(
        f"The embedded engine needs {root}, which is not installed: "
        "pip install 'music-streaming-etl[embedded]'."
    )


def make_engine(name: str, storage: Storage, *, aws_endpoint: str = "") -> Engine:
    """The engine called `name`, imported only when asked for.

    `aws_endpoint` is the S3 endpoint override (the setting) for engines that reach the
    lake themselves (Spark's S3A); the embedded engine reads through `storage`.

    A missing extra is a `ConfigError` that names it (exit 2), never a traceback.
    """
    if name == "polars":
        try:
            from music_etl.engines.polars.engine import PolarsEngine
        except ModuleNotFoundError as exc:
            raise (missing_extra(exc) or exc) from exc
        return PolarsEngine(storage)
    if name == "spark":
        try:
            from music_etl.engines.spark.engine import SparkEngine
        except ModuleNotFoundError as exc:
            raise ConfigError(
                "The spark engine needs PySpark 3.5 and Java 17: "
                "pip install 'music-streaming-etl[spark]'."
            ) from exc
        return SparkEngine(storage, aws_endpoint=aws_endpoint)
    raise ConfigError(f"Unknown engine {name!r}.")
