"""The deploy artifacts' tests share the session's moto server with `tests/aws`."""

from __future__ import annotations

from pathlib import Path

from moto_fixtures import aws_env, moto_endpoint

__all__ = ["REPO", "aws_env", "moto_endpoint"]

REPO = Path(__file__).resolve().parents[2]
