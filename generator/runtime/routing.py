"""The route table's machinery: what a route is, how payloads decode, which filters to subscribe
to, and how a topic finds its route. The generated `routes` module holds the table's data."""

from __future__ import annotations

import inspect
import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Generic, NamedTuple, TypeVar

from .replies import Where
from .topics import TopicTemplate

T = TypeVar("T")


@dataclass(frozen=True)
class Answer:
    """How a handler's return value goes back to the requester: to the request's MQTT 5
    Response Topic when it has one, else to the topic a request field names (`address`), else
    to the reply channel's address (`topic`) with the request's parameters."""

    qos: int
    request_id: Where = None
    reply_id: Where = None
    address: Where = None
    topic: TopicTemplate | None = None
    channel: str = ""


@dataclass(frozen=True)
class Handler:
    """The user's handler module of a route, and the `handle` the channel needs: checked before
    the service starts, so a handler the document no longer fits stops it with a clear line
    instead of failing on every message."""

    module: ModuleType
    signature: str
    keywords: tuple[str, ...] = ()

    @property
    def path(self) -> str:
        return self.module.__name__.replace(".", "/") + ".py"

    def problem(self) -> str | None:
        """Why the module's `handle` cannot take what the route passes; None when it can."""
        handle = getattr(self.module, "handle", None)
        if handle is None:
            return "it has no function handle()"
        if not inspect.iscoroutinefunction(handle):
            return "handle() is not `async def`"
        try:
            inspect.signature(handle).bind(None, None, **dict.fromkeys(self.keywords))
        except TypeError as exc:
            return f"handle() does not fit: {exc}"
        return None


@dataclass(frozen=True)
class Route(Generic[T]):
    """One channel the service receives on. `call` runs the handler (returning the reply to
    send, for an `answer` route); a route that `resolves` carries replies to this instance's
    own requests (`correlation` says where their id is), handed to the request waiting."""

    channel: str
    topic: TopicTemplate
    qos: int
    decode: Callable[[bytes], T]
    call: Callable[[T, Any, Mapping[str, str]], Awaitable[Any]]
    headers: Callable[[Mapping[str, str]], Any] | None = None
    answer: Answer | None = None
    resolves: bool = False
    correlation: Where = None
    handler: Handler | None = None

    @property
    def shared(self) -> bool:
        """Replies to this instance's own requests never go through a shared group."""
        return not self.resolves


class Subscription(NamedTuple):
    topic_filter: str
    qos: int
    shared: bool  # may go through MQTT_SHARED_GROUP


def subscriptions_of(routes: tuple[Route[Any], ...]) -> tuple[Subscription, ...]:
    """One subscription per topic filter, at the highest QoS any of its channels asks for;
    shareable only if none of its channels carries replies to this instance's requests."""
    found: dict[str, Subscription] = {}
    for route in routes:
        seen = found.get(route.topic.topic_filter)
        qos = max(seen.qos, route.qos) if seen else route.qos
        shared = seen.shared and route.shared if seen else route.shared
        found[route.topic.topic_filter] = Subscription(route.topic.topic_filter, qos, shared)
    return tuple(found.values())


def route_for(
    routes: tuple[Route[Any], ...], topic: str
) -> tuple[Route[Any], dict[str, str]] | None:
    """The first route whose address is exactly this topic (the table is most specific
    first), with the parameter values."""
    for route in routes:
        params = route.topic.match(topic)
        if params is not None:
            return route, params
    return None


def misfits(routes: tuple[Route[Any], ...]) -> list[str]:
    """One line per handler that no longer fits its channel: its file, why, what it needs."""
    found = []
    for route in routes:
        problem = route.handler.problem() if route.handler is not None else None
        if route.handler is not None and problem is not None:
            found.append(
                f"{route.handler.path}: {problem}; channel {route.topic.template} needs "
                f"`{route.handler.signature}`"
            )
    return found


async def no_handler(message: Any, ctx: Any, params: Mapping[str, str]) -> None:
    """The call of a route that resolves replies: the service hands them over itself."""
    return None


def by_tag(
    prop: str, choices: Mapping[str, Callable[[Any], Any]], fallback: Callable[[bytes], Any]
) -> Callable[[bytes], Any]:
    """Decode by the discriminator property's value; a missing or unknown value: the fallback
    (the first model that validates)."""

    def decode(payload: bytes) -> Any:
        try:
            data = json.loads(payload)
        except ValueError:
            return fallback(payload)
        choose = choices.get(str(data.get(prop))) if isinstance(data, dict) else None
        return choose(data) if choose is not None else fallback(payload)

    return decode


def raw_bytes(payload: bytes) -> bytes:
    return payload


def utf8_text(payload: bytes) -> str:
    return payload.decode("utf-8")
