"""A local Langfuse stand-in: an OTLP/HTTP span receiver and a score sink on 127.0.0.1."""

from __future__ import annotations

import gzip
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

TRACES_PATH = "/api/public/otel/v1/traces"
SCORES_PATH = "/api/public/scores"


def _value(any_value: Any) -> Any:
    kind = any_value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [_value(v) for v in any_value.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: _value(kv.value) for kv in any_value.kvlist_value.values}
    return getattr(any_value, kind)


@dataclass
class Span:
    """One received span, decoded."""

    trace_id: str
    span_id: str
    parent_span_id: str | None
    name: str
    attributes: dict[str, Any]
    scope: str
    status_message: str

    def json(self, key: str) -> Any:
        """A JSON-encoded attribute, decoded."""
        return json.loads(self.attributes[key])

    @property
    def type(self) -> Any:
        return self.attributes.get("langfuse.observation.type")

    @property
    def level(self) -> Any:
        return self.attributes.get("langfuse.observation.level")

    def metadata(self) -> dict[str, Any]:
        prefix = "langfuse.observation.metadata."
        return {k[len(prefix):]: json.loads(v) for k, v in self.attributes.items()
                if k.startswith(prefix)}


@dataclass
class Receiver:
    """What the server got: decoded spans, score bodies and every raw (decompressed) body."""

    url: str
    spans: list[Span] = field(default_factory=list)
    scores: list[dict[str, Any]] = field(default_factory=list)
    raw: list[bytes] = field(default_factory=list)
    auth: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def guardrails(self) -> list[Span]:
        with self.lock:
            return [s for s in self.spans if s.type == "guardrail"]

    def by_id(self) -> dict[str, Span]:
        with self.lock:
            return {s.span_id: s for s in self.spans}

    def raw_bytes(self) -> bytes:
        with self.lock:
            return b"\n".join(self.raw)


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # quiet
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            if self.headers.get("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
            path = self.path.split("?")[0]
            with receiver.lock:
                receiver.raw.append(body)
                receiver.auth.append(self.headers.get("Authorization", ""))
            if path == TRACES_PATH:
                request = ExportTraceServiceRequest()
                request.ParseFromString(body)
                spans = [
                    Span(trace_id=s.trace_id.hex(), span_id=s.span_id.hex(),
                         parent_span_id=s.parent_span_id.hex() or None, name=s.name,
                         attributes={a.key: _value(a.value) for a in s.attributes},
                         scope=scope.scope.name, status_message=s.status.message)
                    for resource in request.resource_spans
                    for scope in resource.scope_spans for s in scope.spans]
                with receiver.lock:
                    receiver.spans.extend(spans)
                self._reply(ExportTraceServiceResponse().SerializeToString(),
                            "application/x-protobuf")
            elif path == SCORES_PATH:
                payload = json.loads(body)
                items = payload.get("scores", payload) if isinstance(payload, dict) else payload
                items = items if isinstance(items, list) else [items]
                with receiver.lock:
                    receiver.scores.extend(items)
                self._reply(b'{"message": "Accepted"}', "application/json", status=202)
            else:
                self._reply(b"{}", "application/json")

        def _reply(self, body: bytes, content_type: str, status: int = 200) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return Handler


@contextmanager
def running_receiver() -> Iterator[Receiver]:
    """Serve on a free port of 127.0.0.1 until the block ends."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(Receiver(url="")))
    receiver = Receiver(url=f"http://127.0.0.1:{server.server_address[1]}")
    server.RequestHandlerClass = _handler(receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
