"""Sending: the base of the generated `Publisher`, whose typed methods build and check the topic
and then call `publish` here."""

from __future__ import annotations

import json
import logging
from typing import Any, Protocol

from pydantic import BaseModel

from .message import Outgoing
from .replies import Requests, Where, correlate

logger = logging.getLogger(__name__)


class Transport(Protocol):
    async def publish(self, message: Outgoing, channel: str = "") -> None: ...


def user_properties(headers: BaseModel | None) -> dict[str, str] | None:
    """Headers as MQTT 5 user properties: wire names, strings as they are, the rest as JSON."""
    if headers is None:
        return None
    values = headers.model_dump(mode="json", by_alias=True, exclude_none=True)
    return {k: v if isinstance(v, str) else json.dumps(v) for k, v in values.items()}


def encode(payload: BaseModel | bytes | str) -> bytes:
    """JSON with the wire (alias) names; optional fields nobody set are left out (see
    `WireModel`), nulls that were set are sent; bytes and str as they are."""
    if isinstance(payload, BaseModel):
        return payload.model_dump_json(by_alias=True).encode("utf-8")
    if isinstance(payload, str):
        return payload.encode("utf-8")
    return payload


class PublisherBase:
    """Sends through a transport (the service's MQTT client, counted per channel); requests
    wait for their replies in `requests`."""

    def __init__(self, transport: Transport, requests: Requests | None = None) -> None:
        self._transport = transport
        self._requests = requests if requests is not None else Requests()

    async def publish(
        self,
        topic: str,
        payload: BaseModel | bytes | str,
        *,
        qos: int,
        retain: bool,
        headers: BaseModel | None = None,
        properties: dict[str, str] | None = None,
        content_type: str | None = None,
        response_topic: str | None = None,
        correlation_data: bytes | None = None,
        channel: str = "",
    ) -> None:
        """Send to any topic; prefer the typed methods, which build and check the topic.
        `headers` and `properties` go out as MQTT 5 user properties; the last three are the MQTT 5
        properties of those names (left out under MQTT 3.1.1); `channel` labels the metrics.
        Raises `PublishError`."""
        carried = {**(user_properties(headers) or {}), **(properties or {})}
        message = Outgoing(
            topic,
            encode(payload),
            qos,
            retain,
            tuple(carried.items()),
            response_topic,
            correlation_data,
            content_type,
        )
        await self._transport.publish(message, channel)
        logger.debug("sent to %r", topic)

    async def request(
        self,
        topic: str,
        payload: BaseModel | bytes | str,
        reply_topic: str,
        timeout: float,
        *,
        qos: int,
        retain: bool,
        correlation: Where,
        reply_header: str | None = None,
        content_type: str | None = None,
        channel: str = "",
    ) -> Any:
        """Send a request and wait for its reply on `reply_topic` (the MQTT 5 Response Topic,
        and the `reply_header` user property when the document puts it there). The correlation
        id goes where the document says (`correlation`), else in MQTT 5 Correlation Data.
        Raises `RequestTimeout` when no reply comes within `timeout` seconds."""
        correlation_id, properties = correlate(payload, correlation)
        if reply_header is not None:
            properties[reply_header] = reply_topic
        data = None if correlation_id is None else correlation_id.encode("utf-8")

        async def send() -> None:
            await self.publish(
                topic,
                payload,
                qos=qos,
                retain=retain,
                properties=properties,
                content_type=content_type,
                response_topic=reply_topic,
                channel=channel,
                correlation_data=data,
            )

        return await self._requests.request(send, reply_topic, correlation_id, timeout)
