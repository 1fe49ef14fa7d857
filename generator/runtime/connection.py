"""What a protocol engine offers the client: one live connection to the broker."""

from __future__ import annotations

import abc
import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from .acks import Ack
from .message import Incoming, Outgoing

Deliver = Callable[[Incoming, "Ack | None"], None]
"""Called for every received message, with the callable that acknowledges it (None for QoS 0)."""


@dataclass
class SessionState:
    """What outlives one connection of a persistent session: the QoS 2 messages already handled
    and acknowledged with PUBREC, so a redelivered copy is not handled twice."""

    released: set[int] = field(default_factory=set)


class Connection(abc.ABC):
    session_present: bool = False
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
        """Stop reading the socket: the broker then holds the backlog."""

    @abc.abstractmethod
    def resume_reading(self) -> None: ...

    @abc.abstractmethod
    async def disconnect(self) -> None:
        """Say goodbye (DISCONNECT) and close; unacknowledged messages stay with the broker."""
