"""Test handlers without a broker: the service's real decoding, validation, routing, handlers,
lifespan and send methods, over an in-memory MQTT client. Settings come from keyword arguments,
then the defaults; neither `.env` nor the environment is read."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from pydantic import BaseModel
from pydantic_settings import BaseSettings

from .client import MqttClient
from .message import Incoming, Outgoing
from .metrics import Stats
from .publishing import encode, user_properties
from .service import Outcome, Service
from .settings import ServiceSettings
from .topics import matches

__all__ = ["Harness", "Outcome", "Payload", "Sent", "publish_once", "run"]

SV = TypeVar("SV", bound=Service[Any, Any, Any, Any])
C = TypeVar("C", bound=ServiceSettings)
A = TypeVar("A", bound=BaseSettings)
Payload = BaseModel | dict[str, Any] | list[Any] | bytes | str


@dataclass(frozen=True)
class Sent:
    """A message the service published."""

    topic: str
    payload: bytes
    qos: int
    retain: bool
    properties: dict[str, str] = field(default_factory=dict)
    content_type: str | None = None
    response_topic: str | None = None
    correlation_data: bytes | None = None

    def json(self) -> Any:
        return json.loads(self.payload)


class InMemory(MqttClient):
    """The MQTT client with the broker taken out: sends are recorded, nothing connects."""

    def __init__(self, service: Service[Any, Any, Any, Any]) -> None:
        super().__init__(service.mqtt.config, service.mqtt.subscriptions, service.handle_message)
        self.sent: list[Sent] = []

    @property
    def is_connected(self) -> bool:
        return True

    async def publish(self, message: Outgoing) -> None:
        self.sent.append(
            Sent(
                message.topic,
                message.payload,
                message.qos,
                message.retain,
                dict(message.user_properties),
                message.content_type,
                message.response_topic,
                message.correlation_data,
            )
        )


class Harness(Generic[SV]):
    def __init__(self, service: SV, client: InMemory) -> None:
        self.service = service
        self._client = client

    @property
    def stats(self) -> Stats:
        return self.service.stats

    async def publish(
        self,
        topic: str,
        payload: Payload,
        *,
        qos: int = 1,
        retain: bool = False,
        headers: BaseModel | dict[str, str] | None = None,
        response_topic: str | None = None,
        correlation_data: bytes | None = None,
    ) -> Outcome:
        """Deliver a message as the broker would; returns once it was handled or rejected (and
        what the handler passed to `ctx.ack_after` is done)."""
        if isinstance(payload, dict | list):
            body = json.dumps(payload).encode("utf-8")
        else:
            body = encode(payload)
        props = headers if isinstance(headers, dict) else user_properties(headers) or {}
        incoming = Incoming(topic, body, qos, retain, dict(props), response_topic, correlation_data)
        return await self.service.process(incoming)

    def sent(self, topic_filter: str | None = None) -> list[Sent]:
        """What the service published, optionally only on topics matching an MQTT filter."""
        if topic_filter is None:
            return list(self._client.sent)
        return [s for s in self._client.sent if matches(topic_filter, s.topic)]

    def clear(self) -> None:
        self._client.sent.clear()


@contextlib.asynccontextmanager
async def run(
    make: Callable[[C, A], SV], ours: type[C], yours: type[A], settings: Mapping[str, Any]
) -> AsyncIterator[Harness[SV]]:
    """The service with its lifespan running; `settings` set the generated ones (`ours`) and
    the user's (`yours`) by field name."""
    mine = {k: v for k, v in settings.items() if k in ours.model_fields}
    theirs = {k: v for k, v in settings.items() if k in yours.model_fields}
    unknown = set(settings) - set(mine) - set(theirs)
    if unknown:
        raise TypeError(f"unknown settings: {', '.join(sorted(unknown))}")
    # model_validate, not the constructor: neither `.env` nor the environment leaks into a test
    service = make(ours.model_validate(mine), yours.model_validate(theirs))
    client = InMemory(service)
    service.mqtt = client
    try:
        async with service.living():
            yield Harness(service, client)
    finally:
        await service.stop_background()


def publish_once(
    make: Callable[[C, A], SV],
    ours: type[C],
    yours: type[A],
    settings: Mapping[str, Any],
    topic: str,
    payload: Payload,
    headers: BaseModel | dict[str, str] | None = None,
) -> Outcome:
    """`run` for one message, from synchronous code (a plain test function): the service with
    its lifespan, the message delivered, the outcome returned. Not from a running event loop."""

    async def once() -> Outcome:
        async with run(make, ours, yours, settings) as harness:
            return await harness.publish(topic, payload, headers=headers)

    return asyncio.run(once())
