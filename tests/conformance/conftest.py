"""The moto server and lake fixtures of `tests/aws`, for the suites' AWS backends.

The local backends (folder, SQLite) run everywhere; the AWS ones carry the `aws` marker.
"""

from __future__ import annotations

from aws.conftest import aws_lake, s3_lake
from moto_fixtures import aws_env, moto_endpoint

__all__ = ["aws_env", "aws_lake", "moto_endpoint", "s3_lake"]
