"""The service's HTTP side: `/healthz`, `/readyz` and `/metrics`, on asyncio alone.

Three GET endpoints need no web framework: requests are read with a size and time bound, answered
and closed. The server runs on the service's event loop and shares nothing with the message path.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

logger = logging.getLogger(__name__)

Response = tuple[int, str, bytes]  # status, content type, body
Endpoint = Callable[[], Response]
REASONS = {200: "OK", 404: "Not Found", 405: "Method Not Allowed", 503: "Service Unavailable"}
MAX_REQUEST = 8192
READ_TIMEOUT = 5.0


async def start(host: str, port: int, endpoints: dict[str, Endpoint]) -> asyncio.Server:
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(READ_TIMEOUT):
                head = await reader.readuntil(b"\r\n\r\n")
            method, _, rest = head[:MAX_REQUEST].decode("latin-1").partition(" ")
            path = rest.partition(" ")[0].partition("?")[0]
            if method != "GET":
                status, kind, body = 405, "text/plain", b"GET only\n"
            elif path in endpoints:
                status, kind, body = endpoints[path]()
            else:
                status, kind, body = 404, "text/plain", b"not found\n"
            head_out = (
                f"HTTP/1.1 {status} {REASONS.get(status, '')}\r\nContent-Type: {kind}\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
            )
            writer.write(head_out.encode("latin-1") + body)
            await writer.drain()
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, OSError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(answer, host, port, limit=MAX_REQUEST)
    bound = ", ".join(str(s.getsockname()[:2]) for s in server.sockets)
    logger.info("HTTP on %s: /healthz, /readyz, /metrics", bound)
    return server
