"""The runtime's pieces without a socket: ordered acknowledgements, the dispatcher's order,
concurrency and backpressure, the rate-limited log, outgoing topic checks."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from generator.runtime import Incoming, Outgoing, PublishError, RateLimitedLog, check_topic
from generator.runtime.acks import AckQueue
from generator.runtime.dispatch import BURST, YIELD_EVERY, Dispatcher
from generator.runtime.outbox import Outbox


def test_acks_go_out_in_arrival_order() -> None:
    sent: list[tuple[int, int]] = []
    queue = AckQueue(lambda packet_id, qos: sent.append((packet_id, qos)))
    first, second, third = queue.track(1, 1), queue.track(2, 2), queue.track(3, 1)
    third()
    second()
    assert sent == []  # the first is still being handled
    first()
    assert sent == [(1, 1), (2, 2), (3, 1)]
    assert len(queue) == 0


def test_acks_owed_on_a_closed_connection_are_dropped() -> None:
    sent: list[tuple[int, int]] = []
    queue = AckQueue(lambda packet_id, qos: sent.append((packet_id, qos)))
    ack = queue.track(7, 1)
    queue.close()
    ack()
    assert sent == []


class Recorder:
    def __init__(self, gate: asyncio.Event | None = None) -> None:
        self.handled: list[str] = []
        self.gate = gate
        self.paused = 0
        self.resumed = 0

    async def handle(self, incoming: Incoming) -> None:
        if self.gate is not None:
            await self.gate.wait()
        self.handled.append(incoming.payload.decode())

    def dispatcher(self, max_pending: int = 100, max_concurrent: int = 4) -> Dispatcher:
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


async def settle(dispatcher: Dispatcher) -> None:
    for _ in range(1000):
        if dispatcher.pending == 0:
            return
        await asyncio.sleep(0)
    raise AssertionError("the dispatcher did not settle")


def test_one_topic_in_order_and_acked_after_handling() -> None:
    async def scenario() -> None:
        recorder = Recorder()
        dispatcher = recorder.dispatcher()
        acked: list[str] = []
        for n in range(20):
            payload = str(n)
            dispatcher.submit(
                Incoming("t/a", payload.encode(), qos=1),
                lambda p=payload: acked.append(p),  # type: ignore[misc]
            )
        await settle(dispatcher)
        assert recorder.handled == [str(n) for n in range(20)]
        assert acked == recorder.handled

    asyncio.run(scenario())


def test_backpressure_pauses_at_the_mark_and_resumes_at_half() -> None:
    async def scenario() -> None:
        gate = asyncio.Event()
        recorder = Recorder(gate)
        dispatcher = recorder.dispatcher(max_pending=10)
        for n in range(10):
            dispatcher.submit(Incoming(f"t/{n % 3}", b"x"), None)
        assert recorder.paused == 1 and dispatcher.paused
        gate.set()
        await settle(dispatcher)
        assert recorder.resumed == 1 and not dispatcher.paused

    asyncio.run(scenario())


def test_connection_lost_forgets_unacknowledged_but_keeps_qos_0() -> None:
    async def scenario() -> None:
        gate = asyncio.Event()
        recorder = Recorder(gate)
        dispatcher = recorder.dispatcher()
        dispatcher.submit(Incoming("t/a", b"running", qos=1), lambda: None)
        await asyncio.sleep(0)  # the worker takes the first message
        dispatcher.submit(Incoming("t/a", b"qos1", qos=1), lambda: None)
        dispatcher.submit(Incoming("t/a", b"qos0"), None)
        assert dispatcher.connection_lost() == 1
        gate.set()
        await settle(dispatcher)
        assert recorder.handled == ["running", "qos0"]

    asyncio.run(scenario())


def test_drain_finishes_running_handlers_and_counts_what_is_left() -> None:
    async def scenario() -> None:
        gate = asyncio.Event()
        recorder = Recorder(gate)
        dispatcher = recorder.dispatcher()
        acked: list[int] = []
        for n in range(5):
            dispatcher.submit(Incoming("t/a", str(n).encode(), qos=1), lambda n=n: acked.append(n))  # type: ignore[misc]
        await asyncio.sleep(0)
        asyncio.get_running_loop().call_later(0.05, gate.set)
        left = await dispatcher.drain(timeout=5)
        assert recorder.handled == ["0"] and acked == [0]
        assert left == 4

    asyncio.run(scenario())


def test_drain_cancels_a_handler_past_the_timeout_without_acking() -> None:
    async def scenario() -> None:
        recorder = Recorder(asyncio.Event())  # never released
        dispatcher = recorder.dispatcher()
        acked: list[int] = []
        dispatcher.submit(Incoming("t/a", b"stuck", qos=1), lambda: acked.append(1))
        await asyncio.sleep(0)
        assert await dispatcher.drain(timeout=0.05) == 1
        assert acked == []

    asyncio.run(scenario())


class Gated:
    """A handler per message that waits until the test releases it, recording what runs."""

    def __init__(self) -> None:
        self.gates: dict[bytes, asyncio.Event] = {}
        self.handled: list[tuple[str, bytes]] = []
        self.running = 0
        self.most_running = 0

    async def handle(self, incoming: Incoming) -> None:
        self.running += 1
        self.most_running = max(self.most_running, self.running)
        try:
            await self.gates.setdefault(incoming.payload, asyncio.Event()).wait()
        finally:
            self.running -= 1
        self.handled.append((incoming.topic, incoming.payload))

    def release(self, payload: bytes) -> None:
        self.gates.setdefault(payload, asyncio.Event()).set()


async def turns(condition: Callable[[], bool], limit: int = 1000) -> None:
    """Let the loop run until `condition` holds, at most `limit` turns."""
    for _ in range(limit):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("the condition never held")


def dispatcher_for(
    handle: Callable[[Incoming], Awaitable[None]], max_concurrent: int, max_pending: int = 10_000
) -> Dispatcher:
    return Dispatcher(
        handle,
        max_concurrent=max_concurrent,
        max_pending=max_pending,
        pause=lambda: None,
        resume=lambda: None,
    )


def test_many_topics_each_in_order_and_every_ack_after_its_handler() -> None:
    async def scenario() -> None:
        recorder = Recorder()
        dispatcher = recorder.dispatcher(max_pending=10_000, max_concurrent=4)
        acked: list[str] = []
        for n in range(3000):
            payload = f"{n % 100}:{n}"
            dispatcher.submit(
                Incoming(f"devices/{n % 100}/telemetry", payload.encode(), qos=1),
                lambda p=payload: acked.append(p),  # type: ignore[misc]
            )
        await settle(dispatcher)
        assert sorted(acked) == sorted(recorder.handled) and len(acked) == 3000
        by_topic: dict[str, list[int]] = {}
        for entry in recorder.handled:
            topic, n = entry.split(":")
            by_topic.setdefault(topic, []).append(int(n))
        assert all(numbers == sorted(numbers) for numbers in by_topic.values())
        assert len(by_topic) == 100

    asyncio.run(scenario())


def test_a_message_costs_no_task_however_many_topics() -> None:
    async def scenario() -> None:
        created = 0
        loop = asyncio.get_running_loop()

        def counting(loop: asyncio.AbstractEventLoop, coro: Any) -> asyncio.Task[Any]:
            nonlocal created
            created += 1
            return asyncio.Task(coro, loop=loop)

        loop.set_task_factory(counting)
        recorder = Recorder()
        dispatcher = recorder.dispatcher(max_pending=10_000, max_concurrent=16)
        for _ in range(3):
            for device in range(1000):
                dispatcher.submit(Incoming(f"devices/{device}/telemetry", b"x"), None)
            await settle(dispatcher)
        assert len(recorder.handled) == 3000
        assert created <= 16

    asyncio.run(scenario())


def test_handlers_that_never_wait_still_let_the_event_loop_run() -> None:
    async def scenario() -> None:
        recorder = Recorder()
        dispatcher = recorder.dispatcher(max_pending=10_000, max_concurrent=1)
        for device in range(1000):
            dispatcher.submit(Incoming(f"devices/{device}/telemetry", b"x"), None)
        seen: list[int] = []
        asyncio.get_running_loop().call_soon(lambda: seen.append(len(recorder.handled)))
        await settle(dispatcher)
        assert len(seen) == 1 and 0 < seen[0] <= YIELD_EVERY + BURST < 1000

    asyncio.run(scenario())


def test_no_more_handlers_run_at_once_than_the_bound() -> None:
    async def scenario() -> None:
        gated = Gated()
        dispatcher = dispatcher_for(gated.handle, max_concurrent=3)
        for n in range(10):
            dispatcher.submit(Incoming(f"t/{n}", str(n).encode()), None)
        await turns(lambda: gated.running == 3)
        for _ in range(100):  # nothing else starts while the three wait
            await asyncio.sleep(0)
        assert gated.running == 3 and dispatcher.running == 3
        for n in range(10):
            gated.release(str(n).encode())
        await settle(dispatcher)
        assert gated.most_running == 3 and len(gated.handled) == 10

    asyncio.run(scenario())


def test_a_busy_topic_cannot_starve_another_even_with_one_handler_at_a_time() -> None:
    async def scenario() -> None:
        recorder = Recorder()
        dispatcher = recorder.dispatcher(max_pending=10_000, max_concurrent=1)
        for _ in range(2000):
            dispatcher.submit(Incoming("devices/chatty", b"chatty"), None)
        dispatcher.submit(Incoming("devices/quiet", b"quiet"), None)
        await settle(dispatcher)
        assert recorder.handled.index("quiet") <= BURST

    asyncio.run(scenario())


def test_backpressure_resumes_exactly_at_half() -> None:
    async def scenario() -> None:
        gated = Gated()
        pending_at_resume: list[int] = []
        dispatcher = Dispatcher(
            gated.handle,
            max_concurrent=2,
            max_pending=10,
            pause=lambda: None,
            resume=lambda: pending_at_resume.append(dispatcher.pending),
        )
        for n in range(10):
            dispatcher.submit(Incoming(f"t/{n % 2}", str(n).encode()), None)
        assert dispatcher.paused
        for n in range(10):
            gated.release(str(n).encode())
            await turns(lambda n=n: len(gated.handled) == n + 1)  # type: ignore[misc]
            assert dispatcher.paused == (n < 4)
        assert pending_at_resume == [5]

    asyncio.run(scenario())


def test_connection_lost_on_a_topic_waiting_for_a_worker_keeps_it_usable() -> None:
    async def scenario() -> None:
        gated = Gated()
        dispatcher = dispatcher_for(gated.handle, max_concurrent=1)
        dispatcher.submit(Incoming("t/a", b"a1", qos=1), lambda: None)
        await turns(lambda: gated.running == 1)
        dispatcher.submit(Incoming("t/b", b"b1", qos=1), lambda: None)  # waits for the worker
        assert dispatcher.connection_lost() == 1
        dispatcher.submit(Incoming("t/b", b"b2", qos=1), lambda: None)
        gated.release(b"a1")
        gated.release(b"b2")
        await settle(dispatcher)
        assert gated.handled == [("t/a", b"a1"), ("t/b", b"b2")]

    asyncio.run(scenario())


def test_a_worker_cancelled_from_outside_leaves_its_topic_to_another() -> None:
    async def scenario() -> None:
        gated = Gated()
        dispatcher = dispatcher_for(gated.handle, max_concurrent=1)
        acked: list[bytes] = []
        for payload in (b"first", b"second"):
            dispatcher.submit(Incoming("t/a", payload, qos=1), lambda p=payload: acked.append(p))  # type: ignore[misc]
        await turns(lambda: gated.running == 1)
        (worker,) = asyncio.all_tasks() - {asyncio.current_task()}
        worker.cancel()
        await asyncio.wait({worker}, timeout=5)
        gated.release(b"second")
        await turns(lambda: dispatcher.pending == 0)
        assert gated.handled == [("t/a", b"second")] and acked == [b"second"]
        assert dispatcher.unhandled == 1  # "first": not acknowledged, the broker sends it again

    asyncio.run(scenario())


def test_a_handler_that_raises_cancelled_error_itself_is_a_failure_not_a_stall() -> None:
    """Only drain() cancels a worker; a CancelledError a handler lets out on its own (it awaited
    something that was cancelled) must not end the worker and leave the message unacknowledged,
    or every later acknowledgement would wait behind it."""

    async def scenario() -> None:
        handled: list[bytes] = []

        async def handle(incoming: Incoming) -> None:
            if incoming.payload == b"cancelled":
                raise asyncio.CancelledError
            handled.append(incoming.payload)

        dispatcher = dispatcher_for(handle, max_concurrent=1)
        acked: list[bytes] = []
        for payload in (b"cancelled", b"next"):
            dispatcher.submit(Incoming("t/a", payload, qos=1), lambda p=payload: acked.append(p))  # type: ignore[misc]
        await settle(dispatcher)
        assert acked == [b"cancelled", b"next"] and handled == [b"next"]
        assert dispatcher.unhandled == 0

    asyncio.run(scenario())


def test_drain_cancels_stuck_handlers_counts_every_queue_and_leaves_no_task() -> None:
    async def scenario() -> None:
        gated = Gated()
        dispatcher = dispatcher_for(gated.handle, max_concurrent=2)
        acked: list[bytes] = []
        for payload in (b"a1", b"a2", b"b1", b"b2", b"c1"):
            topic = f"t/{payload[:1].decode()}"
            dispatcher.submit(Incoming(topic, payload, qos=1), lambda p=payload: acked.append(p))  # type: ignore[misc]
        await turns(lambda: gated.running == 2)  # a1 and b1 hang
        assert await dispatcher.drain(timeout=0.05) == 5
        assert acked == [] and dispatcher.pending == 0 and dispatcher.running == 0
        assert asyncio.all_tasks() == {asyncio.current_task()}

    asyncio.run(scenario())


def test_drain_ends_idle_workers() -> None:
    async def scenario() -> None:
        recorder = Recorder()
        dispatcher = recorder.dispatcher()
        for n in range(8):
            dispatcher.submit(Incoming(f"t/{n}", b"x"), None)
        await settle(dispatcher)
        assert len(asyncio.all_tasks()) > 1  # the workers wait for more
        assert await dispatcher.drain(timeout=5) == 0
        await turns(lambda: asyncio.all_tasks() == {asyncio.current_task()})

    asyncio.run(scenario())


def test_rate_limited_log_writes_a_burst_then_a_count(caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    log = RateLimitedLog(logging.getLogger("t"), burst=3, interval=10, clock=lambda: now[0])
    with caplog.at_level(logging.WARNING):
        for n in range(1000):
            log.log(logging.WARNING, "bad", "bad message %d", n)
        log.log(logging.WARNING, "other", "another reason")
        now[0] = 11.0
        log.log(logging.WARNING, "bad", "bad message again")
    lines = [record.getMessage() for record in caplog.records]
    assert lines[:3] == ["bad message 0", "bad message 1", "bad message 2"]
    assert lines[3] == "another reason"
    assert lines[4] == "997 more 'bad' message(s) not logged in the last 11 s"
    assert lines[5] == "bad message again"
    assert len(lines) == 6


@pytest.mark.parametrize(
    "topic",
    ["", "a/+", "a/#", "a\nb", "a\x00b", "a\x7fb", "x" * 65_536],
    ids=["empty", "plus", "hash", "newline", "nul", "del", "too long"],
)
def test_outgoing_topics_the_broker_would_drop_us_for_are_refused(topic: str) -> None:
    with pytest.raises(PublishError):
        check_topic(topic)


def test_ordinary_topics_pass() -> None:
    check_topic("devices/ü-1/telemetry")
    check_topic("x" * 65_535)


def test_backpressure_pauses_at_the_bytes_mark_and_resumes_when_both_are_at_half() -> None:
    async def scenario() -> None:
        gate = asyncio.Event()
        recorder = Recorder(gate)
        dispatcher = Dispatcher(
            recorder.handle,
            max_concurrent=1,
            max_pending=100,
            max_pending_bytes=1000,
            pause=recorder.pause,
            resume=recorder.resume,
        )
        for n in range(3):
            dispatcher.submit(Incoming(f"t/{n}", b"x" * 400), None)
        assert recorder.paused == 1 and dispatcher.pending_bytes == 1200
        gate.set()
        await settle(dispatcher)
        assert recorder.resumed == 1 and dispatcher.pending_bytes == 0

    asyncio.run(scenario())


def test_connection_lost_gives_back_the_bytes_of_what_it_forgets() -> None:
    async def scenario() -> None:
        recorder = Recorder(asyncio.Event())
        dispatcher = recorder.dispatcher()
        dispatcher.submit(Incoming("t/a", b"12345", qos=1), lambda: None)
        await asyncio.sleep(0)  # running: kept
        dispatcher.submit(Incoming("t/a", b"123", qos=1), lambda: None)
        assert dispatcher.connection_lost() == 1
        assert dispatcher.pending_bytes == 5

    asyncio.run(scenario())


def test_the_outbox_keeps_what_went_out_and_forgets_what_did_not_when_its_sender_gives_up() -> None:
    async def scenario() -> None:
        outbox = Outbox()
        sent_id, sent = outbox.add(Outgoing("t", b"x", qos=1))
        unsent_id, _ = outbox.add(Outgoing("t", b"y", qos=1))
        sent.sent = True
        outbox.abandon(sent_id)
        outbox.abandon(unsent_id)
        assert list(outbox.flights) == [sent_id]
        assert outbox.new_id() not in (sent_id,)
        assert outbox.fail_sent(PublishError("gone")) == 1
        assert sent.done.done() and not outbox.flights

    asyncio.run(scenario())
