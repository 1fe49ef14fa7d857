"""The IoT example, run as a user runs it: `python -m iot_device_management_service` against a
real mosquitto, fed with the seed's own mosquitto_pub payloads, watched with mosquitto_sub."""

from __future__ import annotations

import itertools
import json
import socket
import sys
import time

import jsonschema
import pytest
import yaml

from tests.support import (
    EXAMPLE,
    EXAMPLE_PACKAGE,
    EXAMPLE_SPEC,
    Broker,
    Process,
    Subscriber,
    service,
)

SEED_TELEMETRY = """{
  "deviceId": "sensor001",
  "timestamp": "2024-01-15T10:30:00Z",
  "sensors": {
    "temperature": 23.5,
    "humidity": 65.2,
    "pressure": 1013.25,
    "battery": 87.3
  },
  "location": {
    "latitude": 37.7749,
    "longitude": -122.4194
  }
}"""

SEED_STATUS = """{
  "deviceId": "sensor001",
  "status": "online",
  "health": {
    "cpu": 45.2,
    "memory": 67.8,
    "disk": 23.1,
    "uptime": 86400
  },
  "lastSeen": "2024-01-15T10:30:00Z"
}"""


def telemetry(device: str, temperature: float) -> str:
    return json.dumps(
        {
            "deviceId": device,
            "timestamp": "2024-01-15T10:30:00Z",
            "sensors": {"temperature": temperature},
        }
    )


def spec_validator(schema_name: str) -> jsonschema.Validator:
    """A validator for one of the spec's schemas, on wire names, formats checked."""
    spec = yaml.safe_load(EXAMPLE_SPEC.read_text())
    schema = {"$ref": f"#/components/schemas/{schema_name}", "components": spec["components"]}
    return jsonschema.Draft7Validator(
        schema, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER
    )


@pytest.fixture
def running(broker: Broker):
    # each reading is logged at DEBUG (a fleet sends thousands a second)
    proc = service(EXAMPLE, EXAMPLE_PACKAGE, broker, HEARTBEAT_INTERVAL="0.3", LOG_LEVEL="DEBUG")
    try:
        filters = r"devices/\+/telemetry, devices/\+/status"
        proc.wait_for(rf"connected to mqtt://127\.0\.0\.1:\d+; subscribed to {filters}")
        yield proc
    finally:
        proc.kill()


def test_seed_payloads_reach_their_handlers(broker: Broker, running) -> None:
    broker.publish("devices/sensor001/telemetry", SEED_TELEMETRY)
    running.wait_for(r"handlers\.device_telemetry: telemetry from sensor001: temperature=23\.5")
    broker.publish("devices/sensor001/status", SEED_STATUS)
    running.wait_for(r"handlers\.device_status: device sensor001 is now online")


def test_critical_temperature_publishes_a_valid_alert(broker: Broker, running) -> None:
    alerts = Subscriber(broker, "alerts/critical")
    broker.publish("devices/hot-1/telemetry", telemetry("hot-1", 85.0))
    _, body = alerts.message("alerts/critical")
    alert = json.loads(body)
    spec_validator("CriticalAlertPayload").validate(alert)
    assert alert["severity"] == "critical"
    assert alert["deviceId"] == "hot-1"
    assert "85.0" in alert["message"]
    assert set(alert) >= {"alertId", "deviceId", "severity", "message", "timestamp"}


def test_warm_device_only_logs_a_warning(broker: Broker, running) -> None:
    broker.publish("devices/warm-1/telemetry", telemetry("warm-1", 65.0))
    running.wait_for(r"WARNING .*high temperature 65\.0 °C on device warm-1")
    assert not running.find_all("critical temperature .* warm-1")


def test_error_status_sends_a_reboot_command(broker: Broker, running) -> None:
    commands = Subscriber(broker, "devices/+/commands")
    status = json.loads(SEED_STATUS) | {"deviceId": "broken-7", "status": "error"}
    broker.publish("devices/broken-7/status", json.dumps(status))
    topic, body = commands.message(r"devices/[^ ]+/commands")
    assert topic == "devices/broken-7/commands"
    command = json.loads(body)
    spec_validator("CommandPayload").validate(command)
    assert (command["command"], command["priority"], command["deviceId"]) == (
        "reboot",
        "high",
        "broken-7",
    )


def test_heartbeat_carries_live_metrics(broker: Broker, running) -> None:
    beats = Subscriber(broker, "system/heartbeat", count=50)
    broker.publish("devices/sensor001/telemetry", SEED_TELEMETRY)
    running.wait_for("telemetry from sensor001")
    validator = spec_validator("HeartbeatPayload")
    for _ in range(20):
        _, body = beats.message("system/heartbeat")
        beat = json.loads(body)
        validator.validate(beat)
        if beat["metrics"]["activeDevices"] == 1:
            break
    else:
        raise AssertionError("no heartbeat counted the active device")
    beats.kill()


@pytest.mark.parametrize(
    ("label", "payload"),
    [
        ("not JSON", "temperature is 23.5"),
        (
            "wrong type",
            json.dumps(
                {
                    "deviceId": "d",
                    "timestamp": "2024-01-15T10:30:00Z",
                    "sensors": {"temperature": "hot"},
                }
            ),
        ),
        ("out of range", telemetry("d", 151.0)),
        ("missing field", json.dumps({"deviceId": "d", "sensors": {}})),
    ],
)
def test_bad_telemetry_is_counted_and_the_next_is_handled(
    broker: Broker, running, label, payload
) -> None:
    broker.publish("devices/bad-1/telemetry", payload)
    running.wait_for(
        r"WARNING .*rejected message on 'devices/bad-1/telemetry': invalid (JSON|payload)"
    )
    broker.publish("devices/good-1/telemetry", telemetry("good-1", 20.0))
    running.wait_for("telemetry from good-1: temperature=20.0")
    assert payload not in "\n".join(running.lines), "a rejected payload must not be logged whole"


def test_broker_restart_reconnects_and_messages_flow_again(broker: Broker, running) -> None:
    broker.publish("devices/before/telemetry", telemetry("before", 20.0))
    running.wait_for("telemetry from before")
    broker.stop()
    running.wait_for(r"WARNING .*(connection lost|closed it).*; reconnecting")
    broker.start()
    running.wait_for(r"connected to mqtt://127\.0\.0\.1:\d+; subscribed to", timeout=20)
    broker.publish("devices/after/telemetry", telemetry("after", 20.0))
    running.wait_for("telemetry from after")


def test_a_drop_is_retried_at_once_then_after_doubling_waits_up_to_the_cap(broker: Broker) -> None:
    """The client's promise: a lost connection is tried again at once; a broker that stays away
    is tried after the minimum delay, then twice that, up to the maximum (jittered by 10%)."""
    proc = service(
        EXAMPLE, EXAMPLE_PACKAGE, broker, RECONNECT_MIN_DELAY="1", RECONNECT_MAX_DELAY="2"
    )
    try:
        proc.wait_for(r"connected to mqtt://")
        broker.stop()
        dropped = time.monotonic()
        proc.wait_for(r"; reconnecting")
        proc.wait_for(r"cannot connect to mqtt://.*; retrying in 1\.0 s")
        attempts = [time.monotonic()]
        assert attempts[0] - dropped < 0.8  # no wait before the first attempt
        waits = []
        for _ in range(3):
            waits.append(proc.wait_for(r"cannot connect .*; retrying in (\d+\.\d) s").group(1))
            attempts.append(time.monotonic())
        assert waits == ["2.0", "2.0", "2.0"]  # doubled once, then capped
        gaps = [later - earlier for earlier, later in itertools.pairwise(attempts)]
        assert gaps[0] > 0.85 and all(gap > 1.75 for gap in gaps[1:])  # it really waited
        broker.start()
        proc.wait_for(r"connected to mqtt://", timeout=10)
    finally:
        proc.kill()


def test_service_waits_for_a_broker_that_is_down_at_start(broker: Broker) -> None:
    broker.stop()
    proc = service(EXAMPLE, EXAMPLE_PACKAGE, broker, LOG_LEVEL="DEBUG")
    try:
        proc.wait_for(r"cannot connect to mqtt://.*: .*; retrying in")
        broker.start()
        proc.wait_for(r"connected to mqtt://", timeout=20)
        broker.publish("devices/late/telemetry", telemetry("late", 20.0))
        proc.wait_for("telemetry from late")
    finally:
        proc.kill()


def test_sigterm_stops_cleanly_with_exit_0(broker: Broker, running) -> None:
    broker.publish("devices/last/telemetry", telemetry("last", 20.0))
    running.wait_for("telemetry from last")
    assert running.terminate() == 0
    assert running.find_all(
        r"stopped; 0 received message\(s\) left for redelivery; Stats\(received=1, handled=1"
    )


def test_password_never_logged(broker: Broker) -> None:
    proc = service(EXAMPLE, EXAMPLE_PACKAGE, broker, MQTT_PASSWORD="s3cr3t-pw", LOG_LEVEL="DEBUG")
    try:
        proc.wait_for("connected to mqtt://")
        assert proc.terminate() == 0
        assert "s3cr3t-pw" not in "\n".join(proc.lines)
    finally:
        proc.kill()


def test_sigterm_during_a_hanging_connection_attempt_stops_at_once(tmp_path) -> None:
    """A broker that accepts TCP and never answers CONNECT: the attempt is logged, and SIGTERM
    ends it without waiting for the connect timeout."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        settings = {
            "MQTT_HOST": "127.0.0.1",
            "MQTT_PORT": str(port),
            "CONNECT_TIMEOUT": "60",
            "DATABASE_URL": f"sqlite:///{tmp_path / 'telemetry.db'}",  # not in the repository
        }
        proc = Process([sys.executable, "-m", EXAMPLE_PACKAGE], EXAMPLE, settings)
        try:
            proc.wait_for(rf"connecting to mqtt://127\.0\.0\.1:{port}")
            started = time.monotonic()
            assert proc.terminate(timeout=10) == 0
            assert time.monotonic() - started < 5
        finally:
            proc.kill()
