"""`music-etl serve`: the JSON API and the dashboard over a lake, read-only."""

from __future__ import annotations

import importlib
import signal
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer

from music_etl.cli import render
from music_etl.errors import ConfigError
from music_etl.settings import Settings, load_cli_settings

#: The packages the `serve` extra brings.
SERVE_PACKAGES = ("starlette", "uvicorn", "orjson")
INSTALL_HINT = (
    "`music-etl serve` needs the serve extra: pip install 'music-streaming-etl[serve]' "
    "(Starlette, uvicorn and orjson)."
)


def serve(
    lake: Annotated[
        str | None, typer.Option("--lake", help="Lake root folder (default ./lake).")
    ] = None,
    host: Annotated[
        str, typer.Option(help="Address to bind; anything but 127.0.0.1 must be given explicitly.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    config: Annotated[
        Path | None, typer.Option("--config", help="Settings file (default ./music-etl.toml).")
    ] = None,
) -> None:
    """Serve the JSON API (/api/v1/) and the dashboard (/) over a lake; never writes.

    Reads the serving store and ledger the settings name (SQLite read-only, or DynamoDB),
    so an AWS lake is served like a local one. Ctrl-C or SIGTERM stops it.

    Example: music-etl serve --lake ./demo-lake --port 8000
    """
    if not 0 <= port <= 65535:
        render.fail(ConfigError(f"--port {port} is not a TCP port (0-65535)."))
    try:
        for name in SERVE_PACKAGES:
            importlib.import_module(name)
    except ImportError:
        render.fail(ConfigError(INSTALL_HINT))
    settings = render.guard(lambda: load_cli_settings(config=config, lake=lake))
    _serve(settings, host, port)


def _serve(settings: Settings, host: str, port: int) -> None:
    import uvicorn

    from music_etl.serve import create_app

    app = render.guard(lambda: create_app(settings))
    sock = render.guard(lambda: bind(host, port))
    bound = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    render.console.print(
        f"Serving {settings.lake} on http://{shown}:{bound}/ (API: /api/v1/); Ctrl-C to stop.",
        soft_wrap=True,
        highlight=False,
    )
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    with _signals_end_cleanly():
        server.run(sockets=[sock])


@contextmanager
def _signals_end_cleanly() -> Iterator[None]:
    """Ctrl-C and SIGTERM end `serve` with exit 0.

    uvicorn shuts down gracefully on them, then raises the signal again for the handler
    it found: this one ignores it, so the process exits normally instead of by the signal.
    """
    previous = {sig: signal.signal(sig, _ignore) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, action in previous.items():
            signal.signal(sig, action)


def _ignore(_signum: int, _frame: FrameType | None) -> None:
    """Nothing: the server has already stopped."""


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on `host:port` (0: a free port), or a `ConfigError` naming the fix."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        family, kind, proto, _, address = infos[0]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as exc:
        raise ConfigError(
            f"Cannot listen on {host}:{port} ({exc.strerror or exc}): pick another --port "
            "or --host."
        ) from exc
    sock.listen(128)
    sock.set_inheritable(True)
    return sock
