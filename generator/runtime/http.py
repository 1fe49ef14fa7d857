"""The service's HTTP side: `/healthz`, `/readyz` and `/metrics`, on asyncio alone.

Three GET endpoints need no web framework. The server shares the event loop with the handlers,
so it must stay cheap whatever its clients do: each connection is a small Protocol (no task, no
stream), a request is read with a size and time bound, answered and closed, and `Cached` keeps a
costly body (the metrics) for a second, so a flood of scrapes renders it once a second.

At most `max_connections` are served at once. As many again are let in to ask for a probe
(`/healthz`, `/readyz`), so a flood of scrapes does not fail the liveness check: anything else
they ask gets a 503, and they have `PROBE_TIMEOUT` to ask. Beyond both, a connection gets a 503
and is closed at once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

logger = logging.getLogger(__name__)

Response = tuple[int, str, bytes]  # status, content type, body
Endpoint = Callable[[], Response]
REASONS = {200: "OK", 404: "Not Found", 405: "Method Not Allowed", 503: "Service Unavailable"}
MAX_REQUEST = 8192
READ_TIMEOUT = 5.0
PROBE_TIMEOUT = 0.5
MAX_CONNECTIONS = 128
PROBES = frozenset({"/healthz", "/readyz"})
BUSY = (503, "text/plain", b"busy: too many connections\n")


def response(status: int, kind: str, body: bytes) -> bytes:
    head = (
        f"HTTP/1.1 {status} {REASONS.get(status, '')}\r\nContent-Type: {kind}\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode("latin-1") + body


class Cached:
    """`render()` at most once every `seconds`; the body in between."""

    def __init__(
        self,
        render: Callable[[], bytes],
        seconds: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._render = render
        self._seconds = seconds
        self._clock = clock
        self._body = b""
        self._at = -float("inf")

    def __call__(self) -> bytes:
        now = self._clock()
        if now - self._at >= self._seconds:
            self._body = self._render()
            self._at = now
        return self._body


class _Server:
    def __init__(self, endpoints: dict[str, Endpoint], max_connections: int) -> None:
        self.endpoints = endpoints
        self.max_connections = max_connections
        self.open = [0, 0]  # served, let in for a probe only

    def answer(self, head: bytes, probes_only: bool) -> bytes:
        method, _, rest = head.decode("latin-1").partition(" ")
        path = rest.partition(" ")[0].partition("?")[0]
        if method != "GET":
            return response(405, "text/plain", b"GET only\n")
        endpoint = self.endpoints.get(path)
        if endpoint is None:
            return response(404, "text/plain", b"not found\n")
        if probes_only and path not in PROBES:
            return response(*BUSY)
        return response(*endpoint())


class _Connection(asyncio.Protocol):
    def __init__(self, server: _Server) -> None:
        self._server = server
        self._buffer = bytearray()
        self._transport: asyncio.Transport | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._pool = 0  # 1: let in for a probe only

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        server = self._server
        self._pool = 0 if server.open[0] < server.max_connections else 1
        if server.open[self._pool] >= server.max_connections:
            transport.write(response(*BUSY))
            transport.close()
            return
        server.open[self._pool] += 1
        self._transport = transport
        timeout = PROBE_TIMEOUT if self._pool else READ_TIMEOUT
        self._timer = asyncio.get_running_loop().call_later(timeout, transport.abort)

    def data_received(self, data: bytes) -> None:
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        self._buffer += data
        end = self._buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(self._buffer) > MAX_REQUEST:
                transport.abort()
            return
        transport.write(self._server.answer(bytes(self._buffer[:end]), bool(self._pool)))
        transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._transport is not None:
            self._server.open[self._pool] -= 1
            self._transport = None
        if self._timer is not None:
            self._timer.cancel()


async def start(
    host: str,
    port: int,
    endpoints: dict[str, Endpoint],
    *,
    max_connections: int = MAX_CONNECTIONS,
) -> asyncio.Server:
    state = _Server(endpoints, max_connections)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: _Connection(state), host, port)
    bound = ", ".join(str(s.getsockname()[:2]) for s in server.sockets)
    logger.info("HTTP on %s: /healthz, /readyz, /metrics", bound)
    return server
