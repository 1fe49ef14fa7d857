"""The runtime's HTTP server on a loopback port, without a broker: answers, its bound on
connections served at once, and the cached metrics body."""

from __future__ import annotations

import asyncio

import pytest

from generator.runtime import http


async def get(port: int, path: str = "/healthz") -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    try:
        async with asyncio.timeout(5):
            return await reader.read()
    finally:
        writer.close()


def test_answers_then_closes() -> None:
    async def scenario() -> None:
        endpoints: dict[str, http.Endpoint] = {"/healthz": lambda: (200, "text/plain", b"ok\n")}
        server = await http.start("127.0.0.1", 0, endpoints)
        port = server.sockets[0].getsockname()[1]
        async with server:
            assert (await get(port)).endswith(b"\r\n\r\nok\n")
            assert (await get(port, "/nope")).startswith(b"HTTP/1.1 404 Not Found")

    asyncio.run(scenario())


def test_past_the_limit_only_probes_get_through_then_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two idle connections hold both places: a probe still gets through, a scrape is refused;
    two more idle ones fill the places for probes, and then a probe is refused too. Once a
    place is free again a scrape is served."""
    monkeypatch.setattr(http, "PROBE_TIMEOUT", 30.0)  # the idle probes stay for the test

    async def scenario() -> None:
        endpoints: dict[str, http.Endpoint] = {
            "/healthz": lambda: (200, "text/plain", b"ok\n"),
            "/metrics": lambda: (200, "text/plain", b"counts\n"),
        }
        server = await http.start("127.0.0.1", 0, endpoints, max_connections=2)
        port = server.sockets[0].getsockname()[1]
        async with server:
            served = [await asyncio.open_connection("127.0.0.1", port) for _ in range(2)]
            assert (await get(port, "/healthz")).startswith(b"HTTP/1.1 200 OK")
            assert (await get(port, "/metrics")).startswith(b"HTTP/1.1 503 Service Unavailable")
            probing = [await asyncio.open_connection("127.0.0.1", port) for _ in range(2)]
            assert (await get(port, "/healthz")).startswith(b"HTTP/1.1 503")
            _, writer = served.pop()
            writer.close()
            await writer.wait_closed()
            for _ in range(100):  # the server hears of the close on a later turn of the loop
                answer = await get(port, "/metrics")
                if answer.startswith(b"HTTP/1.1 200"):
                    break
            assert answer.endswith(b"counts\n"), answer
            for _, writer in served + probing:
                writer.close()

    asyncio.run(scenario())


def test_a_cached_body_is_rendered_once_per_interval() -> None:
    now = [0.0]
    renders: list[float] = []

    def render() -> bytes:
        renders.append(now[0])
        return str(len(renders)).encode()

    body = http.Cached(render, 1.0, clock=lambda: now[0])
    assert {body() for _ in range(10_000)} == {b"1"}
    now[0] = 0.99
    assert body() == b"1"
    now[0] = 1.0
    assert body() == b"2"
    assert renders == [0.0, 1.0]
