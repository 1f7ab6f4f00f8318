"""The package version, apart from `music_etl` itself, which imports the pipeline."""

__version__ = "0.1.0"
