"""A Slack-style webhook on 127.0.0.1 that records what is posted to it."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Webhook:
    """The server's URL, the JSON bodies it received and the status it answers with."""

    url: str = ""
    received: list[dict[str, Any]] = field(default_factory=list)
    status: int = 200


@contextmanager
def webhook_server(status: int = 200) -> Iterator[Webhook]:
    """Serve a webhook on a free port of 127.0.0.1 until the block ends."""
    hook = Webhook(status=status)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", 0))
            hook.received.append(json.loads(self.rfile.read(length)))
            self.send_response(hook.status)
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *_: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    hook.url = f"http://127.0.0.1:{server.server_address[1]}/services/T000/B000/secret"
    try:
        yield hook
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
