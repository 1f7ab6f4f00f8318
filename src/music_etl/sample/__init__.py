"""Synthetic landing-zone data for demos, tests and benchmarks (see `generate`)."""

from music_etl.sample.generator import GenerateReport, generate

__all__ = ["GenerateReport", "generate"]
