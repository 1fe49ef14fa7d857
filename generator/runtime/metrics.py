"""Counters of what the service did, kept as plain numbers on the message path and turned into
Prometheus metrics only when scraped, so measuring costs the handlers next to nothing."""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
REASONS = ("invalid_json", "invalid_payload", "unknown_topic", "invalid_parameter", "too_large")


@dataclass
class ChannelCounts:
    received: int = 0
    handled: int = 0
    handler_errors: int = 0
    retained_clears: int = 0  # empty retained messages: someone cleared one, nothing to handle
    sent: int = 0
    publish_failures: int = 0
    rejected: dict[str, int] = field(default_factory=lambda: dict.fromkeys(REASONS, 0))
    buckets: list[int] = field(default_factory=lambda: [0] * (len(BUCKETS) + 1))
    duration_sum: float = 0.0

    def observe(self, seconds: float) -> None:
        self.buckets[bisect_left(BUCKETS, seconds)] += 1
        self.duration_sum += seconds


@dataclass(frozen=True)
class Stats:
    """The totals over every channel: a snapshot, for logs and the heartbeat."""

    received: int = 0
    handled: int = 0
    invalid_json: int = 0
    invalid_payload: int = 0
    unknown_topic: int = 0
    invalid_parameter: int = 0  # a channel's address, but a parameter breaks its enum or pattern
    too_large: int = 0
    handler_errors: int = 0
    retained_clears: int = 0

    @property
    def rejected(self) -> int:
        return sum(getattr(self, reason) for reason in REASONS)


@dataclass
class Gauges:
    """Read at scrape time from the live runtime."""

    connected: Callable[[], bool]
    connections: Callable[[], int]
    in_flight: Callable[[], int]
    pending: Callable[[], int]
    awaiting_ack: Callable[[], int]


class Metrics:
    def __init__(self) -> None:
        self.channels: dict[str, ChannelCounts] = {}
        self.gauges: Gauges | None = None

    def channel(self, name: str) -> ChannelCounts:
        counts = self.channels.get(name)
        if counts is None:
            counts = self.channels[name] = ChannelCounts()
        return counts

    def totals(self) -> Stats:
        """The counters summed over channels (the only counters there are)."""
        counts = list(self.channels.values())
        rejected = {r: sum(c.rejected[r] for c in counts) for r in REASONS}
        return Stats(
            received=sum(c.received for c in counts),
            handled=sum(c.handled for c in counts),
            handler_errors=sum(c.handler_errors for c in counts),
            retained_clears=sum(c.retained_clears for c in counts),
            **rejected,
        )

    def collect(self) -> Iterator[Metric]:
        """The prometheus-client collector protocol."""
        yield from self._counters()
        yield self._durations()
        if self.gauges is not None:
            g = self.gauges
            yield _gauge("mqtt_connected", "1 while connected and subscribed", int(g.connected()))
            reconnects = CounterMetricFamily("mqtt_reconnects", "Connections after the first")
            reconnects.add_metric([], max(0, g.connections() - 1))
            yield reconnects
            yield _gauge("messages_in_flight", "Messages being handled now", g.in_flight())
            yield _gauge("messages_pending", "Received messages not yet handled", g.pending())
            yield _gauge(
                "messages_awaiting_ack",
                "Messages handled, acknowledged once what the handler passed to ack_after is done",
                g.awaiting_ack(),
            )

    def _counters(self) -> Iterator[Metric]:
        names = sorted(self.channels)
        for metric, text in (
            ("received", "Messages received"),
            ("handled", "Messages whose handler returned"),
            ("handler_errors", "Messages whose handler raised"),
            (
                "retained_clears",
                "Empty retained messages (a retained message cleared): not handled",
            ),
            ("sent", "Messages sent"),
            ("publish_failures", "Messages that could not be sent"),
        ):
            family = CounterMetricFamily(f"messages_{metric}", text, labels=["channel"])
            for name in names:
                family.add_metric([name], getattr(self.channels[name], metric))
            yield family
        rejected = CounterMetricFamily(
            "messages_rejected", "Messages rejected, by reason", labels=["channel", "reason"]
        )
        for name in names:
            for reason, count in self.channels[name].rejected.items():
                rejected.add_metric([name, reason], count)
        yield rejected

    def _durations(self) -> Metric:
        family = HistogramMetricFamily(
            "handler_duration_seconds", "Time spent in handlers", labels=["channel"]
        )
        for name in sorted(self.channels):
            counts = self.channels[name]
            cumulative, buckets = 0, []
            for bound, count in zip((*map(str, BUCKETS), "+Inf"), counts.buckets, strict=True):
                cumulative += count
                buckets.append((bound, cumulative))
            family.add_metric([name], buckets, counts.duration_sum)
        return family


def _gauge(name: str, text: str, value: float) -> Metric:
    family = GaugeMetricFamily(name, text)
    family.add_metric([], value)
    return family
