"""Test handlers without a broker: `outcome = publish(topic, payload)` for one message, or
`async with harness() as h: outcome = await h.publish(topic, payload)` for a scenario; then
`outcome.handled`, `outcome.rejected` and `h.sent(filter)` (`_runtime.harness`)."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import Any

from pydantic import BaseModel

from ._runtime import harness as _harness
from ._runtime.harness import Outcome, Payload, Sent
from .app_settings import AppSettings
from .service import Service
from .settings import Settings

__all__ = ["Harness", "Outcome", "Sent", "harness", "publish"]

Harness = _harness.Harness[Service]


def harness(**settings: Any) -> AbstractAsyncContextManager[Harness]:
    """The service with its lifespan running; keyword arguments set settings (generated ones
    like `max_payload_bytes` and yours from `AppSettings`) by field name."""
    return _harness.run(Service, Settings, AppSettings, settings)


def publish(
    topic: str,
    payload: Payload,
    /,
    *,
    headers: BaseModel | dict[str, str] | None = None,
    **settings: Any,
) -> Outcome:
    """One message through the service with its lifespan, from a plain (synchronous) test;
    keyword arguments set settings as for `harness`."""
    return _harness.publish_once(Service, Settings, AppSettings, settings, topic, payload, headers)
