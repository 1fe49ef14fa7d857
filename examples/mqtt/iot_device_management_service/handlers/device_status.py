"""Handler for devices/{deviceId}/status (channel deviceStatus).

Yours to edit: asyncapi-pygen created this file once and never overwrites it.

Stores each device's last status (and counts its errors); a device that reports `error` is sent a
high-priority `reboot`. A status the database cannot hold is refused (the store logs and counts
it) and goes no further.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime

from iot_device_management_service.context import Context
from iot_device_management_service.models import (
    CommandPayload,
    CommandType,
    Priority,
    StatusPayload,
    StatusPayloadStatus,
)
from iot_device_management_service.storage import Unstorable

logger = logging.getLogger(__name__)


async def handle(message: StatusPayload, ctx: Context, *, device_id: str) -> None:
    """Monitor device health and status."""
    previous = ctx.state.fleet.seen(device_id, message.status)
    try:
        await ctx.state.store.record_status(device_id, message.status.value, message.last_seen)
    except Unstorable:
        return  # acknowledged: delivering it again could not help
    if previous != message.status:
        logger.info("device %s is now %s", device_id, message.status.value)
    if message.status is StatusPayloadStatus.ERROR:
        command = CommandPayload(
            command_id=uuid.uuid4(),
            device_id=device_id,
            command=CommandType.REBOOT,
            priority=Priority.HIGH,
            created_at=datetime.now(UTC),
        )
        logger.warning("device %s reports an error; sending reboot", device_id)
        await ctx.publisher.send_command(command, device_id=device_id)
