"""The runtime's pieces without a socket: ordered acknowledgements, the dispatcher's order,
concurrency and backpressure, the rate-limited log, outgoing topic checks."""

from __future__ import annotations

import asyncio
import logging

import pytest

from generator.runtime import Incoming, Outgoing, PublishError, RateLimitedLog, check_topic
from generator.runtime.acks import AckQueue
from generator.runtime.dispatch import Dispatcher
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
