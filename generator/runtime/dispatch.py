"""From received messages to handler calls: per-topic order, bounded concurrency, bounded memory.

A fixed pool of at most `max_concurrent` workers serves a ready queue of topics. Each topic has
its own queue and is held by at most one worker at a time, so one topic's messages are handled in
the order they arrived while other topics go on alongside. A worker hands a topic back to the end
of the ready queue after `BURST` messages, so one busy device cannot starve the others. Workers
live as long as the dispatcher: a message costs a queue entry, never a task, which matters when a
fleet of devices each publish on a topic of their own.

At most `max_pending` messages, and `max_pending_bytes` of their payloads, are held; at either mark
the connection stops delivering and it delivers again once both are down to half, so a slow
service leaves the backlog in the broker.
A message is acknowledged only after its handler returned, or, when the handler handed back an
awaitable (a database commit, say), once that is done: the worker goes on to the next message
meanwhile, so writes can pile up into large batches while acknowledgements still mean "stored".
A message awaiting such a deferred acknowledgement still counts as pending (in number and bytes),
so a commit that does not come stops the reading and leaves the rest in the broker.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from functools import partial

from .acks import Ack
from .message import Incoming
from .ratelimit import RateLimitedLog

logger = logging.getLogger(__name__)

# A handler returns None (acknowledge now) or an awaitable to acknowledge after
Handle = Callable[[Incoming], Awaitable[Awaitable[object] | None]]
Entry = tuple[Incoming, "Ack | None"]
BURST = 32  # messages of one topic a worker handles before it serves the next ready topic
YIELD_EVERY = 256  # messages a worker handles before it lets the event loop run


class Dispatcher:
    def __init__(
        self,
        handle: Handle,
        *,
        max_concurrent: int,
        max_pending: int,
        max_pending_bytes: int = 1 << 62,
        pause: Callable[[], None],
        resume: Callable[[], None],
    ) -> None:
        self._handle = handle
        self._max_workers = max_concurrent
        self._high = max_pending
        self._low = max_pending // 2
        self._high_bytes = max_pending_bytes
        self._low_bytes = max_pending_bytes // 2
        self._pause = pause
        self._resume = resume
        self._queues: dict[str, deque[Entry]] = {}  # topics with messages queued or running
        self._ready: deque[str] = deque()  # topics with messages that no worker holds
        self._idle: deque[asyncio.Future[None]] = deque()  # workers waiting for a ready topic
        self._workers: set[asyncio.Task[None]] = set()
        self._accepting = True
        self.paused = False
        self.pending = 0  # received and not yet handled: queued or running
        self.pending_bytes = 0  # their payloads
        self.running = 0
        self.unhandled = 0  # left at shutdown, for the broker to send again
        self.deferred = 0  # handled, their acknowledgement waiting for what the handler handed back
        self._waits: dict[int, tuple[asyncio.Future[object], Entry]] = {}  # by ticket
        self._own: set[asyncio.Future[object]] = set()  # tasks made here of handed-back coroutines
        self._tickets = 0
        self._log = RateLimitedLog(logger)

    def submit(self, incoming: Incoming, ack: Ack | None) -> None:
        """Take a received message (called by the connection, synchronously)."""
        if not self._accepting:
            return  # shutting down: not acknowledged, so the broker keeps it
        self.pending += 1
        self.pending_bytes += len(incoming.payload)
        queue = self._queues.get(incoming.topic)
        if queue is None:  # a new topic; a known one is held by a worker or already ready
            self._queues[incoming.topic] = deque(((incoming, ack),))
            self._ready.append(incoming.topic)
            self._wake()
        else:
            queue.append((incoming, ack))
        full = self.pending >= self._high or self.pending_bytes >= self._high_bytes
        if full and not self.paused:
            self.paused = True
            self._pause()

    def connection_lost(self) -> int:
        """Forget queued messages that still wait for an acknowledgement: the broker will send
        them again on the next connection. QoS 0 messages stay (nobody would resend them)."""
        dropped = size = 0
        for queue in self._queues.values():
            keep = [entry for entry in queue if entry[1] is None]
            dropped += len(queue) - len(keep)
            size += _size(queue) - _size(keep)
            queue.clear()
            queue.extend(keep)
        self._done(dropped, size)
        return dropped

    async def drain(self, timeout: float) -> int:
        """Take nothing more, let running handlers finish (cancelling them after `timeout`), wait
        for deferred acknowledgements in the same time, and return how many received messages
        were left unhandled or unacknowledged."""
        deadline = asyncio.get_running_loop().time() + timeout
        self._accepting = False
        self._wake_all()
        workers = set(self._workers)
        if workers:
            _, late = await asyncio.wait(workers, timeout=timeout)
            if late:
                logger.warning(
                    "cancelling %d handler(s) still running after %.0f s", len(late), timeout
                )
                for worker in late:
                    worker.cancel()
                await asyncio.wait(late, timeout=5)
        await self._abandon_deferred(deadline)
        left = sum(len(queue) for queue in self._queues.values())
        size = sum(_size(queue) for queue in self._queues.values())
        self._queues.clear()
        self._ready.clear()
        self.unhandled += left
        self._done(left, size)
        return self.unhandled

    def _wake(self) -> None:
        """Make sure a worker will take the topic just made ready: an idle one, else a new one
        while the pool is not full (a full pool's workers look at the ready queue when free)."""
        while self._idle:
            waiter = self._idle.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        if len(self._workers) < self._max_workers:
            worker = asyncio.create_task(self._work())
            self._workers.add(worker)
            worker.add_done_callback(self._worker_done)

    def _worker_done(self, worker: asyncio.Task[None]) -> None:
        """A worker cancelled by someone else than drain() gave its topic back to the ready
        queue; make sure another one takes it."""
        self._workers.discard(worker)
        if self._accepting and self._ready:
            self._wake()

    def _wake_all(self) -> None:
        while self._idle:
            waiter = self._idle.popleft()
            if not waiter.done():
                waiter.set_result(None)

    async def _work(self) -> None:
        loop = asyncio.get_running_loop()
        unyielded = 0
        while self._accepting:
            if self._ready:
                unyielded += await self._serve(self._ready.popleft())
                if unyielded >= YIELD_EVERY:  # handlers that never wait would hold the loop:
                    unyielded = 0  # let it send the acknowledgements and read more meanwhile
                    await asyncio.sleep(0)
            else:
                waiter = loop.create_future()
                self._idle.append(waiter)
                await waiter  # woken by a ready topic, or by drain()
                unyielded = 0

    async def _serve(self, topic: str) -> int:
        """Handle up to BURST of the topic's messages in order, then give the topic back; returns
        how many were handled. One coroutine for the burst, not one per message: this is the
        per-message path."""
        queue = self._queues[topic]
        handle = self._handle
        count = 0
        try:
            while queue and count < BURST and self._accepting:
                incoming, ack = queue.popleft()
                count += 1
                self.running += 1
                after = None
                try:
                    after = await handle(incoming)
                except Exception:
                    logger.exception("unexpected error while handling a message on %r", topic)
                except asyncio.CancelledError:
                    if self._cancelled_by_drain(topic, incoming):
                        raise
                self.running -= 1
                if after is not None and self._defer(after, incoming, ack):
                    continue
                if ack is not None:
                    ack()
                self._done(1, len(incoming.payload))
        finally:  # when draining, the queues stay for drain() to count
            if self._accepting and queue:
                self._ready.append(topic)
            elif self._accepting:
                del self._queues[topic]
        return count

    def _defer(self, after: Awaitable[object], incoming: Incoming, ack: Ack | None) -> bool:
        """Acknowledge once `after` is done (a callback on it, not a task per message); False
        when it cannot be awaited, which is logged, and the message acknowledged at once."""
        try:
            future = asyncio.ensure_future(after)
        except TypeError as exc:
            self._log.log(logging.ERROR, "deferred", "not awaitable, acknowledged now: %s", exc)
            return False
        if future is not after:  # a coroutine: its task is ours to end at shutdown
            self._own.add(future)
            future.add_done_callback(self._own.discard)
        self._tickets += 1
        self._waits[self._tickets] = (future, (incoming, ack))
        self.deferred += 1
        future.add_done_callback(partial(self._settled, self._tickets))
        return True

    def _settled(self, ticket: int, future: asyncio.Future[object]) -> None:
        """What the handler handed back is done: acknowledge. Having failed, it is logged and
        acknowledged all the same, like a handler that raised (redelivering would fail again,
        and every later acknowledgement would wait behind it)."""
        wait = self._waits.pop(ticket, None)
        if wait is None:
            return  # abandoned by drain(): left for the broker to send again
        incoming, ack = wait[1]
        if future.cancelled() or future.exception() is not None:
            self._log.log(
                logging.ERROR,
                "deferred",
                "what the handler of a message on %r handed back failed: %r",
                incoming.topic,
                None if future.cancelled() else future.exception(),
            )
        self.deferred -= 1
        if ack is not None:
            ack()
        self._done(1, len(incoming.payload))

    async def _abandon_deferred(self, deadline: float) -> None:
        """Wait until `deadline` for deferred acknowledgements; those still waiting then are
        not acknowledged (the broker sends them again), however they end. A coroutine handed
        back still running is cancelled, so it does not outlive the lifespan's shutdown (a
        future handed back is the handler's: left alone, it may be shared by other messages)."""
        if self._waits:
            futures = {future for future, _ in self._waits.values()}
            left = deadline - asyncio.get_running_loop().time()
            await asyncio.wait(futures, timeout=max(left, 0.0))
        if self._waits:
            logger.warning(
                "%d message(s) not acknowledged: what their handlers handed back was not done",
                len(self._waits),
            )
        entries = [entry for _, entry in self._waits.values()]
        self._waits.clear()
        for task in list(self._own):
            task.cancel()
        self.deferred = 0
        self.unhandled += len(entries)
        self._done(len(entries), _size(entries))

    def _cancelled_by_drain(self, topic: str, incoming: Incoming) -> bool:
        """True when drain() cancelled this worker: the message is left unacknowledged, for the
        broker to send again. A handler that raised CancelledError on its own (a future it
        awaited was cancelled) failed like any other and is acknowledged, or every later
        acknowledgement would wait behind it."""
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            self.running -= 1
            self.unhandled += 1
            self._done(1, len(incoming.payload))
            return True
        logger.exception("handler cancelled itself on a message on %r", topic)
        return False

    def _done(self, count: int, size: int) -> None:
        self.pending -= count
        self.pending_bytes -= size
        if self.paused and self.pending <= self._low and self.pending_bytes <= self._low_bytes:
            self.paused = False
            self._resume()


def _size(entries: Iterable[Entry]) -> int:
    return sum(len(incoming.payload) for incoming, _ in entries)
