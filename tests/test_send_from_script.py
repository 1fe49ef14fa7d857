"""Sending from a script (issue 21.6): `publisher.connect()` is a connected, typed publisher with
a client id of its own, run as a user runs a script next to the running example service."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

from tests.support import EXAMPLE, EXAMPLE_PACKAGE, Broker, Subscriber, free_port, service
from tests.test_example_service import telemetry
from tests.test_operate import get, samples

SCRIPT = """
import asyncio
import sys
import uuid
from datetime import UTC, datetime

from iot_device_management_service.models import CommandPayload, CommandType, Priority
from iot_device_management_service.publisher import connect


async def main() -> None:
    async with connect() as publisher:
        for device in sys.argv[1:]:
            command = CommandPayload(
                command_id=uuid.uuid4(),
                device_id=device,
                command=CommandType.REBOOT,
                priority=Priority.LOW,
                created_at=datetime.now(UTC),
            )
            await publisher.send_command(command, device_id=device)
    print("sent", len(sys.argv) - 1)


asyncio.run(main())
"""


def run_script(path: Path, broker: Broker, client_id: str, *devices: str) -> None:
    settings = {"MQTT_HOST": "127.0.0.1", "MQTT_PORT": str(broker.port)}
    done = subprocess.run(
        [sys.executable, str(path), *devices],
        cwd=EXAMPLE,
        env={
            "PATH": "/usr/bin:/bin",
            "PYTHONPATH": str(EXAMPLE),
            "MQTT_CLIENT_ID": client_id,
            **settings,
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"sent {len(devices)}", done.stdout


def test_a_script_sends_typed_messages_beside_the_running_service(
    broker: Broker, tmp_path: Path
) -> None:
    script = tmp_path / "send_reboots.py"
    script.write_text(textwrap.dedent(SCRIPT))
    port = free_port()
    client_id = f"fleet-{free_port()}"
    proc = service(
        EXAMPLE,
        EXAMPLE_PACKAGE,
        broker,
        MQTT_CLIENT_ID=client_id,
        SERVER_PORT=str(port),
        SERVER_HOST="127.0.0.1",
        LOG_LEVEL="DEBUG",
    )
    try:
        proc.wait_for(r"connected to mqtt://127\.0\.0\.1:\d+; subscribed to")
        commands = Subscriber(broker, "devices/+/commands", count=2)
        run_script(script, broker, client_id, "d1", "d2")  # the service's own id in the env
        received = [commands.message(r"devices/d\d/commands") for _ in range(2)]
        assert sorted(topic for topic, _ in received) == [
            "devices/d1/commands",
            "devices/d2/commands",
        ]
        assert {json.loads(body)["command"] for _, body in received} == {"reboot"}
        broker.publish("devices/c1/telemetry", telemetry("c1", 20.0), 1)
        proc.wait_for("telemetry from c1")
        found = samples(get(port, "/metrics")[1])
        assert found[("mqtt_reconnects_total", ())] == 0
        assert found[("mqtt_connected", ())] == 1
    finally:
        proc.terminate()
    assert not proc.find_all("reconnect|closed it|disconnected"), proc.lines


TWO_AT_ONCE = """
import asyncio

from iot_device_management_service.models import HeartbeatPayload
from iot_device_management_service.publisher import connect


async def send(publisher, n: int) -> None:
    for _ in range(n):
        await publisher.send_heartbeat(HeartbeatPayload.model_validate(HEARTBEAT))
        await asyncio.sleep(0)


async def main() -> None:
    async with connect() as first, connect() as second:
        await asyncio.gather(send(first, 50), send(second, 50))
    print("sent 100")


asyncio.run(main())
"""


def test_two_publishers_of_one_process_keep_their_connections(
    broker: Broker, tmp_path: Path
) -> None:
    """One process (one pid), two `connect()` at once: each has its own client id, so neither
    pushes the other off the broker (the runtime logs a reconnect at WARNING if one does)."""
    heartbeat = {
        "serviceId": "script",
        "timestamp": "2026-01-01T00:00:00Z",
        "status": "healthy",
        "metrics": {"activeDevices": 0, "messagesPerSecond": 0.0, "errorRate": 0.0},
    }
    script = tmp_path / "two.py"
    script.write_text(f"HEARTBEAT = {heartbeat!r}\n" + textwrap.dedent(TWO_AT_ONCE))
    beats = Subscriber(broker, "system/heartbeat", count=100)
    done = subprocess.run(
        [sys.executable, str(script)],
        cwd=EXAMPLE,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(EXAMPLE), "MQTT_HOST": "127.0.0.1",
             "MQTT_PORT": str(broker.port), "MQTT_CLIENT_ID": f"twins-{free_port()}"},
        capture_output=True,
        text=True,
        timeout=60,
    )  # fmt: skip
    assert done.returncode == 0 and done.stdout.strip() == "sent 100", done.stderr
    assert "reconnect" not in done.stderr and "closed" not in done.stderr, done.stderr
    for _ in range(100):
        beats.message("system/heartbeat")
