"""Start-up and shutdown code, and resources shared by the handlers.

Yours to edit: asyncapi-pygen created this file once and never overwrites it.

The IoT example stores telemetry and device state in a database (`storage.Store`, shared with
handlers as `ctx.state.store`), deletes telemetry older than `TELEMETRY_RETENTION`, keeps a
bounded in-memory picture of recently active devices (`ctx.state.fleet`), and publishes a
`SystemHeartbeat` with live metrics every `HEARTBEAT_INTERVAL` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from iot_device_management_service.app_settings import seconds
from iot_device_management_service.models import (
    HeartbeatPayload,
    HeartbeatPayloadMetrics,
    HeartbeatPayloadStatus,
    StatusPayloadStatus,
)
from iot_device_management_service.publisher import Publisher, PublishError
from iot_device_management_service.storage import Store

if TYPE_CHECKING:
    from iot_device_management_service.service import Service

logger = logging.getLogger(__name__)

DEGRADED_ERROR_RATE = 0.1


class Fleet:
    """Devices seen within the active window, and their last status: at most `limit` of them,
    the least recently seen forgotten first. The database keeps every device for good."""

    def __init__(self, active_window: float, limit: int) -> None:
        self.active_window = active_window
        self.limit = limit
        self._seen: OrderedDict[str, tuple[float, StatusPayloadStatus | None]] = OrderedDict()

    def seen(
        self, device_id: str, status: StatusPayloadStatus | None = None
    ) -> StatusPayloadStatus | None:
        """Note a message from the device; returns the status it had before (None: unknown).
        Called for every message: only the count is bounded here, the window when counting."""
        _, before = self._seen.pop(device_id, (0.0, None))
        self._seen[device_id] = (time.monotonic(), status or before)
        if len(self._seen) > self.limit:
            self._seen.popitem(last=False)
        return before

    def active_devices(self) -> int:
        self._evict()
        return len(self._seen)

    def _evict(self) -> None:
        horizon = time.monotonic() - self.active_window
        while self._seen:
            oldest = next(iter(self._seen.values()))[0]
            if oldest >= horizon and len(self._seen) <= self.limit:
                return
            self._seen.popitem(last=False)


@dataclass
class State:
    """What the handlers share (`ctx.state`): the database and the picture of the fleet."""

    store: Store
    fleet: Fleet


async def _heartbeat(service: Service, state: State, interval: float) -> None:
    """Publish a heartbeat every `interval` seconds, with rates over the last interval."""
    started = time.monotonic()
    fleet, store = state.fleet, state.store
    previous = (started, 0, 0)
    while True:
        now = time.monotonic()
        stats = service.stats
        failed = stats.rejected + stats.handler_errors + store.refused
        elapsed = max(now - previous[0], 1e-9)
        received = stats.received - previous[1]
        errors = failed - previous[2]
        error_rate = min(errors / received, 1.0) if received else 0.0
        healthy = error_rate < DEGRADED_ERROR_RATE and store.flush_lag() < interval
        status = HeartbeatPayloadStatus.HEALTHY if healthy else HeartbeatPayloadStatus.DEGRADED
        payload = HeartbeatPayload(
            service_id=service.settings.mqtt_client_id,
            timestamp=datetime.now(UTC),
            status=status,
            uptime_seconds=round(now - started, 3),
            metrics=HeartbeatPayloadMetrics(
                active_devices=fleet.active_devices(),
                messages_per_second=round(received / elapsed, 3),
                error_rate=round(error_rate, 4),
                rows_written=store.rows_written,
                flush_lag_seconds=round(store.flush_lag(), 3),
                database_errors=store.errors,
                refused_messages=store.refused,
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
async def lifespan(service: Service) -> AsyncIterator[State]:
    """Open the database and start its writer, the retention job and the heartbeat. At
    shutdown (after in-flight handlers finished) rows still waiting are written, then the
    database is closed; the tasks are cancelled."""
    settings = service.app_settings
    store = Store(
        settings.database_url, settings.telemetry_batch_rows, settings.telemetry_flush_interval
    )
    await store.open()
    state = State(store, Fleet(settings.active_window, settings.max_tracked_devices))
    service.start_background(store.run(), name="database writer")
    retention = seconds(settings.telemetry_retention)
    if retention > 0:
        every = settings.retention_check_interval
        service.start_background(store.keep_telemetry_for(retention, every), name="retention")
    service.start_background(
        _heartbeat(service, state, settings.heartbeat_interval), name="heartbeat"
    )
    try:
        yield state
    finally:
        await store.close(service.settings.shutdown_timeout)
