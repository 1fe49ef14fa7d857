"""MQTT 3.1.1 session engine: paho-mqtt driven from the event loop, with manual acknowledgement.

For brokers without MQTT 5. paho owns the codec, the packet flow and the WebSocket transport;
this module gives it the event loop's sockets (so reading can be paused) and turns its callbacks
into futures. PUBACK is sent after handling, in arrival order. paho sends PUBREC for QoS 2 on
arrival and delivers on PUBREL; PUBCOMP follows handling, so a crash between PUBREC and PUBREL
loses that one message: under MQTT 3.1.1, QoS 1 is the at-least-once level. MQTT 3.1.1 has no
message properties: content type, response topic and correlation data are left out; headers
(user properties) are refused, since they are data. Nor has it a Maximum Packet Size: paho reads
a whole packet before anyone can look at it, so only the broker's own limit bounds what one
message costs. QoS 0 sends wait while paho holds more than UNWRITTEN_MARK bytes unwritten.

One paho client serves every connection of a session (it is kept in `SessionState.engine`):
paho keeps the packet ids and the unacknowledged QoS 1/2 messages it sent, and on the next
CONNACK sends them again itself (PUBLISH with DUP, PUBREL for QoS 2 past PUBREC) in their
original order before anything new. paho does so whether or not the broker kept the session, so
when it did not (session present 0) they are taken from paho and fail, as under MQTT 5.
"""

from __future__ import annotations

import asyncio
import socket
from collections import deque
from collections.abc import Sequence
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from .acks import Ack, AckQueue
from .config import ClientConfig
from .connection import Connection, Deliver, SessionState, holding_too_much
from .errors import ConnectError, ConnectionLost, MqttError, PublishError
from .message import Incoming, Outgoing

MISC_INTERVAL = 1.0  # seconds between paho's keep-alive checks
# QoS 0 sends paho may hold unwritten, in bytes, before the next send waits for writes (4 MiB,
# as the MQTT 5 engine's socket buffer mark; sends go on below half of it). A message counts its
# payload plus what paho keeps beside it (its packet and bookkeeping, about 2 KiB measured), so
# small messages are bounded too.
UNWRITTEN_MARK = 4 << 20
HELD_PER_MESSAGE = 2048


def _new_client(config: ClientConfig) -> paho.Client:
    c = config
    client = paho.Client(
        CallbackAPIVersion.VERSION2,
        client_id=c.client_id,
        clean_session=c.clean_start,
        protocol=paho.MQTTv311,
        manual_ack=True,
        transport=c.transport,
    )
    if c.transport == "websockets":  # paho asks for the subprotocol `mqtt` itself
        client.ws_set_options(path=c.ws_path)
    client.max_inflight_messages_set(0)  # the runtime bounds what it sends itself
    if c.username is not None:
        client.username_pw_set(c.username, c.password)
    if c.will is not None:
        client.will_set(c.will.topic, c.will.payload, c.will.qos, c.will.retain)
    if c.tls is not None:
        client.tls_set_context(c.tls.context())
        client.tls_insecure_set(c.tls.insecure)
    return client


class Mqtt311Connection(Connection):
    def __init__(self, config: ClientConfig, session: SessionState, deliver: Deliver) -> None:
        self._config = config
        self._session = session
        self._deliver = deliver
        self._loop = asyncio.get_running_loop()
        self.closed = self._loop.create_future()
        self._connack: asyncio.Future[Any] = self._loop.create_future()  # paho's ReasonCode
        self._waiters: dict[int, asyncio.Future[Any]] = {}
        self._socket: socket.socket | None = None
        self._reading = False
        self._paused = False  # messages are held, not delivered
        self._socket_paused = False
        self._held: deque[tuple[Incoming, Ack | None]] = deque()
        self._held_bytes = 0
        self._pinged = 0.0  # loop time of the last PINGREQ sent while paused
        self._timer: asyncio.TimerHandle | None = None
        self._unwritten: deque[tuple[paho.MQTTMessageInfo, int]] = deque()  # QoS 0, in order
        self._unwritten_bytes = 0
        self._writable = asyncio.Event()  # cleared while paho holds too much unwritten
        self._writable.set()
        if not isinstance(session.engine, paho.Client):
            session.engine = _new_client(config)
        self._client = session.engine
        self._listen()
        self._acks = AckQueue(self._ack)

    def _ack(self, mid: int, qos: int) -> None:
        self._client.ack(mid, qos)

    def _listen(self) -> None:
        """paho's callbacks now come to this connection."""
        client = self._client
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_publish = self._on_publish
        client.on_subscribe = self._on_subscribe
        client.on_socket_open = self._on_socket_open
        client.on_socket_close = self._on_socket_close
        client.on_socket_register_write = self._on_register_write
        client.on_socket_unregister_write = self._on_unregister_write

    async def connect(self) -> None:
        c = self._config
        # paho's connect is a blocking socket connect (and TLS handshake): run it off the loop.
        await self._loop.run_in_executor(None, self._connect_blocking, c.host, c.port, c.keep_alive)
        code = await self._connack
        if code.is_failure:  # paho names the CONNACK return code as the MQTT 5 reason code
            reason = str(code).lower()
            self._fail(ConnectError(f"refused: {reason}"))
            raise ConnectError(f"the broker refused the connection: {reason}")
        self._timer = self._loop.call_later(MISC_INTERVAL, self._misc)

    def _connect_blocking(self, host: str, port: int, keep_alive: int) -> None:
        self._client.connect(host, port, keep_alive)

    async def subscribe(self, subscriptions: Sequence[tuple[str, int]]) -> list[int]:
        self._check_open()
        result, mid = self._client.subscribe(list(subscriptions))
        if result != paho.MQTT_ERR_SUCCESS or mid is None:
            raise MqttError(f"subscribing failed: {paho.error_string(result)}")
        waiter = self._waiters[mid] = self._loop.create_future()
        codes: list[Any] = await waiter
        granted = []
        for (topic_filter, _), code in zip(subscriptions, codes, strict=False):
            if code.is_failure:
                raise MqttError(f"the broker refused the subscription to {topic_filter!r}")
            granted.append(int(code.value))
        return granted

    async def publish(self, message: Outgoing) -> None:
        self._check_open()
        if message.user_properties:  # headers are data: refuse rather than drop them
            raise PublishError("message headers need MQTT_PROTOCOL=5")
        info = self._client.publish(message.topic, message.payload, message.qos, message.retain)
        if info.rc != paho.MQTT_ERR_SUCCESS:
            raise PublishError(paho.error_string(info.rc))
        if message.qos:
            flight = self._session.outbox.track(info.mid, message)
            await asyncio.shield(flight.done)
        else:
            await self._paced(info, len(message.payload) + HELD_PER_MESSAGE)

    async def _paced(self, info: paho.MQTTMessageInfo, size: int) -> None:
        """QoS 0 has no acknowledgement to wait for, so nothing else would stop a fast sender
        from piling messages up in paho while the socket is full: past the mark, wait until
        paho has written them (or the connection ended)."""
        self._unwritten.append((info, size))
        self._unwritten_bytes += size
        if self._unwritten_bytes > UNWRITTEN_MARK:
            self._writable.clear()
            await self._writable.wait()

    def pause_reading(self) -> None:
        self._paused = True

    def resume_reading(self) -> None:
        """Deliver what was held, in order, until the service is full again; read on."""
        self._paused = False
        while self._held and not self._paused:
            incoming, ack = self._held.popleft()
            self._held_bytes -= len(incoming.payload)
            self._deliver(incoming, ack)
        if self._socket_paused and not self._holding_too_much():
            self._socket_paused = False
            self._start_reading()

    @property
    def unacknowledged(self) -> int:
        return len(self._acks)

    async def disconnect(self) -> None:
        if not self.closed.done():
            self._client.disconnect()
        try:
            async with asyncio.timeout(2):
                await asyncio.shield(self.closed)
        except TimeoutError:
            self._fail(ConnectionLost("closed"))

    # -- paho callbacks -----------------------------------------------------------------------

    def _on_connect(
        self, client: paho.Client, userdata: Any, flags: Any, code: Any, props: Any
    ) -> None:
        """Runs before paho sends its unacknowledged messages again."""
        self.session_present = bool(flags.session_present)
        if int(code.value) == 0:
            if not self.session_present:
                self._forget_sends(
                    "the broker kept no session (restarted without persistence, or a clean "
                    "session): it may or may not have the message"
                )
            self.resent = len(self._session.outbox.flights)
        if not self._connack.done():
            self._connack.set_result(code)

    def _on_disconnect(
        self, client: paho.Client, userdata: Any, flags: Any, code: Any, props: Any
    ) -> None:
        self._fail(ConnectionLost(f"connection lost: {code}"))

    def _on_message(self, client: paho.Client, userdata: Any, message: paho.MQTTMessage) -> None:
        ack = self._acks.track(message.mid, message.qos) if message.qos else None
        incoming = Incoming(
            message.topic, bytes(message.payload), message.qos, bool(message.retain)
        )
        if not self._paused:
            self._deliver(incoming, ack)
            return
        self._held.append((incoming, ack))
        self._held_bytes += len(incoming.payload)
        if not self._socket_paused and self._holding_too_much():
            self._socket_paused = True
            self._stop_reading()

    def _holding_too_much(self) -> bool:
        return holding_too_much(self._config, len(self._held), self._held_bytes)

    def _on_publish(
        self, client: paho.Client, userdata: Any, mid: int, code: Any, props: Any
    ) -> None:
        self._session.outbox.settle(mid)

    def _on_subscribe(
        self, client: paho.Client, userdata: Any, mid: int, codes: Any, props: Any
    ) -> None:
        self._resolve(mid, codes)

    def _on_socket_open(self, client: paho.Client, userdata: Any, sock: Any) -> None:
        self._loop.call_soon_threadsafe(self._attach, sock)

    def _on_socket_close(self, client: paho.Client, userdata: Any, sock: Any) -> None:
        self._stop_reading()
        self._unwatch_write(sock)
        self._socket = None

    def _on_register_write(self, client: paho.Client, userdata: Any, sock: Any) -> None:
        if not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._watch_write, sock)

    def _on_unregister_write(self, client: paho.Client, userdata: Any, sock: Any) -> None:
        """Also called when paho's client is collected, which may be after the loop closed."""
        if not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._unwatch_write, sock)

    # -- plumbing -----------------------------------------------------------------------------

    def _attach(self, sock: socket.socket) -> None:
        if self.closed.done():
            return
        self._socket = sock
        if not self._socket_paused:
            self._start_reading()

    def _watch_write(self, sock: socket.socket) -> None:
        if not self.closed.done() and sock.fileno() >= 0:
            self._loop.add_writer(sock, self._write)

    def _unwatch_write(self, sock: socket.socket) -> None:
        if sock.fileno() >= 0:
            self._loop.remove_writer(sock)

    def _write(self) -> None:
        self._client.loop_write()
        while self._unwritten and self._unwritten[0][0].is_published():
            self._unwritten_bytes -= self._unwritten.popleft()[1]
        if self._unwritten_bytes <= UNWRITTEN_MARK // 2:
            self._writable.set()

    def _start_reading(self) -> None:
        if self._socket is not None and not self._reading and not self.closed.done():
            self._loop.add_reader(self._socket, self._read)
            self._reading = True

    def _stop_reading(self) -> None:
        if self._socket is not None and self._reading:
            self._loop.remove_reader(self._socket)
        self._reading = False

    def _read(self) -> None:
        result = self._client.loop_read()
        if result not in (paho.MQTT_ERR_SUCCESS, paho.MQTT_ERR_AGAIN):
            self._fail(ConnectionLost(f"connection lost: {paho.error_string(result)}"))

    def _misc(self) -> None:
        if self.closed.done():
            return
        if self._socket_paused:
            self._ping_while_paused()
        else:
            self._client.loop_misc()
        self._timer = self._loop.call_later(MISC_INTERVAL, self._misc)

    def _ping_while_paused(self) -> None:
        """Paused, the broker's answers wait unread, so paho's keep-alive check (which would
        take that for a dead link) is not run. The broker still needs a packet from us within
        1.5x the keep-alive, or it hangs up: a PINGREQ through paho's own queue (paho has no
        public call for it; its answer, read on resume, only clears paho's wait for one)."""
        keep_alive = self._client.keepalive
        now = self._loop.time()
        if keep_alive > 0 and now - self._pinged >= keep_alive / 2:
            self._pinged = now
            self._client._send_pingreq()

    def _resolve(self, mid: int, value: Any) -> None:
        waiter = self._waiters.pop(mid, None)
        if waiter is not None and not waiter.done():
            waiter.set_result(value)

    def _check_open(self) -> None:
        if self.closed.done():
            raise PublishError(f"not connected ({self.closed.result()})")

    def _fail(self, cause: MqttError) -> None:
        if self.closed.done():
            return
        self.closed.set_result(cause)
        self._acks.close()
        self._held.clear()
        self._unwritten.clear()  # QoS 0 is at most once: what paho still holds is dropped
        self._unwritten_bytes = 0
        self._writable.set()
        self._stop_reading()
        if self._timer is not None:
            self._timer.cancel()
        if not self._connack.done():
            self._connack.set_exception(ConnectError(str(cause)))
            self._connack.exception()
        for waiter in self._waiters.values():
            if not waiter.done():
                waiter.set_exception(ConnectionLost(str(cause)))
        self._waiters.clear()
        if not self._config.persistent:  # the broker forgets the session: nothing to resume
            self._forget_sends(f"{cause}; the broker may or may not have it")
        sock, self._socket = self._socket, None
        if sock is not None:  # closed here, so paho's next connect finds nothing to tidy
            self._unwatch_write(sock)
            sock.close()

    def _forget_sends(self, why: str) -> None:
        """Take the unacknowledged messages from paho, so it does not send them again, and fail
        their senders."""
        self._client.drop_out_messages()
        self._session.outbox.fail_sent(PublishError(why))


async def open_connection(
    config: ClientConfig, session: SessionState, deliver: Deliver
) -> Mqtt311Connection:
    """Connect and wait for CONNACK within the connect timeout."""
    connection = Mqtt311Connection(config, session, deliver)
    try:
        async with asyncio.timeout(config.connect_timeout):
            await connection.connect()
    except BaseException:
        connection._fail(ConnectionLost("connect abandoned"))
        raise
    return connection
