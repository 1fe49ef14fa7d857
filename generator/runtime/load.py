"""Publishing a stream of messages as fast as the broker takes them, or at a steady rate: the
engine of `python -m <package> simulate`.

One message at a time waits a round trip per message (a few hundred a second); here `window`
senders per connection share one stream, so up to the broker's receive maximum of each
connection is in flight, and several connections multiply that. The rate is counted from the
first acknowledged message to the last, so connecting is not part of it.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from .message import Outgoing

WINDOW = 64  # senders per connection: above mosquitto's default receive maximum (20)
ERRORS_KEPT = 10  # failures described in the report; the rest are only counted


class Sender(Protocol):
    async def publish(self, message: Outgoing) -> None: ...


@dataclass
class Tally:
    """What a run sent, by channel, what failed, and when the first and last sends ended."""

    sent: Counter[str] = field(default_factory=Counter)
    failed: int = 0
    errors: list[str] = field(default_factory=list)
    first: float | None = None
    last: float | None = None

    @property
    def rate(self) -> float:
        """Messages per second between the first acknowledged send and the last."""
        total = sum(self.sent.values())
        if self.first is None or self.last is None or total < 2 or self.last <= self.first:
            return 0.0
        return (total - 1) / (self.last - self.first)


class _Pacer:
    """Spaces sends `1/rate` apart from the start of the run (no limit when rate is 0)."""

    def __init__(
        self, rate: float, clock: Callable[[], float], sleep: Callable[[float], Awaitable[None]]
    ) -> None:
        self._interval = 1 / rate if rate > 0 else 0.0
        self._clock = clock
        self._sleep = sleep
        self._start = clock()
        self._count = 0

    async def wait(self) -> None:
        if not self._interval:
            return
        due = self._start + self._count * self._interval
        self._count += 1
        delay = due - self._clock()
        if delay > 0:
            await self._sleep(delay)


async def publish_all(
    senders: Sequence[Sender],
    messages: Iterable[tuple[str, Outgoing]],
    *,
    rate: float = 0.0,
    window: int = WINDOW,
    clock: Callable[[], float] | None = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> Tally:
    """Publish every (channel, message) over `senders`, `window` at a time on each."""
    clock = clock or asyncio.get_running_loop().time
    stream = iter(messages)
    tally = Tally()
    pacer = _Pacer(rate, clock, sleep)
    await asyncio.gather(
        *(_send(sender, stream, pacer, tally, clock) for sender in senders for _ in range(window))
    )
    return tally


async def _send(
    sender: Sender,
    stream: Iterator[tuple[str, Outgoing]],
    pacer: _Pacer,
    tally: Tally,
    clock: Callable[[], float],
) -> None:
    for channel, message in stream:  # shared: each message goes to whichever sender is free
        await pacer.wait()
        try:
            await sender.publish(message)
        except Exception as exc:  # counted and reported; the run goes on
            tally.failed += 1
            if len(tally.errors) < ERRORS_KEPT:
                tally.errors.append(f"not sent to {message.topic!r}: {exc}")
            continue
        tally.sent[channel] += 1
        tally.last = clock()
        if tally.first is None:
            tally.first = tally.last
