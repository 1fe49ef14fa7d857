"""What a handler receives besides the message: the publisher to send with, the state the
lifespan made, the settings, a logger, and the message as it arrived. Not the whole service."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import Any, Generic, TypeVar

from .message import Incoming

P = TypeVar("P")  # the generated Publisher
S = TypeVar("S")  # the lifespan's State
C = TypeVar("C")  # the generated Settings
A = TypeVar("A")  # the user's AppSettings

_HANDLERS = logging.getLogger(f"{(__package__ or '').rpartition('.')[0]}.handlers")


class Context(Generic[P, S, C, A]):
    """One per message; handlers read it, the service made it."""

    __slots__ = (
        "acknowledge_after",
        "app_settings",
        "channel",
        "headers",
        "message",
        "publisher",
        "settings",
        "state",
    )

    def __init__(
        self,
        publisher: P,
        state: S,
        settings: C,
        app_settings: A,
        message: Incoming,
        channel: str = "",
        headers: Any = None,
    ) -> None:
        self.publisher = publisher  # typed send methods, one per send operation
        self.state = state  # what `lifecycle.lifespan` yielded
        self.settings = settings
        self.app_settings = app_settings
        self.message = message  # as received: topic, payload bytes, qos, MQTT 5 properties
        self.channel = channel
        self.headers = headers  # the message's headers model, when the document declares headers
        self.acknowledge_after: Awaitable[object] | None = None  # set by ack_after()

    def ack_after(self, done: Awaitable[object]) -> None:
        """Acknowledge the message once `done` is (a database commit, say) rather than when the
        handler returns: the handler returns at once and the next message is handled meanwhile,
        so writes can be batched. Until then the message counts as pending; if the service
        stops first, it is not acknowledged and the broker sends it again. Called again, the
        acknowledgement waits for every one, even once one of them has failed."""
        before = self.acknowledge_after
        if before is None:
            self.acknowledge_after = done
        else:
            self.acknowledge_after = _both(before, done)

    @property
    def topic(self) -> str:
        return self.message.topic

    @property
    def retain(self) -> bool:
        return self.message.retain

    @property
    def user_properties(self) -> dict[str, str]:
        """MQTT 5 user properties, as received."""
        return self.message.user_properties

    @property
    def logger(self) -> logging.LoggerAdapter[logging.Logger]:
        """The handlers' logger; each record carries the message's topic and channel."""
        return logging.LoggerAdapter(_HANDLERS, {"topic": self.topic, "channel": self.channel})


async def _both(first: Awaitable[object], second: Awaitable[object]) -> None:
    """Wait for both, then fail with the first failure, so that it is logged like one."""
    results = await asyncio.gather(first, second, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result
