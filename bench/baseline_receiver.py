"""The yardstick for bench/throughput.py: a minimal hand-written aiomqtt + pydantic receiver for the
IoT example's telemetry, doing what the generated service's telemetry path does (validate into the
same model, alert above 80 °C) and nothing else: no routing table, no concurrency, no counters."""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path

import aiomqtt

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples" / "mqtt"))

from iot_device_management_service.models import (
    CriticalAlertPayload,
    CriticalAlertPayloadSeverity,
    TelemetryPayload,
)


async def main() -> None:
    port = int(os.environ["MQTT_PORT"])
    qos = int(os.environ.get("SUBSCRIBE_QOS", "1"))
    client_id = os.environ["MQTT_CLIENT_ID"]
    clean = os.environ.get("MQTT_CLEAN_SESSION", "true") == "true"
    async with aiomqtt.Client(
        "127.0.0.1", port, identifier=client_id, clean_session=clean
    ) as client:
        await client.subscribe("devices/+/telemetry", qos=qos)
        print("connected", flush=True)
        async for message in client.messages:
            assert isinstance(message.payload, bytes)
            telemetry = TelemetryPayload.model_validate_json(message.payload)
            temperature = telemetry.sensors.temperature
            if temperature is not None and temperature > 80:
                alert = CriticalAlertPayload(
                    alert_id=uuid.uuid4(),
                    device_id=telemetry.device_id,
                    severity=CriticalAlertPayloadSeverity.CRITICAL,
                    message=f"Temperature {temperature:.1f} °C",
                    timestamp=datetime.now(UTC),
                )
                await client.publish(
                    "alerts/critical", alert.model_dump_json(exclude_none=True), qos=1
                )


if __name__ == "__main__":
    asyncio.run(main())
