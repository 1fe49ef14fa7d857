"""MQTT 5 session engine: an asyncio Protocol on the `mqtt5` codec (sans-I/O, in Rust).

The codec turns bytes into packets and back; this module owns the rest: the CONNECT handshake,
keep-alive, the broker's Receive Maximum for what we send, sending again what a resumed session
still owes (the session's `Outbox`), acknowledgement after handling (through `AckQueue`), QoS 2
in both directions, reading past a packet over our Maximum Packet Size (`oversize`), and pausing
when the service is full so that the backlog stays in the broker.

Over WebSockets (`ClientConfig.transport`), `websocket.py` frames the same bytes under this
Protocol.

Pausing stops delivering PUBLISH packets, not reading: what else arrives meanwhile (above all the
acknowledgements a handler's own send waits for) is still handled, so a service at its mark
does not wait for itself. PUBLISH packets read meanwhile are held, up to the marks' worth again,
then the socket pauses too.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

import mqtt5

from .acks import AckQueue
from .config import ClientConfig
from .connection import Connection, Deliver, SessionState, TooLarge, holding_too_much
from .errors import ConnectError, ConnectionLost, MqttError, PublishError, SessionTakenOver
from .message import Incoming, Outgoing
from .oversize import Oversized, packet_size
from .websocket import WebSocketProtocol

logger = logging.getLogger(__name__)

_FAILED = 0x80  # reason codes from here on are failures
_PACE_EVERY = 64  # QoS 0 sends between two turns of the loop


def _failed(code: Any) -> bool:
    return int(code.value) >= _FAILED


def _reason(code: Any, text: str | None = None) -> str:
    name = getattr(code, "name", str(code)).lower().replace("_", " ")
    return f"{name} ({text})" if text else name


def _publish_packet(message: Outgoing, packet_id: int | None, duplicate: bool = False) -> bytes:
    return mqtt5.PublishPacket(
        message.topic,
        message.payload,
        qos=mqtt5.QoS(message.qos),
        retain=message.retain,
        packet_id=packet_id,
        duplicate=duplicate,
        user_properties=list(message.user_properties),
        response_topic=message.response_topic,
        correlation_data=message.correlation_data,
        content_type=message.content_type,
    ).write()


def _ignore(topic: str, size: int) -> None:
    return None


class Mqtt5Connection(asyncio.Protocol, Connection):
    def __init__(
        self,
        config: ClientConfig,
        session: SessionState,
        deliver: Deliver,
        too_large: TooLarge = _ignore,
    ) -> None:
        self._config = config
        self._session = session
        self._deliver = deliver
        self._too_large = too_large
        self._oversized: Oversized | None = None  # a packet being read past
        self._loop = asyncio.get_running_loop()
        self.closed = self._loop.create_future()
        self._transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._paused = False  # PUBLISH packets are held, not delivered
        self._socket_paused = False
        self._held: deque[mqtt5.PublishPacket] = deque()
        self._held_bytes = 0
        self._out: list[bytes] = []
        self._writable = asyncio.Event()  # cleared while the socket's buffer is over its mark
        self._writable.set()
        self._unpaced = 0  # QoS 0 sends since the loop last had a turn
        self._acks = AckQueue(self._send_ack)
        self._connack: asyncio.Future[mqtt5.ConnAckPacket] = self._loop.create_future()
        self._waiters: dict[int, asyncio.Future[Any]] = {}  # SUBACKs awaited
        self._unsent: deque[int] = deque()  # flights to write on this connection, in order
        self._sent_here: set[int] = set()  # written on this connection and not finished
        self._receive_max = 65_535
        self.resent = 0  # unacknowledged messages of the resumed session sent again
        self._keep_alive = config.keep_alive
        self._last_sent = self._last_received = self._loop.time()
        self._timer: asyncio.TimerHandle | None = None

    # -- asyncio.Protocol -------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        self._last_received = self._loop.time()
        if self._oversized is not None:
            rest = self._read_past(data)
            if not rest:
                return
            self._buffer += rest
        else:
            self._buffer += data
        self._parse()

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(ConnectionLost(f"connection lost: {exc}" if exc else "the broker closed it"))

    # -- Connection ---------------------------------------------------------------------------

    async def handshake(self) -> None:
        c = self._config
        will = None
        if c.will is not None:
            w = c.will
            will = mqtt5.Will(w.topic, payload=w.payload, qos=mqtt5.QoS(w.qos), retain=w.retain)
        self._write(
            mqtt5.ConnectPacket(
                c.client_id,
                username=c.username,
                password=c.password.encode("utf-8") if c.password is not None else None,
                clean_start=c.clean_start,
                will=will,
                keep_alive=c.keep_alive,
                session_expiry_interval=0 if c.clean_start else c.session_expiry,
                receive_max=max(1, min(c.max_pending, 65_535)),
                topic_alias_max=0,
                max_packet_size=c.max_packet_size,
            ).write()
        )
        connack = await self._connack
        if connack.reason_code != mqtt5.ConnAckReasonCode.SUCCESS:
            self._close()
            reason = _reason(connack.reason_code, connack.reason_str)
            raise ConnectError(f"the broker refused the connection: {reason}")
        self.session_present = connack.session_present
        self._receive_max = connack.receive_max
        if connack.server_keep_alive is not None:
            self._keep_alive = connack.server_keep_alive
        self._resume_outbox()
        self._schedule_keep_alive()

    async def subscribe(self, subscriptions: Sequence[tuple[str, int]]) -> list[int]:
        filters = [mqtt5.TopicFilter(f, max_qos=mqtt5.QoS(q)) for f, q in subscriptions]
        packet_id, waiter = self._new_waiter()
        self._write(mqtt5.SubscribePacket(packet_id, filters).write())
        suback: mqtt5.SubAckPacket = await waiter
        granted = []
        for (topic_filter, _), code in zip(subscriptions, suback.reason_codes, strict=False):
            if _failed(code):
                raise MqttError(
                    f"the broker refused the subscription to {topic_filter!r}: {_reason(code)}"
                )
            granted.append(int(code.value))
        return granted

    async def publish(self, message: Outgoing) -> None:
        """QoS 1/2: the message joins the session's outbox, so a reconnect that resumes the
        session sends it again and this call returns once the broker has it, on any connection."""
        self._check_open()
        if message.qos == 0:
            self._write(_publish_packet(message, None))
            await self._pace()
            return
        outbox = self._session.outbox
        packet_id, flight = outbox.add(message, self._waiters)
        self._unsent.append(packet_id)
        self._pump()
        try:
            await asyncio.shield(flight.done)
        except asyncio.CancelledError:
            outbox.abandon(packet_id)
            raise

    async def _pace(self) -> None:
        """A QoS 0 send waits for nothing from the broker: give the loop a turn every few of
        them (keep-alive, acks and the HTTP side go on, and the batch is written), and wait
        while the socket's buffer is over its high-water mark, so a send loop to a broker that
        does not read holds bounded memory."""
        self._unpaced += 1
        if self._unpaced >= _PACE_EVERY:
            self._unpaced = 0
            await asyncio.sleep(0)
        if not self._writable.is_set():
            await self._writable.wait()  # set again when the connection ends, too

    def pause_writing(self) -> None:
        self._writable.clear()

    def resume_writing(self) -> None:
        self._writable.set()

    def pause_reading(self) -> None:
        self._paused = True

    def resume_reading(self) -> None:
        """Deliver what was held, in order, until the service is full again; read on."""
        self._paused = False
        while self._held and not self._paused:
            packet = self._held.popleft()
            self._held_bytes -= len(packet.payload)
            self._on_publish(packet)
        if self._socket_paused and not self._holding_too_much():
            self._socket_paused = False
            if self._transport is not None:
                self._transport.resume_reading()
            self._parse()

    @property
    def unacknowledged(self) -> int:
        return len(self._acks)

    async def disconnect(self) -> None:
        if not self.closed.done() and self._transport is not None:
            self._write(mqtt5.DisconnectPacket().write())
            self._flush()
            self._transport.close()
        await asyncio.shield(self.closed)

    # -- incoming packets ---------------------------------------------------------------------

    def _parse(self) -> None:
        offset = 0
        view = memoryview(self._buffer)
        try:
            while not self._socket_paused and offset < len(view):
                rest = view[offset:]
                try:
                    packet, size = mqtt5.read(rest)
                except IndexError:  # an incomplete packet: wait for more bytes, or read past it
                    offset = self._start_reading_past(view, offset)
                    break
                finally:
                    rest.release()
                offset += size
                self._handle(packet)
        except ValueError as exc:
            self._fail(ConnectionLost(f"malformed packet from the broker: {exc}"))
        finally:
            view.release()
            del self._buffer[:offset]

    def _handle(self, packet: mqtt5.Packet) -> None:
        if isinstance(packet, mqtt5.PublishPacket):
            if self._paused:
                self._hold(packet)
            else:
                self._on_publish(packet)
        elif isinstance(packet, mqtt5.PubAckPacket | mqtt5.PubCompPacket):
            self._settle(packet.packet_id, packet.reason_code, packet.reason_str)
        elif isinstance(packet, mqtt5.PubRecPacket):
            self._on_pubrec(packet)
        elif isinstance(packet, mqtt5.PubRelPacket):
            self._session.released.discard(packet.packet_id)
            self._write(mqtt5.PubCompPacket(packet.packet_id).write())
        elif isinstance(packet, mqtt5.SubAckPacket):
            waiter = self._waiters.pop(packet.packet_id, None)
            if waiter is not None and not waiter.done():
                waiter.set_result(packet)
        elif isinstance(packet, mqtt5.ConnAckPacket):
            if not self._connack.done():
                self._connack.set_result(packet)
        elif isinstance(packet, mqtt5.DisconnectPacket):
            reason = _reason(packet.reason_code, packet.reason_str)
            if packet.reason_code == mqtt5.DisconnectReasonCode.SESSION_TAKEN_OVER:
                self._fail(
                    SessionTakenOver(
                        f"the broker disconnected us: {reason} (0x8E): another client connected "
                        f"with the client id {self._config.client_id!r}"
                    )
                )
            else:
                self._fail(ConnectionLost(f"the broker disconnected us: {reason}"))
        elif not isinstance(packet, mqtt5.PingRespPacket):
            self._fail(ConnectionLost(f"unexpected {type(packet).__name__} from the broker"))

    def _on_publish(self, packet: mqtt5.PublishPacket) -> None:
        qos = int(packet.qos)
        ack = None
        if qos:
            packet_id = packet.packet_id or 0
            if qos == 2 and packet_id in self._session.released:
                self._write(mqtt5.PubRecPacket(packet_id).write())  # handled once already
                return
            ack = self._acks.track(packet_id, qos)
        incoming = Incoming(
            packet.topic,
            packet.payload,
            qos,
            packet.retain,
            dict(packet.user_properties),
            packet.response_topic,
            packet.correlation_data,
            packet.content_type,
        )
        self._deliver(incoming, ack)

    def _start_reading_past(self, view: memoryview, offset: int) -> int:
        """Where parsing goes on: past what is buffered of an incomplete packet that will be
        larger than the Maximum Packet Size we announced, else at the packet."""
        limit = self._config.max_packet_size
        size = packet_size(view[offset:])
        if limit is None or size is None or size <= limit:
            return offset
        self._oversized = Oversized(size)
        self._read_past(bytes(view[offset:]))
        return len(view)

    def _read_past(self, data: bytes | memoryview) -> bytes | memoryview:
        """Feed the packet being read past; once it is whole, answer it. Returns what follows."""
        assert self._oversized is not None
        rest = self._oversized.feed(data)
        if self._oversized.done:
            skipped, self._oversized = self._oversized, None
            publish = skipped.publish()
            if publish is None:
                self._fail(ConnectionLost(f"a {skipped.size}-byte packet from the broker"))
                return b""
            topic, qos, packet_id = publish
            if qos:
                self._acks.track(packet_id, qos)()
            self._too_large(topic, skipped.size)
        return rest

    def _hold(self, packet: mqtt5.PublishPacket) -> None:
        self._held.append(packet)
        self._held_bytes += len(packet.payload)
        if not self._socket_paused and self._holding_too_much() and self._transport is not None:
            self._socket_paused = True
            self._transport.pause_reading()

    def _holding_too_much(self) -> bool:
        return holding_too_much(self._config, len(self._held), self._held_bytes)

    def _send_ack(self, packet_id: int, qos: int) -> None:
        if qos == 1:
            self._write(mqtt5.PubAckPacket(packet_id).write())
        else:
            self._session.released.add(packet_id)
            self._write(mqtt5.PubRecPacket(packet_id).write())

    # -- outgoing bookkeeping -----------------------------------------------------------------

    def _resume_outbox(self) -> None:
        """Before anything new, send again what the session still owes the broker; a broker that
        kept no session has forgotten it, so those sends fail."""
        outbox = self._session.outbox
        if not self.session_present:
            outbox.fail_sent(
                PublishError(
                    "the broker kept no session (restarted without persistence, or the session "
                    "expired): it may or may not have the message"
                )
            )
        self.resent = sum(1 for flight in outbox.flights.values() if flight.sent)
        self._unsent.extend(outbox.flights)
        self._pump()

    def _pump(self) -> None:
        """Write waiting flights in order while the broker's Receive Maximum allows: a flight
        counts until its PUBACK or PUBCOMP."""
        flights = self._session.outbox.flights
        while self._unsent and len(self._sent_here) < self._receive_max:
            if self.closed.done():
                return
            packet_id = self._unsent.popleft()
            flight = flights.get(packet_id)
            if flight is None or packet_id in self._sent_here:
                continue  # abandoned by its sender before it went out, or listed twice
            self._sent_here.add(packet_id)
            if flight.released:
                self._write(mqtt5.PubRelPacket(packet_id).write())
            else:
                self._write(_publish_packet(flight.message, packet_id, flight.sent))
                flight.sent = True

    def _on_pubrec(self, packet: mqtt5.PubRecPacket) -> None:
        if _failed(packet.reason_code):
            self._settle(packet.packet_id, packet.reason_code, packet.reason_str)
            return
        flight = self._session.outbox.flights.get(packet.packet_id)
        if flight is not None:
            flight.released = True
        self._write(mqtt5.PubRelPacket(packet.packet_id).write())

    def _settle(self, packet_id: int, code: Any, text: str | None) -> None:
        if packet_id not in self._sent_here:
            return  # not in flight on this connection
        self._sent_here.discard(packet_id)
        error = None
        if _failed(code):
            error = PublishError(f"the broker refused the message: {_reason(code, text)}")
        self._session.outbox.settle(packet_id, error)
        self._pump()

    def _new_waiter(self) -> tuple[int, asyncio.Future[Any]]:
        self._check_open()
        packet_id = self._session.outbox.new_id(self._waiters)
        waiter: asyncio.Future[Any] = self._loop.create_future()
        self._waiters[packet_id] = waiter
        return packet_id, waiter

    def _check_open(self) -> None:
        if self.closed.done():
            raise PublishError(f"not connected ({self.closed.result()})")

    # -- writing, keep-alive, failure ---------------------------------------------------------

    def _write(self, data: bytes) -> None:
        """Queue bytes; they go out together at the end of this turn of the event loop, so a
        burst of acknowledgements costs one system call."""
        if not self._out:
            self._loop.call_soon(self._flush)
        self._out.append(data)

    def _flush(self) -> None:
        if self._out and self._transport is not None and not self._transport.is_closing():
            self._transport.write(b"".join(self._out))
            self._last_sent = self._loop.time()
        self._out.clear()

    def _schedule_keep_alive(self) -> None:
        if self._keep_alive > 0 and not self.closed.done():
            self._timer = self._loop.call_later(self._keep_alive / 2, self._on_keep_alive)

    def _on_keep_alive(self) -> None:
        """Ping when either direction was quiet for half the keep-alive: the broker must hear
        from us, and we must hear from it (our own sends prove nothing about the broker)."""
        now = self._loop.time()
        half = self._keep_alive / 2
        # While the socket is paused, the broker's answers wait unread: that is not silence.
        if not self._socket_paused and now - self._last_received > self._keep_alive * 1.5:
            self._fail(
                ConnectionLost(f"no answer from the broker for {self._keep_alive * 1.5:.0f} s")
            )
            return
        if now - self._last_sent >= half or now - self._last_received >= half:
            self._write(mqtt5.PingReqPacket().write())
        self._schedule_keep_alive()

    def _fail(self, cause: MqttError) -> None:
        self._writable.set()  # a paced send returns; the next one finds the connection closed
        if self.closed.done():
            return
        self.closed.set_result(cause)
        self._acks.close()
        self._held.clear()
        if self._timer is not None:
            self._timer.cancel()
        if not self._connack.done():
            self._connack.set_exception(ConnectError(str(cause)))
            self._connack.exception()  # retrieved here; handshake() re-raises it
        for waiter in self._waiters.values():
            if not waiter.done():
                waiter.set_exception(ConnectionLost(str(cause)))
        self._waiters.clear()
        if not self._config.persistent:  # the broker forgets the session: nothing to resume
            self._session.outbox.fail_sent(
                PublishError(f"{cause}; the broker may or may not have it")
            )
        self._close()

    def _close(self) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.abort()


async def open_connection(
    config: ClientConfig, session: SessionState, deliver: Deliver, too_large: TooLarge = _ignore
) -> Mqtt5Connection:
    """Connect (TCP or TLS, then a WebSocket upgrade if asked), send CONNECT and wait for
    CONNACK, all within the connect timeout. `too_large` hears of each message read past for its
    size (topic, bytes)."""
    async with asyncio.timeout(config.connect_timeout):
        connection = await _open(
            config, lambda: Mqtt5Connection(config, session, deliver, too_large)
        )
        try:
            await connection.handshake()
        except BaseException:
            connection._close()
            raise
    return connection


async def _open(config: ClientConfig, make: Callable[[], Mqtt5Connection]) -> Mqtt5Connection:
    loop = asyncio.get_running_loop()
    context = config.tls.context() if config.tls is not None else None
    hostname = config.host if context is not None else None
    if config.transport != "websockets":
        _, connection = await loop.create_connection(
            make, config.host, config.port, ssl=context, server_hostname=hostname
        )
        return connection
    transport, framing = await loop.create_connection(
        lambda: WebSocketProtocol(
            make, config.host, config.port, config.ws_path, _frame_limit(config)
        ),
        config.host,
        config.port,
        ssl=context,
        server_hostname=hostname,
    )
    try:
        inner = await framing.upgraded
    except BaseException:
        transport.abort()
        raise
    assert isinstance(inner, Mqtt5Connection)
    return inner


def _frame_limit(config: ClientConfig) -> int:
    """The largest WebSocket frame to read: room for two packets of the announced Maximum
    Packet Size (a broker may put several packets in one frame) and at least 16 MiB; without a
    payload limit, MQTT's own packet limit."""
    size = config.max_packet_size
    return max(2 * size + 16, 16 << 20) if size is not None else (256 << 20) + 16
