"""The example's hand-written handlers, tested without a broker through the generated harness:
the 80/60 °C thresholds, the reboot on `error`, the heartbeat's contents."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from iot_device_management_service.lifecycle import Fleet
from iot_device_management_service.models import StatusPayloadStatus
from iot_device_management_service.testing import Harness, harness

QUIET = 3600.0  # no heartbeat during a test unless it asks for one
IN_MEMORY = "sqlite:///:memory:"  # tests/test_example_storage.py (in the repository) has files


def reading(device: str, temperature: float) -> dict[str, Any]:
    """A reading; the same timestamp for every device (rows are keyed by device and time)."""
    return {
        "deviceId": device,
        "timestamp": "2024-01-15T10:30:00Z",
        "sensors": {"temperature": temperature, "humidity": 40.0},
    }


def run(test: Any) -> None:
    async def scenario() -> None:
        async with harness(heartbeat_interval=QUIET, database_url=IN_MEMORY) as h:
            await test(h)

    asyncio.run(scenario())


def test_above_80_degrees_a_critical_alert_goes_out() -> None:
    async def test(h: Harness) -> None:
        outcome = await h.publish("devices/boiler-7/telemetry", reading("boiler-7", 85.0))
        assert outcome.handled
        [alert] = h.sent("alerts/critical")
        body = alert.json()
        assert body["severity"] == "critical" and body["deviceId"] == "boiler-7"
        assert body["details"]["temperature"] == 85.0
        assert alert.content_type == "application/json"

    run(test)


@pytest.mark.parametrize("temperature", [60.5, 80.0, 23.5])
def test_at_or_below_80_degrees_no_alert(temperature: float, caplog: Any) -> None:
    async def test(h: Harness) -> None:
        outcome = await h.publish("devices/d1/telemetry", reading("d1", temperature))
        assert outcome.handled
        assert h.sent("alerts/critical") == []

    with caplog.at_level("WARNING"):
        run(test)
    warned = any("high temperature" in r.getMessage() for r in caplog.records)
    assert warned == (temperature > 60.0)


def test_a_reading_is_handled_once_its_row_is_committed() -> None:
    """The handler returns before the commit (`ctx.ack_after`); the harness, like the broker's
    acknowledgement, waits for it."""

    async def test(h: Harness) -> None:
        store = h.service.state.store
        for count, device in enumerate(("a", "b", "c"), start=1):
            assert (await h.publish(f"devices/{device}/telemetry", reading(device, 20.0))).handled
            assert store.rows_written == count

    run(test)


def test_a_device_in_error_gets_a_high_priority_reboot() -> None:
    async def test(h: Harness) -> None:
        status = {"deviceId": "pump-3", "status": "error", "lastSeen": "2024-01-15T10:31:00Z"}
        outcome = await h.publish("devices/pump-3/status", status)
        assert outcome.handled
        [command] = h.sent("devices/+/commands")
        assert command.topic == "devices/pump-3/commands"
        assert command.json()["command"] == "reboot" and command.json()["priority"] == "high"
        online = {**status, "status": "online"}
        assert (await h.publish("devices/pump-3/status", online)).handled
        assert len(h.sent("devices/+/commands")) == 1

    run(test)


def test_a_bad_message_is_rejected_with_its_reason() -> None:
    async def test(h: Harness) -> None:
        assert (await h.publish("devices/x/telemetry", b"not JSON")).rejected == "invalid_json"
        too_hot = reading("x", 20.0) | {"sensors": {"temperature": 500.0}}
        assert (await h.publish("devices/x/telemetry", too_hot)).rejected == "invalid_payload"
        assert (await h.publish("elsewhere", b"{}")).rejected == "unknown_topic"

    run(test)


def test_the_heartbeat_reports_active_devices_error_rate_and_storage() -> None:
    async def scenario() -> None:
        async with harness(heartbeat_interval=0.05, database_url=IN_MEMORY) as h:
            for device in ("a", "b"):
                await h.publish(f"devices/{device}/telemetry", reading(device, 20.0))
            await h.publish("devices/a/telemetry", b"broken")
            h.clear()
            for _ in range(200):  # bounded: 10 s at most
                if h.sent("system/heartbeat"):
                    break
                await asyncio.sleep(0.05)
            beat = h.sent("system/heartbeat")[0].json()
            assert beat["metrics"]["activeDevices"] == 2
            assert beat["status"] in ("healthy", "degraded")
            assert 0.0 <= beat["metrics"]["errorRate"] <= 1.0
            assert beat["metrics"]["rowsWritten"] == 2  # a handled reading is a stored row
            assert beat["metrics"]["flushLagSeconds"] == 0.0
            assert beat["metrics"]["databaseErrors"] == 0

    asyncio.run(scenario())


def test_the_fleet_forgets_the_least_recently_seen_beyond_its_limit_and_window(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    now = [1000.0]
    monkeypatch.setattr(time, "monotonic", lambda: now[0])
    fleet = Fleet(active_window=60.0, limit=2)
    online = StatusPayloadStatus.ONLINE
    fleet.seen("b", online)
    assert fleet.seen("b") is online  # remembered while within the limit
    for device in ("a", "c"):  # now "b" is the least recently seen of three
        fleet.seen(device)
    assert fleet.active_devices() == 2
    assert fleet.seen("b") is None  # forgotten: its status is unknown again
    now[0] += 61.0
    assert fleet.active_devices() == 0  # nobody seen within the window
