"""Test handlers without a broker: `async with harness() as h: outcome = await
h.publish(topic, payload)`, then `outcome.handled` and `h.sent(filter)` (`_runtime.harness`)."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import Any

from ._runtime import harness as _harness
from ._runtime.harness import Outcome, Sent
from .app_settings import AppSettings
from .service import Service
from .settings import Settings

__all__ = ["Harness", "Outcome", "Sent", "harness"]

Harness = _harness.Harness[Service]


def harness(**settings: Any) -> AbstractAsyncContextManager[Harness]:
    """The service with its lifespan running; keyword arguments set settings (generated ones
    like `max_payload_bytes` and yours from `AppSettings`) by field name."""
    return _harness.run(Service, Settings, AppSettings, settings)
