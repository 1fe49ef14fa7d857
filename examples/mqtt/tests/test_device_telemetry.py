"""Tests of the handler for devices/{deviceId}/telemetry, without a broker (iot_device_management_service/testing.py).

Yours to edit: asyncapi-pygen created this file once and never overwrites it. Run with `pytest`.
"""

from __future__ import annotations

import asyncio
import json

from iot_device_management_service.testing import harness

TOPIC = "devices/example/telemetry"
EXAMPLE = json.loads(
    '{"deviceId": "sensor001", "location": {"latitude": 37.7749, "longitude": -122.4194}, "sensors": {"battery": 87.3, "humidity": 65.2, "pressure": 1013.25, "temperature": 23.5}, "timestamp": "2024-01-15T10:30:00Z"}'
)  # from the document's examples


def test_the_documents_example_is_handled() -> None:
    async def scenario() -> None:
        async with harness(database_url="sqlite:///:memory:") as h:
            outcome = await h.publish(TOPIC, EXAMPLE)
            assert outcome.handled, outcome

    asyncio.run(scenario())


def test_a_message_that_is_not_json_is_rejected() -> None:
    async def scenario() -> None:
        async with harness(database_url="sqlite:///:memory:") as h:
            outcome = await h.publish(TOPIC, b"this is not JSON")
            assert outcome.rejected == "invalid_json", outcome

    asyncio.run(scenario())
