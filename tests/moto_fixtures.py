"""A moto server on 127.0.0.1 for the session, and an environment that can reach only it.

The tests talk to it over HTTP exactly as to AWS, through the endpoint override; fake
credentials come from the environment (the standard boto3 chain). `tests/aws` and
`tests/deploy` import these fixtures into their conftest.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator

import pytest

from aws.helpers import NOWHERE, REGION


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """The URL of a moto server running in this process for the whole session."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake credentials and a region in the environment; nothing from ~/.aws or the shell.

    The values are the same for every test, so the boto3 session is reused.
    """
    set_aws_env(monkeypatch)


def set_aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """What `aws_env` sets, for a module-scoped fixture's own `MonkeyPatch.context()`."""
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_REGION"):
        monkeypatch.delenv(name, raising=False)
    for name in ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL_DYNAMODB"):
        monkeypatch.delenv(name, raising=False)
    # A client that misses the endpoint override fails here, locally, instead of calling AWS.
    monkeypatch.setenv("AWS_ENDPOINT_URL", NOWHERE)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.setenv(name, "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/music-etl-tests/aws-config")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/music-etl-tests/credentials")
    for name in [n for n in os.environ if n.startswith("MUSIC_ETL_")]:
        monkeypatch.delenv(name)
