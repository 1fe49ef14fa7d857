"""The client the service uses: one session kept alive, messages fed to the dispatcher.

`serve()` connects, subscribes and waits; when the connection drops it reconnects at once, then
with capped, jittered backoff. Messages that were buffered but not yet handled are forgotten on a
drop (the broker sends them again), so a reconnect never drains a stale backlog first.
Two clients with one client id push each other off the broker: MQTT 5 brokers say so (reason
code 0x8E, session taken over), MQTT 3.1.1 brokers just close the older connection. Either way
the log says what is happening and reconnecting backs off, so the two do not fight at full speed.
`stop()` stops delivering, lets running handlers finish (their sends' acknowledgements are still
read), acknowledges only what was handled, disconnects, and reports how many messages were left
for the broker to deliver again.

A send waits for a connection (at most `max_waiting_sends` of them at once, each at most
`publish_timeout` seconds in all). A QoS 1/2 message belongs to the session once sent: a reconnect
that resumes the session sends it again, and its sender hears of the broker's acknowledgement.
"""

from __future__ import annotations

import asyncio
import logging
import random
import ssl
from collections.abc import Sequence
from typing import Any

from .acks import Ack
from .config import ClientConfig
from .connection import Connection, SessionState, TooLarge
from .dispatch import Dispatcher, Handle
from .errors import ConnectError, MqttError, PublishError, SessionTakenOver
from .message import Incoming, Outgoing, check_topic
from .ratelimit import RateLimitedLog

logger = logging.getLogger(__name__)
_too_large_log = RateLimitedLog(logger)
QUICK_DROP = 2.0  # seconds: a connection the broker closes sooner is suspect
QUICK_DROPS = 3  # suspect drops in a row that point at another client with the same id


class MqttClient:
    def __init__(
        self,
        config: ClientConfig,
        subscriptions: Sequence[tuple[str, int]],
        handle: Handle,
        *,
        max_concurrent: int = 16,
        too_large: TooLarge | None = None,
    ) -> None:
        self.config = config
        self.subscriptions = tuple(subscriptions)
        self._too_large = too_large or _log_too_large
        self.dispatcher = Dispatcher(
            handle,
            max_concurrent=max_concurrent,
            max_pending=config.max_pending,
            max_pending_bytes=config.max_pending_bytes,
            pause=self._pause,
            resume=self._resume,
        )
        self._session = SessionState()
        self._connection: Connection | None = None
        self._connected = asyncio.Event()
        self._closing = asyncio.Event()
        self._stopping = False
        self._waiting = 0  # sends waiting for a connection
        self.connections = 0  # successful connections so far; > 1 means reconnects

    @property
    def is_connected(self) -> bool:
        return self._connected.is_set()

    async def serve(self) -> None:
        """Stay connected until `stop()`; every failure is logged in one line and retried."""
        delay = 0.0  # the first retry after a drop is immediate
        drops = _Drops()
        while not self._closing.is_set():
            logger.info("connecting to %s", self.config.where)
            try:
                connection = await self._connect_unless_stopped()
                if connection is None:
                    break
            except Exception as exc:
                delay = max(delay, self.config.reconnect_min_delay)
                logger.warning(
                    "cannot connect to %s: %s; retrying in %.1f s",
                    self.config.where,
                    _why(exc),
                    delay,
                    exc_info=not isinstance(exc, MqttError | OSError | TimeoutError),
                )
                await self._sleep(delay * random.uniform(0.9, 1.1))
                delay = min(delay * 2, self.config.reconnect_max_delay)
                continue
            delay = 0.0
            started = asyncio.get_running_loop().time()
            cause = await self._hold(connection)
            if cause is None:  # stopping; stop() may have raced with this connection's set-up
                await _abandon(connection)
                continue
            lived = asyncio.get_running_loop().time() - started
            wait = drops.wait = self._report_drop(cause, drops.after(cause, lived))
            if wait:
                await self._sleep(wait * random.uniform(0.9, 1.1))

    def _report_drop(self, cause: BaseException, suspect: int) -> float:
        """Log why the connection ended, in one line. Returns how long to wait before
        reconnecting: nothing after an ordinary drop, a growing delay while another client
        with our client id keeps taking the session (`suspect`: drops in a row that say so)."""
        left = (
            f"{self.dispatcher.connection_lost()} buffered message(s) left for the broker to resend"
        )
        if not suspect:
            logger.warning("%s; reconnecting (%s)", cause, left)
            return 0.0
        c = self.config
        wait = min(c.reconnect_min_delay * 2.0 ** min(suspect - 1, 16), c.reconnect_max_delay)
        if isinstance(cause, SessionTakenOver):
            why = (
                f"{cause}; two instances with one client id push each other off: give each its own"
            )
        else:
            why = (
                f"{cause}, {suspect} times in a row soon after connecting: is another client "
                f"using the client id {c.client_id!r}? (a broker closes the older connection "
                "when a new one takes its id; under MQTT 3.1.1 it gives no reason)"
            )
        logger.warning("%s; reconnecting in %.1f s (%s)", why, wait, left)
        return wait

    async def publish(self, message: Outgoing) -> None:
        """Send, waiting up to the publish timeout for a connection and for the broker's ack."""
        check_topic(message.topic)
        timeout = self.config.publish_timeout
        try:
            async with asyncio.timeout(timeout):
                connection = await self._connection_for_send()
                await connection.publish(message)
        except TimeoutError:
            raise PublishError(
                f"not sent to {message.topic!r} within {timeout:g} s "
                f"({'no answer from the broker' if self.is_connected else 'not connected'})"
            ) from None
        except PublishError as exc:
            raise PublishError(f"not sent to {message.topic!r}: {exc}") from None

    async def _connection_for_send(self) -> Connection:
        if not self._connected.is_set():
            if self._waiting >= self.config.max_waiting_sends:
                raise PublishError(f"{self._waiting} sends already wait for a connection")
            self._waiting += 1
            try:
                await self._connected.wait()
            finally:
                self._waiting -= 1
        connection = self._connection
        if connection is None:
            raise PublishError("not connected")
        return connection

    async def check(self) -> str | None:
        """Connect and subscribe once, then disconnect: None when it worked, else why not."""
        try:
            connection = await self._connect()
        except Exception as exc:
            return _why(exc)
        await _abandon(connection)
        return None

    async def stop(self, timeout: float) -> int:
        """Stop gracefully; returns how many received messages were left unhandled or
        unacknowledged (the broker delivers the latter again)."""
        self._stopping = True
        if self._connection is not None:
            self._connection.pause_reading()
        left = await self.dispatcher.drain(timeout)
        self._closing.set()
        connection, self._connection = self._connection, None
        self._connected.clear()
        if connection is not None:
            # a message handled after one left in its queue waits for that one's ack: both
            # go back to the broker
            left = max(left, connection.unacknowledged)
            try:
                async with asyncio.timeout(5):
                    await connection.disconnect()
            except (TimeoutError, MqttError, OSError):
                pass
        self._session.outbox.fail_all(PublishError("the service stopped before the broker had it"))
        return left

    async def _connect_unless_stopped(self) -> Connection | None:
        """Connect, or give up at once (None) when `stop()` is called meanwhile."""
        connecting = asyncio.ensure_future(self._connect())
        closing = asyncio.ensure_future(self._closing.wait())
        try:
            await asyncio.wait({connecting, closing}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            closing.cancel()
        if connecting.done():
            return connecting.result()
        connecting.cancel()
        await asyncio.wait({connecting}, timeout=5)
        if connecting.done() and not connecting.cancelled() and connecting.exception() is None:
            await _abandon(connecting.result())
        return None

    async def _connect(self) -> Connection:
        connection: Connection
        if self.config.protocol == "5":
            from .v5 import open_connection as open_v5

            connection = await open_v5(self.config, self._session, self._deliver, self._too_large)
        else:  # paho is imported only by services that speak MQTT 3.1.1
            from .v311 import open_connection as open_v311

            connection = await open_v311(self.config, self._session, self._deliver)
        try:
            if self.subscriptions:
                granted = await self._subscribe(connection)
                for (topic_filter, wanted), got in zip(self.subscriptions, granted, strict=False):
                    if got < wanted:
                        logger.warning(
                            "the broker granted QoS %d of %d on %r", got, wanted, topic_filter
                        )
        except BaseException:
            await _abandon(connection)
            raise
        return connection

    async def _subscribe(self, connection: Connection) -> list[int]:
        """Subscribe within the connect timeout: a broker that never answers SUBSCRIBE is a
        failed connection (retried), not a service waiting forever."""
        timeout = self.config.connect_timeout
        try:
            async with asyncio.timeout(timeout):
                return await connection.subscribe(self.subscriptions)
        except TimeoutError:
            raise ConnectError(
                f"the broker did not answer SUBSCRIBE within {timeout:g} s"
            ) from None

    async def _hold(self, connection: Connection) -> BaseException | None:
        """Serve on one connection until it drops (returns why) or the client stops (None)."""
        if not connection.session_present:
            self._session.released.clear()
        self._connection = connection
        self.connections += 1
        if self.dispatcher.paused or self._stopping:
            connection.pause_reading()
        self._connected.set()
        filters = ", ".join(f for f, _ in self.subscriptions) or "nothing"
        resumed = ""
        if connection.session_present:
            resumed = f" (session resumed; {connection.resent} unacknowledged send(s) sent again)"
        logger.info("connected to %s%s; subscribed to %s", self.config.where, resumed, filters)
        closing = asyncio.ensure_future(self._closing.wait())
        waiting: set[asyncio.Future[Any]] = {closing, connection.closed}
        try:
            await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
        finally:
            closing.cancel()
        self._connected.clear()
        if self._connection is connection:
            self._connection = None
        if self._closing.is_set():
            return None
        return connection.closed.result()

    def _deliver(self, incoming: Incoming, ack: Ack | None) -> None:
        self.dispatcher.submit(incoming, ack)

    def _pause(self) -> None:
        if self._connection is not None:
            self._connection.pause_reading()

    def _resume(self) -> None:
        if self._connection is not None and not self._stopping:
            self._connection.resume_reading()

    async def _sleep(self, seconds: float) -> None:
        try:
            async with asyncio.timeout(seconds):
                await self._closing.wait()
        except TimeoutError:
            pass


class _Drops:
    """Counts the drops in a row that point at another client with our client id: a session
    taken over (MQTT 5 says so), or the broker closing the connection soon after accepting it,
    three times or more. "Soon" grows with the wait between attempts, since two clients that
    both back off each last about as long as the other waits."""

    def __init__(self) -> None:
        self.taken = 0  # sessions taken over in a row
        self.quick = 0  # quick drops in a row
        self.wait = 0.0  # the wait before the connection that dropped now

    def after(self, cause: BaseException, lived: float) -> int:
        """Record a drop; returns how many suspect drops in a row, 0 for an ordinary one."""
        self.quick = self.quick + 1 if lived < max(QUICK_DROP, 2 * self.wait) else 0
        self.taken = self.taken + 1 if isinstance(cause, SessionTakenOver) else 0
        if self.taken:
            return max(self.taken, self.quick)
        return self.quick if self.quick >= QUICK_DROPS else 0


def _log_too_large(topic: str, size: int) -> None:
    _too_large_log.log(
        logging.WARNING,
        "too large",
        "dropped a %d-byte message on %r while reading it: over the maximum packet size",
        size,
        topic,
    )


async def _abandon(connection: Connection) -> None:
    try:
        async with asyncio.timeout(2):
            await connection.disconnect()
    except (TimeoutError, MqttError, OSError):
        pass


def _why(exc: BaseException) -> str:
    """One line naming the cause: TLS, refused, timed out, or the OS's words."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS certificate rejected: {exc.verify_message}"
    if isinstance(exc, ssl.SSLError):
        return f"TLS failed: {exc.reason or exc}"
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, ConnectError | MqttError):
        return str(exc)
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__
