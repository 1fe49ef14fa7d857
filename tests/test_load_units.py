"""The simulator's sending engine (`_runtime/load.py`) without a socket: every message sent once,
many in flight per connection but never more than the window, a steady rate on a fake clock,
failures counted without stopping the run."""

from __future__ import annotations

import asyncio

from generator.runtime import Outgoing, PublishError
from generator.runtime.load import ERRORS_KEPT, publish_all


def stream(count: int) -> list[tuple[str, Outgoing]]:
    return [
        (f"channel-{n % 2}", Outgoing(f"devices/{n}/telemetry", str(n).encode()))
        for n in range(count)
    ]


class Held:
    """A connection whose publishes wait until the test lets them all through."""

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.in_flight = 0
        self.most_in_flight = 0
        self.sent: list[bytes] = []

    async def publish(self, message: Outgoing) -> None:
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        await self.gate.wait()
        self.in_flight -= 1
        self.sent.append(message.payload)


def test_every_message_once_spread_over_connections_at_most_a_window_in_flight_each() -> None:
    async def scenario() -> None:
        connections = [Held(), Held()]
        running = asyncio.create_task(publish_all(connections, stream(1000), window=8))
        for _ in range(1000):
            if all(c.in_flight == 8 for c in connections):
                break
            await asyncio.sleep(0)
        assert [c.in_flight for c in connections] == [8, 8]  # pipelined, and bounded
        for connection in connections:
            connection.gate.set()
        tally = await asyncio.wait_for(running, 10)
        sent = sorted(int(p) for c in connections for p in c.sent)
        assert sent == list(range(1000))
        assert all(c.most_in_flight == 8 and c.sent for c in connections)
        assert tally.sent == {"channel-0": 500, "channel-1": 500} and tally.failed == 0

    asyncio.run(scenario())


def test_a_steady_rate_on_the_clock_and_the_rate_achieved() -> None:
    async def scenario() -> None:
        now = [100.0]
        stamps: list[float] = []

        async def fake_sleep(seconds: float) -> None:
            now[0] += seconds
            await asyncio.sleep(0)

        class Instant:
            async def publish(self, message: Outgoing) -> None:
                stamps.append(now[0])

        tally = await publish_all(
            [Instant()], stream(50), rate=10.0, window=1, clock=lambda: now[0], sleep=fake_sleep
        )
        assert len(stamps) == 50
        for index, stamp in enumerate(stamps):
            assert abs(stamp - (100.0 + index / 10)) < 1e-9  # never early, never bunched
        assert abs(tally.rate - 10.0) < 1e-9

    asyncio.run(scenario())


def test_failures_are_counted_described_up_to_a_limit_and_the_rest_is_sent() -> None:
    async def scenario() -> None:
        delivered: list[str] = []

        class Flaky:
            async def publish(self, message: Outgoing) -> None:
                if int(message.payload) % 3 == 0:
                    raise PublishError("the broker refused the message")
                delivered.append(message.topic)

        tally = await publish_all([Flaky()], stream(90), window=5)
        assert tally.failed == 30 and sum(tally.sent.values()) == 60 == len(delivered)
        assert len(tally.errors) == ERRORS_KEPT
        assert "the broker refused the message" in tally.errors[0]

    asyncio.run(scenario())
