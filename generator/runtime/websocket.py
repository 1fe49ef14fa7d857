"""MQTT over WebSockets for the MQTT 5 engine: RFC 6455 framing under an asyncio Protocol.

The engine talks to an `asyncio.Transport`; `WebSocketTransport` is one that sends each write as
one masked binary frame (a client must mask) and hands the engine the payload of every data frame
it reads: MQTT is a byte stream, so frame boundaries carry no meaning. The opening handshake
(HTTP/1.1 Upgrade, subprotocol `mqtt`) is over before the engine sees the transport. Pings are
answered; the broker's close frame is answered, then the connection ends. A frame is kept whole
until it is complete, so one announced larger than the engine's limit (twice its Maximum Packet
Size, at least 16 MiB) ends the connection before any of it is kept; so does a frame the
protocol forbids (reserved bits, an unknown opcode, a masked frame, a long or fragmented control
frame, and text: MQTT travels in binary frames only).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import struct
from collections.abc import Callable
from typing import Any

from .errors import ConnectError, ConnectionLost

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_CONTINUATION, _TEXT, _BINARY, _CLOSE, _PING, _PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
_OPCODES = frozenset({_CONTINUATION, _BINARY, _CLOSE, _PING, _PONG})  # MQTT allows no TEXT
_MAX_HEADER = 16 * 1024  # the broker's answer to the handshake
_MAX_FRAME = (256 << 20) + 16  # MQTT's largest packet, 256 MiB, in one frame


def frame(opcode: int, payload: bytes, mask: bytes | None = None) -> bytes:
    """One final frame, masked with `mask` (4 random bytes unless given)."""
    mask = mask if mask is not None else os.urandom(4)
    size = len(payload)
    if size < 126:
        head = struct.pack("!BB", 0x80 | opcode, 0x80 | size)
    elif size < 1 << 16:
        head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, size)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, size)
    return head + mask + _xor(payload, mask)


def _xor(data: bytes, mask: bytes) -> bytes:
    """`data` masked with the 4-byte key, in one big-integer operation rather than a loop."""
    if not data:
        return b""
    size = len(data)
    key = (mask * (size // 4 + 1))[:size]
    return (int.from_bytes(data, "big") ^ int.from_bytes(key, "big")).to_bytes(size, "big")


class FrameError(ConnectionLost):
    """A frame the protocol forbids (RFC 6455 section 5, MQTT-6.0.0-1): the connection ends."""


class FrameTooLarge(FrameError):
    """The broker announced a frame larger than any packet the engine takes."""


def parse_frame(
    buffer: bytes | bytearray, start: int = 0, limit: int = _MAX_FRAME, masked: bool = False
) -> tuple[int, bytes, int] | None:
    """(opcode, unmasked payload, where the frame ends) of the whole frame at `start`, or None
    while it is incomplete; a frame announced larger than `limit` raises `FrameTooLarge` before
    any of it is kept, and one the protocol forbids raises `FrameError`. `masked`: the frames
    come from a client, which must mask them (a server must not)."""
    if len(buffer) < start + 2:
        return None
    first, second = buffer[start], buffer[start + 1]
    opcode, size, offset = first & 0x0F, second & 0x7F, start + 2
    _check_header(first, opcode, size, bool(second & 0x80), masked)
    if size == 126:
        if len(buffer) < offset + 2:
            return None
        size, offset = struct.unpack_from("!H", buffer, offset)[0], offset + 2
    elif size == 127:
        if len(buffer) < offset + 8:
            return None
        size, offset = struct.unpack_from("!Q", buffer, offset)[0], offset + 8
    if size > limit:
        raise FrameTooLarge(
            f"the broker sent a WebSocket frame of {size:,} bytes (at most {limit:,})"
        )
    mask = None
    if masked:
        if len(buffer) < offset + 4:
            return None
        mask, offset = bytes(buffer[offset : offset + 4]), offset + 4
    end = offset + size
    if len(buffer) < end:
        return None
    payload = bytes(buffer[offset:end])
    return opcode, (_xor(payload, mask) if mask else payload), end


def _check_header(first: int, opcode: int, size: int, mask_bit: bool, masked: bool) -> None:
    """What RFC 6455 makes the receiver fail the connection for, and MQTT's binary-only rule."""
    if first & 0x70:
        raise FrameError("the broker sent a WebSocket frame with reserved bits set")
    if opcode not in _OPCODES:
        kind = (
            "text frame (MQTT needs binary)" if opcode == _TEXT else f"frame of opcode {opcode:#x}"
        )
        raise FrameError(f"the broker sent a WebSocket {kind}")
    if mask_bit and not masked:
        raise FrameError("the broker sent a masked WebSocket frame (a server must not mask)")
    if masked and not mask_bit:
        raise FrameError("a client sent an unmasked WebSocket frame")
    if opcode >= _CLOSE and (size > 125 or not first & 0x80):
        raise FrameError("the broker sent a WebSocket control frame that is long or fragmented")


def handshake_request(host: str, port: int, path: str, key: str) -> bytes:
    """The opening handshake. A path with spaces or control characters would break the request
    line (or add headers to it): refused."""
    if not path.startswith("/") or any(c.isspace() or not c.isprintable() for c in path):
        raise ConnectError(f"the WebSocket path {path!r} must start with / and have no spaces")
    lines = [
        f"GET {path} HTTP/1.1",
        f"Host: {host}:{port}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {key}",
        "Sec-WebSocket-Version: 13",
        "Sec-WebSocket-Protocol: mqtt",
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("ascii")


def check_handshake(answer: bytes, key: str) -> None:
    """Raise ConnectError unless `answer` (the status line and headers) accepts the upgrade."""
    status, *header_lines = answer.decode("latin-1").split("\r\n")
    parts = status.split(" ", 2)
    if len(parts) < 2 or parts[1] != "101":
        raise ConnectError(f"the WebSocket upgrade was refused: {status.strip()!r}")
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    tokens = {t.strip().lower() for t in headers.get("connection", "").split(",")}
    if headers.get("upgrade", "").lower() != "websocket" or "upgrade" not in tokens:
        raise ConnectError("the WebSocket upgrade was answered without Upgrade: websocket")
    expected = base64.b64encode(hashlib.sha1(key.encode() + _GUID).digest()).decode()
    if headers.get("sec-websocket-accept") != expected:
        raise ConnectError("the WebSocket upgrade was answered with a wrong Sec-WebSocket-Accept")
    if headers.get("sec-websocket-protocol", "").lower() != "mqtt":
        raise ConnectError("the WebSocket server did not accept the subprotocol 'mqtt'")


class WebSocketTransport(asyncio.Transport):
    """What the engine writes to and pauses: frames over the real transport."""

    def __init__(self, raw: asyncio.Transport) -> None:
        super().__init__()
        self._raw = raw
        self._closing = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not self._closing:
            self._raw.write(frame(_BINARY, bytes(data)))

    def close(self) -> None:
        """Send a normal-closure frame, then close the socket."""
        if not self._closing:
            self._closing = True
            self._raw.write(frame(_CLOSE, struct.pack("!H", 1000)))
            self._raw.close()

    def abort(self) -> None:
        self._closing = True
        self._raw.abort()

    def is_closing(self) -> bool:
        return self._closing or self._raw.is_closing()

    def pause_reading(self) -> None:
        self._raw.pause_reading()

    def resume_reading(self) -> None:
        self._raw.resume_reading()

    def is_reading(self) -> bool:
        return self._raw.is_reading()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._raw.get_extra_info(name, default)


class WebSocketProtocol(asyncio.Protocol):
    """The socket's protocol: performs the upgrade, then unframes data for `inner`.
    `upgraded` is done once the broker accepted the upgrade (or failed with the reason)."""

    def __init__(
        self,
        inner: Callable[[], asyncio.Protocol],
        host: str,
        port: int,
        path: str,
        max_frame: int = _MAX_FRAME,
    ) -> None:
        self._make_inner = inner
        self._max_frame = max_frame  # the engine's Maximum Packet Size: memory stays bounded
        self._request = (host, port, path)
        self._key = base64.b64encode(os.urandom(16)).decode()
        self._buffer = bytearray()
        self._raw: asyncio.Transport | None = None
        self.inner: asyncio.Protocol | None = None
        self._failed = False  # the engine was told why the connection ends
        self.upgraded: asyncio.Future[asyncio.Protocol] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._raw = transport
        try:
            transport.write(handshake_request(*self._request, self._key))
        except ConnectError as exc:
            self._refuse(exc)

    def data_received(self, data: bytes) -> None:
        if self._raw is not None and self._raw.is_closing():
            return  # after a close frame, or refused: nothing more is data
        self._buffer += data
        if self.inner is None:
            self._read_handshake()
        if self.inner is not None:
            self._read_frames()

    def pause_writing(self) -> None:
        if self.inner is not None:  # the socket's buffer is full: the engine waits
            self.inner.pause_writing()

    def resume_writing(self) -> None:
        if self.inner is not None:
            self.inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.inner is not None and not self._failed:
            self.inner.connection_lost(exc)
        elif not self.upgraded.done():
            why = f": {exc}" if exc else ""
            self.upgraded.set_exception(ConnectError(f"closed during the WebSocket upgrade{why}"))

    def _read_handshake(self) -> None:
        end = self._buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(self._buffer) > _MAX_HEADER:
                self._refuse(ConnectError("the WebSocket upgrade answer is too long"))
            return
        answer, self._buffer = bytes(self._buffer[:end]), self._buffer[end + 4 :]
        try:
            check_handshake(answer, self._key)
        except ConnectError as exc:
            self._refuse(exc)
            return
        assert self._raw is not None
        self.inner = self._make_inner()
        self.inner.connection_made(WebSocketTransport(self._raw))
        self.upgraded.set_result(self.inner)

    def _refuse(self, exc: ConnectError) -> None:
        self._buffer.clear()
        if not self.upgraded.done():
            self.upgraded.set_exception(exc)
        if self._raw is not None:
            self._raw.abort()

    def _fail(self, exc: FrameError) -> None:
        """The engine hears why, once (not again when the socket then closes)."""
        assert self.inner is not None and self._raw is not None
        self._failed = True
        self.inner.connection_lost(exc)
        self._raw.abort()

    def _read_frames(self) -> None:
        assert self.inner is not None and self._raw is not None
        offset = 0
        data: list[bytes] = []  # handed over at once: one parse for many small frames
        while True:
            try:
                found = parse_frame(self._buffer, offset, self._max_frame)
            except FrameError as exc:  # what came before it is the engine's, then it ends
                self._buffer.clear()
                if data:
                    self.inner.data_received(b"".join(data))
                self._fail(exc)
                return
            if found is None:
                break
            opcode, payload, offset = found
            if opcode in (_BINARY, _CONTINUATION):
                data.append(payload)
            elif opcode == _PING:
                self._raw.write(frame(_PONG, payload))
            elif opcode == _CLOSE:  # answered; nothing after it is data
                if not self._raw.is_closing():
                    self._raw.write(frame(_CLOSE, payload[:2]))
                    self._raw.close()
                offset = len(self._buffer)
                break
        del self._buffer[:offset]
        if data:
            self.inner.data_received(b"".join(data))
