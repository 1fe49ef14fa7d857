"""Handler for devices/{deviceId}/telemetry (channel deviceTelemetry).

Yours to edit: asyncapi-pygen created this file once and never overwrites it.

Each reading is queued for the store's next batch and the message is acknowledged once its row
is committed (`ctx.ack_after`): the handler does not wait for the commit, so the next readings
are handled meanwhile and a batch holds all of them. One the database cannot hold is refused (the
store logs and counts it) and goes no further. Above 80 °C a device gets a `CriticalAlert` on
`alerts/critical` (without waiting for the row's commit); above 60 °C a warning is logged. Each
reading is logged at DEBUG only: a fleet sends thousands a second.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime

from iot_device_management_service.context import Context
from iot_device_management_service.models import (
    CriticalAlertPayload,
    CriticalAlertPayloadSeverity,
    TelemetryPayload,
)
from iot_device_management_service.storage import Unstorable

logger = logging.getLogger(__name__)

CRITICAL_TEMPERATURE = 80.0
WARNING_TEMPERATURE = 60.0


async def handle(message: TelemetryPayload, ctx: Context, *, device_id: str) -> None:
    """Receive sensor data from devices."""
    ctx.state.fleet.seen(device_id)
    try:
        ctx.ack_after(ctx.state.store.queue_telemetry(device_id, message))
    except Unstorable:
        return  # acknowledged: delivering it again could not help
    temperature = message.sensors.temperature
    logger.debug("telemetry from %s: temperature=%s", device_id, temperature)
    if temperature is None:
        return
    if temperature > CRITICAL_TEMPERATURE:
        alert = CriticalAlertPayload(
            alert_id=uuid.uuid4(),
            device_id=device_id,
            severity=CriticalAlertPayloadSeverity.CRITICAL,
            message=f"Temperature {temperature:.1f} °C exceeds {CRITICAL_TEMPERATURE:.1f} °C",
            timestamp=datetime.now(UTC),
            details={"temperature": temperature, "topic": ctx.topic},
        )
        logger.warning("critical temperature %.1f °C on device %s", temperature, device_id)
        await ctx.publisher.send_critical_alert(alert)
    elif temperature > WARNING_TEMPERATURE:
        logger.warning("high temperature %.1f °C on device %s", temperature, device_id)
