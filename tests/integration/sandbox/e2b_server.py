"""A local stand-in for E2B: the control-plane API and the code interpreter's /execute.

Speaks what e2b-code-interpreter 2.x sends and parses: ``POST /v2/sandboxes``
(create), ``DELETE /sandboxes/{id}`` (kill) and ``POST /execute``, whose answer
is NDJSON: one JSON object per line with ``type`` in stdout, stderr, result,
error, number_of_executions (see ``e2b_code_interpreter.models._parse_output``).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class FakeE2B:
    """Records requests; ``script[code]`` is the list of NDJSON messages for that code."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, dict[str, Any] | None]] = []
        self.script: dict[str, list[dict[str, Any]]] = {}
        self.delay: dict[str, float] = {}
        self.fail: dict[str, int] = {}
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> FakeE2B:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def paths(self, method: str) -> list[str]:
        return [p for m, p, _ in self.requests if m == method]

    def bodies(self, path: str) -> list[dict[str, Any]]:
        return [b for _, p, b in self.requests if p == path and b is not None]

    def _messages(self, code: str) -> Iterator[dict[str, Any]]:
        yield from self.script.get(code, [])

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _body(self) -> dict[str, Any] | None:
                length = int(self.headers.get("Content-Length") or 0)
                return json.loads(self.rfile.read(length)) if length else None

            def _json(self, status: int, payload: Any) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:
                body = self._body()
                fake.requests.append(("POST", self.path, body))
                if self.path == "/v2/sandboxes":
                    self._json(201, {"templateID": (body or {}).get("templateID", "t"),
                                     "sandboxID": f"sbx-{len(fake.paths('POST'))}",
                                     "clientID": "client", "envdVersion": "0.2.0"})
                elif self.path == "/execute" and (body or {}).get("code") in fake.fail:
                    self._json(fake.fail[(body or {})["code"]], {"message": "kernel died"})
                elif self.path == "/execute":
                    code = (body or {}).get("code", "")
                    self.send_response(200)
                    self.send_header("Content-Type", "application/x-ndjson")
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    time.sleep(fake.delay.get(code, 0))
                    try:
                        for message in fake._messages(code):
                            line = (json.dumps(message) + "\n").encode()
                            self.wfile.write(b"%x\r\n%s\r\n" % (len(line), line))
                            self.wfile.flush()
                        self.wfile.write(b"0\r\n\r\n")
                    except (BrokenPipeError, ConnectionResetError):
                        pass
                else:
                    self._json(404, {"message": "not found"})

            def do_DELETE(self) -> None:
                fake.requests.append(("DELETE", self.path, None))
                self.send_response(204)
                self.send_header("Content-Length", "0")
                self.end_headers()

        return Handler
