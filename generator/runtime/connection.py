"""What a protocol engine offers the client: one live connection to the broker."""

from __future__ import annotations

import abc
import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from .acks import Ack
from .config import ClientConfig
from .message import Incoming, Outgoing
from .outbox import Outbox

Deliver = Callable[[Incoming, "Ack | None"], None]
"""Called for every received message, with the callable that acknowledges it (None for QoS 0)."""

TooLarge = Callable[[str, int], None]
"""Called with the topic and size of a message dropped while reading it: over the Maximum Packet
Size announced, which the broker should have kept to itself."""


@dataclass
class SessionState:
    """What outlives one connection of a persistent session: the QoS 2 messages already handled
    and acknowledged with PUBREC, so a redelivered copy is not handled twice; the outgoing QoS 1/2
    messages not yet acknowledged, with their packet ids; and what a protocol engine keeps of its
    own (paho's client under MQTT 3.1.1, which resends its messages itself)."""

    released: set[int] = field(default_factory=set)
    outbox: Outbox = field(default_factory=Outbox)
    engine: object | None = None


def holding_too_much(config: ClientConfig, count: int, size: int) -> bool:
    """While delivery is paused an engine holds what still arrives, reading on for the
    acknowledgements of our own sends: up to the pending marks' worth again, then it pauses the
    socket too. Memory stays within twice the marks."""
    return count > config.max_pending or size > config.max_pending_bytes


class Connection(abc.ABC):
    session_present: bool = False
    resent = 0  # unacknowledged sends of the resumed session sent again on connecting
    closed: asyncio.Future[BaseException]
    """Done, with the cause, when the connection ended for any reason."""

    @abc.abstractmethod
    async def subscribe(self, subscriptions: Sequence[tuple[str, int]]) -> list[int]:
        """Subscribe and return the granted QoS per filter; raises MqttError if refused."""

    @abc.abstractmethod
    async def publish(self, message: Outgoing) -> None:
        """Return once the broker has the message (PUBACK/PUBCOMP for QoS 1/2)."""

    @abc.abstractmethod
    def pause_reading(self) -> None:
        """Stop delivering messages: the broker then holds the backlog. What else arrives is
        still read (the acknowledgements a handler's send waits for), holding the messages that
        come with it (see `holding_too_much`)."""

    @abc.abstractmethod
    def resume_reading(self) -> None: ...

    @property
    @abc.abstractmethod
    def unacknowledged(self) -> int:
        """Received QoS 1/2 messages not acknowledged yet: the broker sends them again."""

    @abc.abstractmethod
    async def disconnect(self) -> None:
        """Say goodbye (DISCONNECT) and close; unacknowledged messages stay with the broker."""
