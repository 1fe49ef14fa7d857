"""Deferred acknowledgement without a socket: a handler hands back an awaitable (a commit) and
the dispatcher goes on to the next message while that message's acknowledgement waits for it."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from generator.runtime import Incoming
from generator.runtime.acks import AckQueue
from generator.runtime.context import Context
from generator.runtime.dispatch import Dispatcher


class Committer:
    """A handler that queues each message for a commit the test performs, like the example's
    store: it returns the message's future instead of awaiting it."""

    def __init__(self) -> None:
        self.handled: list[bytes] = []
        self.waiting: list[asyncio.Future[None]] = []  # in the order handled
        self.by_payload: dict[bytes, asyncio.Future[None]] = {}
        self.paused = self.resumed = 0

    async def handle(self, incoming: Incoming) -> asyncio.Future[None]:
        self.handled.append(incoming.payload)
        future = asyncio.get_running_loop().create_future()
        self.waiting.append(future)
        self.by_payload[incoming.payload] = future
        return future

    def commit(self, count: int | None = None, error: BaseException | None = None) -> None:
        batch, self.waiting = self.waiting[:count], self.waiting[len(self.waiting[:count]) :]
        for future in batch:
            if error is None:
                future.set_result(None)
            else:
                future.set_exception(error)

    def dispatcher(self, max_pending: int = 1000, max_concurrent: int = 2) -> Dispatcher:
        return Dispatcher(
            self.handle,
            max_concurrent=max_concurrent,
            max_pending=max_pending,
            pause=self.pause,
            resume=self.resume,
        )

    def pause(self) -> None:
        self.paused += 1

    def resume(self) -> None:
        self.resumed += 1


async def turns(condition: object, limit: int = 1000) -> None:
    for _ in range(limit):
        if callable(condition) and condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("the condition never held")


def submit_many(dispatcher: Dispatcher, acks: AckQueue, count: int, topics: int) -> None:
    for n in range(count):
        incoming = Incoming(f"devices/d{n % topics}/telemetry", str(n).encode(), qos=1)
        dispatcher.submit(incoming, acks.track(n + 1, 1))


def test_workers_go_on_while_acks_wait_for_the_commit_then_go_out_in_order() -> None:
    async def scenario() -> None:
        committer = Committer()
        dispatcher = committer.dispatcher(max_concurrent=2)
        sent: list[int] = []
        acks = AckQueue(lambda packet_id, _qos: sent.append(packet_id))
        submit_many(dispatcher, acks, 300, topics=50)
        # two workers handle all 300 while nothing is committed: a batch can be 300 rows
        await turns(lambda: len(committer.handled) == 300)
        assert sent == [] and dispatcher.running == 0
        assert dispatcher.pending == 300 and dispatcher.deferred == 300
        committed = {int(payload) + 1 for payload in committer.handled[:100]}
        committer.commit(100)
        # acknowledged: every message up to the first one not committed, none after it
        expected = next(n for n in range(1, 302) if n not in committed) - 1
        await turns(lambda: len(sent) == expected)
        assert sent == list(range(1, expected + 1)) and expected > 0
        committer.commit()
        await turns(lambda: dispatcher.pending == 0)
        assert sent == list(range(1, 301)) and dispatcher.deferred == 0

    asyncio.run(scenario())


def test_a_later_commit_waits_for_an_earlier_one_to_be_acknowledged() -> None:
    async def scenario() -> None:
        committer = Committer()
        dispatcher = committer.dispatcher()
        sent: list[int] = []
        acks = AckQueue(lambda packet_id, _qos: sent.append(packet_id))
        submit_many(dispatcher, acks, 3, topics=3)
        await turns(lambda: len(committer.waiting) == 3)
        first, second, third = (committer.by_payload[str(n).encode()] for n in range(3))
        third.set_result(None)
        second.set_result(None)
        for _ in range(10):
            await asyncio.sleep(0)
        assert sent == []  # the first message is not committed: nothing may go out before it
        first.set_result(None)
        await turns(lambda: len(sent) == 3)
        assert sent == [1, 2, 3]

    asyncio.run(scenario())


def test_messages_awaiting_their_commit_count_toward_the_pause_mark() -> None:
    async def scenario() -> None:
        committer = Committer()
        dispatcher = committer.dispatcher(max_pending=100)
        acks = AckQueue(lambda _packet_id, _qos: None)
        submit_many(dispatcher, acks, 100, topics=10)
        await turns(lambda: len(committer.handled) == 100)
        assert dispatcher.paused and committer.paused == 1  # all handled, none committed
        committer.commit(49)
        await turns(lambda: dispatcher.pending == 51)
        assert dispatcher.paused  # 51 still wait: above half
        committer.commit(1)
        await turns(lambda: not dispatcher.paused)
        assert committer.resumed == 1 and dispatcher.pending == 50

    asyncio.run(scenario())


def test_a_failed_commit_is_logged_and_acknowledged_in_its_turn(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def scenario() -> None:
        committer = Committer()
        dispatcher = committer.dispatcher()
        sent: list[int] = []
        acks = AckQueue(lambda packet_id, _qos: sent.append(packet_id))
        submit_many(dispatcher, acks, 2, topics=1)
        await turns(lambda: len(committer.waiting) == 2)
        committer.commit(1, error=ValueError("row refused"))
        committer.commit()
        await turns(lambda: dispatcher.pending == 0)
        assert sent == [1, 2]

    with caplog.at_level(logging.ERROR):
        asyncio.run(scenario())
    assert "row refused" in caplog.text


def test_drain_waits_for_commits_and_leaves_the_uncommitted_unacknowledged() -> None:
    async def scenario() -> None:
        committer = Committer()
        dispatcher = committer.dispatcher()
        sent: list[int] = []
        acks = AckQueue(lambda packet_id, _qos: sent.append(packet_id))
        submit_many(dispatcher, acks, 4, topics=2)
        await turns(lambda: len(committer.waiting) == 4)
        first, second, third, fourth = (committer.by_payload[str(n).encode()] for n in range(4))
        loop = asyncio.get_running_loop()
        loop.call_later(0.02, first.set_result, None)  # committed during the drain
        loop.call_later(0.02, third.set_result, None)
        left = await dispatcher.drain(timeout=0.2)
        assert sent == [1] and left == 2  # the third waits behind the second, never committed
        assert dispatcher.pending == 0 and dispatcher.pending_bytes == 0
        second.set_result(None)  # too late: the broker will send it again, as the fourth
        fourth.set_result(None)
        for _ in range(10):
            await asyncio.sleep(0)
        assert sent == [1] and dispatcher.pending == 0

    asyncio.run(scenario())


def test_a_coroutine_handed_back_and_unfinished_at_the_drain_deadline_is_cancelled() -> None:
    """A handler may hand back a coroutine (`ctx.ack_after(commit())`): the dispatcher runs it
    as a task of its own, and ends it when the drain's deadline passes, so it cannot write after
    the lifespan closed what it writes to. The message is left for the broker, as before."""

    async def scenario() -> None:
        never = asyncio.Event()
        ended: list[str] = []

        async def commit() -> None:
            try:
                await never.wait()
            except asyncio.CancelledError:
                ended.append("cancelled")
                raise

        async def handle(incoming: Incoming) -> Any:
            return commit()

        dispatcher = Dispatcher(
            handle, max_concurrent=1, max_pending=10, pause=lambda: None, resume=lambda: None
        )
        sent: list[int] = []
        acks = AckQueue(lambda packet_id, _qos: sent.append(packet_id))
        submit_many(dispatcher, acks, 1, topics=1)
        await turns(lambda: dispatcher.deferred == 1)
        assert await dispatcher.drain(timeout=0.05) == 1
        await turns(lambda: ended == ["cancelled"])
        assert sent == []

    asyncio.run(scenario())


def test_a_handler_returning_none_is_acknowledged_at_once_as_before() -> None:
    async def scenario() -> None:
        handled: list[bytes] = []

        async def handle(incoming: Incoming) -> None:
            handled.append(incoming.payload)

        dispatcher = Dispatcher(
            handle, max_concurrent=1, max_pending=10, pause=lambda: None, resume=lambda: None
        )
        sent: list[int] = []
        acks = AckQueue(lambda packet_id, _qos: sent.append(packet_id))
        submit_many(dispatcher, acks, 5, topics=1)
        await turns(lambda: len(sent) == 5)
        assert dispatcher.deferred == 0 and dispatcher.pending == 0

    asyncio.run(scenario())


def test_ack_after_twice_waits_for_both_then_fails_with_the_first_failure() -> None:
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        ctx: Context[None, None, None, None] = Context(None, None, None, None, Incoming("t", b""))
        first, second = loop.create_future(), loop.create_future()
        ctx.ack_after(first)
        ctx.ack_after(second)
        assert ctx.acknowledge_after is not None
        both = asyncio.ensure_future(ctx.acknowledge_after)
        first.set_exception(ValueError("refused"))
        for _ in range(10):
            await asyncio.sleep(0)
        assert not both.done()  # the second commit is still to come: no acknowledgement yet
        second.set_result(None)
        with pytest.raises(ValueError, match="refused"):  # then fails, to be logged as one
            await asyncio.wait_for(both, 1)

    asyncio.run(scenario())


def test_something_not_awaitable_handed_back_is_logged_and_acknowledged_at_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def scenario() -> None:
        async def handle(incoming: Incoming) -> object:
            return 42  # not awaitable: a mistake the type checker would catch

        dispatcher = Dispatcher(
            handle,  # type: ignore[arg-type]
            max_concurrent=1,
            max_pending=10,
            pause=lambda: None,
            resume=lambda: None,
        )
        sent: list[int] = []
        acks = AckQueue(lambda packet_id, _qos: sent.append(packet_id))
        submit_many(dispatcher, acks, 3, topics=1)
        await turns(lambda: len(sent) == 3)
        assert dispatcher.pending == 0 and dispatcher.deferred == 0

    with caplog.at_level(logging.ERROR):
        asyncio.run(scenario())
    assert "not awaitable" in caplog.text
