"""A local HTTP server that speaks the Anthropic Messages API with recorded responses.

The hosted model cannot be reached from this machine, so the real `anthropic` SDK is
pointed at this server: it checks what the SDK sends and answers with response bodies
in the Messages API's recorded format (tests/fixtures/anthropic/*.json).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "anthropic"

Responder = Callable[[dict[str, Any]], dict[str, Any]]


def recorded(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text())
    return data


class MessagesAPI:
    def __init__(self, responses: list[dict[str, Any] | Responder]) -> None:
        self.responses = list(responses)
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []

    def handle(self, body: dict[str, Any], headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
        self.requests.append(body)
        self.headers.append(headers)
        if not self.responses:
            return 500, {"type": "error", "error": {"type": "api_error", "message": "no recorded response left"}}
        nxt = self.responses.pop(0)
        return 200, nxt(body) if callable(nxt) else nxt


@contextmanager
def serve(api: MessagesAPI) -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("content-length", "0"))
            body = json.loads(self.rfile.read(length) or b"{}")
            if self.path.rstrip("/") != "/v1/messages":
                status, payload = 404, {"type": "error", "error": {"type": "not_found_error", "message": self.path}}
            else:
                status, payload = api.handle(body, {k.lower(): v for k, v in self.headers.items()})
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("request-id", "req_local")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
