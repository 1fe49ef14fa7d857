"""A scripted broker for conformance tests: a loopback server whose connections each run a
script that reads and writes packets, MQTT 5 through the `mqtt5` codec, MQTT 3.1.1 as raw bytes
(no codec to borrow: the few packets the tests need are built and parsed here)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import mqtt5

from generator.runtime import ClientConfig, Outgoing

Script = Callable[[Any], Awaitable[None]]


class Peer:
    """One scripted broker connection: read packets, write packets."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.buffer = bytearray()

    async def read(self, timeout: float = 5) -> Any:
        async with asyncio.timeout(timeout):
            while True:
                if self.buffer:
                    with contextlib.suppress(IndexError):
                        packet, size = mqtt5.read(memoryview(bytes(self.buffer)))
                        del self.buffer[:size]
                        return packet
                chunk = await self.reader.read(65536)
                if not chunk:
                    raise ConnectionError("the client closed the connection")
                self.buffer += chunk

    async def expect(self, kind: type, timeout: float = 5) -> Any:
        while True:
            packet = await self.read(timeout)
            if isinstance(packet, kind):
                return packet
            if not isinstance(packet, mqtt5.PingReqPacket):
                raise AssertionError(f"expected {kind}, got {packet!r}")

    def send(self, *packets: Any) -> None:
        self.writer.write(b"".join(p.write() for p in packets))

    async def accept(self, **connack: Any) -> mqtt5.ConnectPacket:
        connect = await self.expect(mqtt5.ConnectPacket)
        self.send(mqtt5.ConnAckPacket(**connack))
        return connect


# MQTT 3.1.1 packet types
CONNECT, CONNACK, PUBLISH, PUBACK, PUBREC, PUBREL, PUBCOMP = 1, 2, 3, 4, 5, 6, 7
SUBSCRIBE, SUBACK = 8, 9
PINGREQ, PINGRESP, DISCONNECT = 12, 13, 14


@dataclass
class Raw:
    """An MQTT 3.1.1 packet: type, the fixed header's flags, the rest."""

    kind: int
    flags: int
    body: bytes

    @property
    def topic(self) -> str:
        return self.body[2 : 2 + int.from_bytes(self.body[:2])].decode()

    @property
    def packet_id(self) -> int:
        """Of a PUBLISH (after its topic) or of an acknowledgement."""
        at = 2 + len(self.topic.encode()) if self.kind == PUBLISH else 0
        return int.from_bytes(self.body[at : at + 2])

    @property
    def duplicate(self) -> bool:
        return bool(self.flags & 0x08)


def raw(kind: int, body: bytes, flags: int = 0) -> bytes:
    size, length = len(body), bytearray()
    while True:
        byte, size = size % 128, size // 128
        length.append(byte | (0x80 if size else 0))
        if not size:
            return bytes([kind << 4 | flags, *length]) + body


def publish_311(
    topic: str, payload: bytes, qos: int, packet_id: int = 0, dup: bool = False
) -> bytes:
    """An MQTT 3.1.1 PUBLISH."""
    body = len(topic.encode()).to_bytes(2) + topic.encode()
    if qos:
        body += packet_id.to_bytes(2)
    return raw(PUBLISH, body + payload, qos << 1 | (0x08 if dup else 0))


class Peer311:
    """One scripted MQTT 3.1.1 broker connection; PINGREQ is answered on the way (and counted,
    with the loop time of the last one)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.pings = 0

    async def read(self, timeout: float = 5) -> Raw:
        async with asyncio.timeout(timeout):
            while True:
                first = (await self.reader.readexactly(1))[0]
                size, shift = 0, 0
                while True:
                    byte = (await self.reader.readexactly(1))[0]
                    size, shift = size | (byte & 0x7F) << shift, shift + 7
                    if not byte & 0x80:
                        break
                packet = Raw(first >> 4, first & 0x0F, await self.reader.readexactly(size))
                if packet.kind != PINGREQ:
                    return packet
                self.pings += 1
                self.writer.write(raw(PINGRESP, b""))

    async def expect(self, *kinds: int, timeout: float = 5) -> Raw:
        packet = await self.read(timeout)
        assert packet.kind in kinds, f"expected packet type {kinds}, got {packet}"
        return packet

    async def accept(self, session_present: bool = False, code: int = 0) -> Raw:
        connect = await self.expect(CONNECT)
        self.writer.write(raw(CONNACK, bytes([int(session_present), code])))
        return connect

    def ack(self, kind: int, packet_id: int) -> None:
        self.writer.write(raw(kind, packet_id.to_bytes(2)))


@contextlib.asynccontextmanager
async def scripted(
    *scripts: Script, peer: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Any] = Peer
) -> AsyncIterator[tuple[int, asyncio.Future[list[None]]]]:
    """A loopback server whose n-th connection runs the n-th script (later ones are closed) with
    a `peer` around it; the future is done when every script is, with the first failure."""
    loop = asyncio.get_running_loop()
    results: list[asyncio.Future[None]] = [loop.create_future() for _ in scripts]
    accepted = 0

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal accepted
        index, accepted = accepted, accepted + 1
        if index >= len(scripts):
            writer.close()
            return
        try:
            await scripts[index](peer(reader, writer))
        except BaseException as exc:
            if not results[index].done():
                results[index].set_exception(exc)
            raise
        if not results[index].done():
            results[index].set_result(None)

    server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    finished = asyncio.gather(*results)
    finished.add_done_callback(lambda done: done.cancelled() or done.exception())  # retrieved
    try:
        async with server:
            yield port, finished
    finally:
        finished.cancel()
        server.close()


def config(port: int, **overrides: Any) -> ClientConfig:
    values: dict[str, Any] = {"host": "127.0.0.1", "port": port, "client_id": "conformance"}
    return ClientConfig(**{**values, **overrides})


class Flood:
    """A QoS 0 send loop against a peer that stopped reading, beside a task that ticks every
    5 ms: whether the sends stop (bounded memory) while the event loop keeps its turns."""

    def __init__(self, publish: Callable[[Any], Awaitable[None]], size: int, count: int) -> None:
        self.ticks = self.sent = 0
        self.ticks_at_first_pause: int | None = None
        self._publish, self._size, self._count = publish, size, count
        self.sending = asyncio.create_task(self._send_all())
        self._ticking = asyncio.create_task(self._tick())

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(0.005)
            self.ticks += 1

    async def _send_all(self) -> None:
        for _ in range(self._count):
            await self._publish(Outgoing("t", b"x" * self._size, qos=0))
            self.sent += 1

    async def until_stalled(self, writable: asyncio.Event, timeout: float = 20) -> None:
        """Until the sends stay stopped for 20 ticks with `writable` clear (the engine paused
        them); the ticks at its first pause are kept, to show the loop was not starved."""
        async with asyncio.timeout(timeout):
            while writable.is_set():
                await asyncio.sleep(0.005)
            self.ticks_at_first_pause = self.ticks
            while True:
                before, seen = self.sent, self.ticks
                while self.ticks < seen + 20:
                    await asyncio.sleep(0.005)
                if self.sent == before and not writable.is_set():
                    return

    def stop(self) -> None:
        self.sending.cancel()
        self._ticking.cancel()
