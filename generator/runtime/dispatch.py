"""From received messages to handler calls: per-topic order, bounded concurrency, bounded memory.

Each topic has its own queue and at most one worker, so one topic's messages are handled in the
order they arrived while other topics go on alongside (at most `max_concurrent` at once). At most
`max_pending` messages, and `max_pending_bytes` of their payloads, are held; at either mark the
connection stops delivering and it delivers again once both are down to half, so a slow service
leaves the backlog in the broker.
A message is acknowledged only after its handler returned.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Iterable

from .acks import Ack
from .message import Incoming

logger = logging.getLogger(__name__)

Handle = Callable[[Incoming], Awaitable[None]]
Entry = tuple[Incoming, "Ack | None"]
BURST = 256  # messages a worker handles before it lets another topic's worker take its slot


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
        self._slots = asyncio.Semaphore(max_concurrent)
        self._high = max_pending
        self._low = max_pending // 2
        self._high_bytes = max_pending_bytes
        self._low_bytes = max_pending_bytes // 2
        self._pause = pause
        self._resume = resume
        self._queues: dict[str, deque[Entry]] = {}
        self._workers: set[asyncio.Task[None]] = set()
        self._accepting = True
        self.paused = False
        self.pending = 0  # received and not yet handled: queued or running
        self.pending_bytes = 0  # their payloads
        self.running = 0
        self.unhandled = 0  # left at shutdown, for the broker to send again

    def submit(self, incoming: Incoming, ack: Ack | None) -> None:
        """Take a received message (called by the connection, synchronously)."""
        if not self._accepting:
            return  # shutting down: not acknowledged, so the broker keeps it
        self.pending += 1
        self.pending_bytes += len(incoming.payload)
        queue = self._queues.get(incoming.topic)
        if queue is None:
            queue = self._queues[incoming.topic] = deque()
            worker = asyncio.create_task(self._work(incoming.topic, queue))
            self._workers.add(worker)
            worker.add_done_callback(self._workers.discard)
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
        """Take nothing more, let running handlers finish (cancelling them after `timeout`), and
        return how many received messages were left unhandled."""
        self._accepting = False
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
        return self.unhandled

    async def _work(self, topic: str, queue: deque[Entry]) -> None:
        try:
            while queue and self._accepting:
                async with self._slots:
                    for _ in range(BURST):
                        if not queue or not self._accepting:
                            break
                        await self._one(topic, *queue.popleft())
        finally:
            if self._queues.get(topic) is queue:
                del self._queues[topic]
            if queue:  # left behind at shutdown or on cancellation
                self.unhandled += len(queue)
                self._done(len(queue), _size(queue))
                queue.clear()

    async def _one(self, topic: str, incoming: Incoming, ack: Ack | None) -> None:
        self.running += 1
        try:
            await self._handle(incoming)
        except Exception:
            logger.exception("unexpected error while handling a message on %r", topic)
        except asyncio.CancelledError:
            self.running -= 1
            self.unhandled += 1
            self._done(1, len(incoming.payload))  # cancelled: not acknowledged, sent again
            raise
        self.running -= 1
        if ack is not None:
            ack()
        self._done(1, len(incoming.payload))

    def _done(self, count: int, size: int) -> None:
        self.pending -= count
        self.pending_bytes -= size
        if self.paused and self.pending <= self._low and self.pending_bytes <= self._low_bytes:
            self.paused = False
            self._resume()


def _size(entries: Iterable[Entry]) -> int:
    return sum(len(incoming.payload) for incoming, _ in entries)
