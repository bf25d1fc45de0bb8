"""A tiny threaded HTTP(S) server the emulators share: routing, JSON, latency, faults, a request log.

The stdlib server keeps the sandbox dependency-free and lets tests and the demo start it in
process on a free port.  Emulators register handlers for path templates such as
``/crm/v3/objects/{objectType}/search``; the template (not the concrete path) names the
endpoint in the request log, so tests can count calls per endpoint.
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import ssl
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit


@dataclass(slots=True)
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    endpoint: str = ""  # the matched template, e.g. "POST /crm/v3/objects/{objectType}/search"

    def json(self) -> Any:
        return json.loads(self.body or b"null")

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[0] if values else default

    def args(self, name: str) -> list[str]:
        """All values of a repeated query argument, also split on commas as HubSpot accepts."""
        out: list[str] = []
        for value in self.query.get(name, []):
            out.extend(v for v in value.split(",") if v)
        return out


@dataclass(slots=True)
class Response:
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json;charset=utf-8"

    def encode(self) -> bytes:
        if self.body is None:
            return b""
        if isinstance(self.body, bytes):
            return self.body
        return json.dumps(self.body, separators=(",", ":")).encode()


class DropConnection(Exception):
    """Raised by a fault hook to close the socket without an answer (a connection reset)."""


Handler = Callable[[Request, dict[str, str]], Response]
# A fault hook sees each request before routing; it returns a response to send instead, or None.
FaultHook = Callable[[Request], Response | None]


class Router:
    def __init__(self) -> None:
        self._routes: list[tuple[str, str, re.Pattern[str], Handler]] = []

    def add(self, method: str, template: str, handler: Handler) -> None:
        pattern = re.sub(r"\\{(\w+)\\}", r"(?P<\1>[^/]+)", re.escape(template))
        self._routes.append((method, template, re.compile(f"^{pattern}$"), handler))

    def route(self, method: str, path: str) -> tuple[str, Handler, dict[str, str]] | None:
        for route_method, template, pattern, handler in self._routes:
            if route_method != method:
                continue
            match = pattern.match(path)
            if match:
                params = {k: unquote(v) for k, v in match.groupdict().items()}
                return f"{method} {template}", handler, params
        return None


class SandboxServer:
    """Serves one emulator on 127.0.0.1; ``port=0`` picks a free port."""

    def __init__(
        self,
        router: Router,
        *,
        name: str,
        port: int = 0,
        tls: ssl.SSLContext | None = None,
        latency: float = 0.0,
    ) -> None:
        self.router = router
        self.name = name
        self.latency = latency
        self.fault_hooks: list[FaultHook] = []
        self.calls: Counter[tuple[str, int]] = Counter()
        self._lock = threading.Lock()
        self._httpd = _Server(("127.0.0.1", port), _make_handler(self))
        if tls is not None:
            self._httpd.socket = tls.wrap_socket(self._httpd.socket, server_side=True)
        self._scheme = "https" if tls is not None else "http"
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        return f"{self._scheme}://127.0.0.1:{self.port}"

    def start(self) -> SandboxServer:
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"sandbox-{self.name}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def record(self, endpoint: str, status: int) -> None:
        with self._lock:
            self.calls[(endpoint, status)] += 1

    def calls_by_endpoint(self) -> dict[str, int]:
        out: Counter[str] = Counter()
        with self._lock:
            for (endpoint, _status), n in self.calls.items():
                out[endpoint] += n
        return dict(out)

    def reset_calls(self) -> None:
        with self._lock:
            self.calls.clear()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def server_bind(self) -> None:
        # Headers and body go out in separate writes; with Nagle on, each answer would wait
        # ~40 ms for the client's delayed ACK.  Accepted sockets inherit this on Linux.
        self.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().server_bind()


def _make_handler(server: SandboxServer) -> type[BaseHTTPRequestHandler]:
    class _Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            return

        def _dispatch(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            parts = urlsplit(self.path)
            request = Request(
                method=self.command,
                path=parts.path,
                query=parse_qs(parts.query, keep_blank_values=True),
                headers={k.lower(): v for k, v in self.headers.items()},
                body=body,
            )
            if server.latency:
                time.sleep(server.latency)
            routed = server.router.route(request.method, request.path)
            request.endpoint = routed[0] if routed else f"{request.method} {request.path}"
            try:
                response = None
                for hook in server.fault_hooks:
                    response = hook(request)
                    if response is not None:
                        break
                if response is None:
                    if routed is None:
                        response = Response(
                            404,
                            {
                                "status": "error",
                                "message": f"No route for {request.method} {request.path}",
                                "category": "OBJECT_NOT_FOUND",
                            },
                        )
                    else:
                        response = routed[1](request, routed[2])
            except DropConnection:
                server.record(request.endpoint, 0)
                self.close_connection = True
                with contextlib.suppress(OSError):
                    self.connection.shutdown(2)
                return
            except Exception as exc:  # an emulator bug must show as a 500, not hang the client
                response = Response(500, {"status": "error", "message": f"sandbox error: {exc!r}"})
            server.record(request.endpoint, response.status)
            payload = response.encode()
            self.send_response(response.status)
            self.send_header("Content-Type", response.content_type)
            self.send_header("Content-Length", str(len(payload)))
            for key, value in response.headers.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _dispatch

    return _Handler
