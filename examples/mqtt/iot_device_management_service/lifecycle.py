"""Start-up and shutdown code, and resources shared by the handlers.

Yours to edit: asyncapi-pygen created this file once and never overwrites it.

The IoT example keeps a small in-memory picture of the fleet (who reported last, with which
status) and publishes a `SystemHeartbeat` with live metrics every `HEARTBEAT_INTERVAL` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from iot_device_management_service.models import (
    HeartbeatPayload,
    HeartbeatPayloadMetrics,
    HeartbeatPayloadStatus,
    StatusPayloadStatus,
)
from iot_device_management_service.publisher import Publisher
from iot_device_management_service.publisher import PublishError

if TYPE_CHECKING:
    from iot_device_management_service.service import Service

logger = logging.getLogger(__name__)

DEGRADED_ERROR_RATE = 0.1


@dataclass
class Fleet:
    """What the service knows about the devices; handlers reach it as `ctx.state["fleet"]`."""

    active_window: float
    last_seen: dict[str, float] = field(default_factory=dict)
    statuses: dict[str, StatusPayloadStatus] = field(default_factory=dict)

    def seen(self, device_id: str) -> None:
        self.last_seen[device_id] = time.monotonic()

    def active_devices(self) -> int:
        horizon = time.monotonic() - self.active_window
        return sum(1 for moment in self.last_seen.values() if moment >= horizon)


def fleet_of(state: dict[str, object]) -> Fleet:
    fleet = state["fleet"]
    assert isinstance(fleet, Fleet)
    return fleet


async def _heartbeat(service: Service, interval: float) -> None:
    """Publish a heartbeat every `interval` seconds, with rates over the last interval."""
    started = time.monotonic()
    fleet = fleet_of(service.state)
    previous = (started, 0, 0)
    while True:
        now = time.monotonic()
        stats = service.stats
        failed = stats.rejected + stats.handler_errors
        elapsed = max(now - previous[0], 1e-9)
        received = stats.received - previous[1]
        errors = failed - previous[2]
        error_rate = min(errors / received, 1.0) if received else 0.0
        healthy = error_rate < DEGRADED_ERROR_RATE
        status = HeartbeatPayloadStatus.HEALTHY if healthy else HeartbeatPayloadStatus.DEGRADED
        payload = HeartbeatPayload(
            service_id=service.settings.mqtt_client_id,
            timestamp=datetime.now(timezone.utc),
            status=status,
            uptime_seconds=round(now - started, 3),
            metrics=HeartbeatPayloadMetrics(
                active_devices=fleet.active_devices(),
                messages_per_second=round(received / elapsed, 3),
                error_rate=round(error_rate, 4),
            ),
        )
        previous = (now, stats.received, failed)
        await _send_heartbeat(service.publisher, payload)
        await asyncio.sleep(interval)


async def _send_heartbeat(publisher: Publisher, payload: HeartbeatPayload) -> None:
    try:
        await publisher.send_heartbeat(payload)
    except PublishError as exc:
        logger.warning("heartbeat not sent: %s", exc)


@contextlib.asynccontextmanager
async def lifespan(service: Service) -> AsyncIterator[None]:
    """Set up the fleet state and start the heartbeat; it is cancelled at shutdown."""
    settings = service.app_settings
    service.state["fleet"] = Fleet(active_window=settings.active_window)
    service.start_background(_heartbeat(service, settings.heartbeat_interval), name="heartbeat")
    yield
