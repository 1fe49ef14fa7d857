"""Sending from a script, a cron job or a test: a publisher on its own connection, without the
service's routes, handlers or lifespan."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import TypeVar

from .client import MqttClient
from .message import Incoming, Outgoing
from .publishing import PublisherBase
from .settings import ServiceSettings, client_config

P = TypeVar("P", bound=PublisherBase)


class _Sender:
    """The publisher's transport: the connection's client, no metrics."""

    def __init__(self, client: MqttClient) -> None:
        self._client = client

    async def publish(self, message: Outgoing, channel: str = "") -> None:
        await self._client.publish(message)


async def _nothing(message: Incoming) -> None:
    return None


@contextlib.asynccontextmanager
async def connect(
    publisher: type[P], settings: ServiceSettings, client_id: str | None = None
) -> AsyncIterator[P]:
    """A publisher connected to the broker in the settings. Its client id is its own (the
    service's plus `-send-` and 8 random hex digits unless given: two scripts started at once,
    in one process or as pid 1 of two containers, must not push each other off), with a clean
    session that ends with it and no will, so a running service keeps its connection. A send
    waits for the connection and, at QoS 1 and 2, for the broker's acknowledgement (up to
    PUBLISH_TIMEOUT, then `PublishError`). It receives nothing: the `*_and_wait` requests need
    the service."""
    config = client_config(settings, ())
    own = client_id or f"{config.client_id}-send-{secrets.token_hex(4)}"
    config = replace(config, client_id=own, clean_start=True, session_expiry=0, will=None)
    client = MqttClient(config, [], _nothing)
    serving = asyncio.create_task(client.serve(), name="mqtt sender")
    try:
        yield publisher(_Sender(client))
    finally:
        await client.stop(settings.shutdown_timeout)
        await serving
