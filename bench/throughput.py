"""Telemetry messages per second through a real mosquitto, validation on, for the generated IoT
example service (`python -m iot_device_management_service`), a minimal hand-written aiomqtt +
pydantic receiver (bench/baseline_receiver.py) and `mosquitto_sub` (the broker's own C client,
which only prints), measured in the same run, interleaved.

The messages are a fleet's: 1,000 devices, each on its own topic (`devices/sensorNNN/telemetry`),
every reading with its own timestamp, so a store keyed by device and time writes every one.

So that the publisher's speed cannot cap the figures, each trial pre-loads the broker: the receiver
connects once with a persistent session and is stopped; then messages are queued for it and it is
started again, and the clock runs from its start to the CriticalAlert it sends for the last
message, at 85 °C. The hand-written receiver handles messages one after the other; the generated
service handles topics concurrently, so when the alert goes out up to MAX_CONCURRENT_HANDLERS - 1
earlier messages may still be finishing (at most 15 of 20,000 with the defaults). This is done
twice, with only the hot message queued and with N telemetry messages before it; the difference of
the two times is the time the N messages took, start-up excluded. Each run of the example stores
into a new SQLite file (`DATABASE_URL`), so no reading is already there. Receivers run at
LOG_LEVEL=WARNING, as in production. mosquitto_sub is timed the same way, until it has printed
the last message (`-C`).

    python bench/throughput.py [--messages N] [--trials K]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiomqtt

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.support import Broker, Process, Subscriber  # noqa: E402

EXAMPLE = REPO / "examples" / "mqtt"
DEVICES = 1000
FILTER = "devices/+/telemetry"
START = datetime(2026, 1, 1, tzinfo=UTC)


def device(index: int) -> str:
    return f"sensor{index % DEVICES:03d}"


def payload(index: int, temperature: float) -> bytes:
    """Reading `index` of the fleet: its device's, with a timestamp no other reading has."""
    return json.dumps(
        {
            "deviceId": device(index),
            "timestamp": (START + timedelta(milliseconds=index)).isoformat(),
            "sensors": {"temperature": temperature, "humidity": 40.0, "battery": 90.0},
            "location": {"latitude": 37.7749, "longitude": -122.4194},
            "metadata": {"firmwareVersion": "1.2.3", "model": f"m{index % 7}"},
        }
    ).encode()


async def publish_all(port: int, messages: int, qos: int) -> None:
    body = [payload(i, 20.0 + i % 30) for i in range(messages)] + [payload(messages, 85.0)]
    quiet = logging.getLogger("bench.publisher")
    quiet.setLevel(logging.ERROR)
    async with aiomqtt.Client("127.0.0.1", port, logger=quiet) as client:
        for first in range(0, len(body), 100):
            await asyncio.gather(
                *(
                    client.publish(f"devices/{device(index)}/telemetry", body[index], qos=qos)
                    for index in range(first, min(first + 100, len(body)))
                )
            )


def command(kind: str) -> tuple[list[str], Path, str]:
    if kind == "generated":
        return [sys.executable, "-m", "iot_device_management_service"], EXAMPLE, "connected to"
    return [sys.executable, str(REPO / "bench" / "baseline_receiver.py")], REPO, "connected"


def timed_start(args: list[str], cwd: Path, env: dict[str, str], broker: Broker) -> float:
    """Seconds from starting the receiver to its alert."""
    alerts = Subscriber(broker, "alerts/critical")
    started = time.perf_counter()
    receiver = Process(args, cwd, env)
    try:
        alerts.message("alerts/critical", timeout=300)
        return time.perf_counter() - started
    finally:
        receiver.kill()
        alerts.kill()


def sub_seconds(broker: Broker, count: int, qos: int, client_id: str) -> float:
    """Seconds mosquitto_sub takes, from its start, to print `count` queued messages."""
    args = ["mosquitto_sub", "-h", "127.0.0.1", "-p", str(broker.port), "-q", str(qos)]
    args += ["-c", "-i", client_id, "-t", FILTER, "-C", str(count), "-W", "300"]
    started = time.perf_counter()
    subprocess.run(args, stdout=subprocess.DEVNULL, check=True, timeout=310)
    return time.perf_counter() - started


def sub_trial(broker: Broker, messages: int, qos: int, client_id: str) -> float:
    session = ["mosquitto_sub", "-h", "127.0.0.1", "-p", str(broker.port), "-q", str(qos)]
    session += ["-c", "-i", client_id, "-t", FILTER, "-E"]
    subprocess.run(session, check=True, timeout=30)  # creates the persistent session, exits
    asyncio.run(publish_all(broker.port, 0, qos))
    empty = sub_seconds(broker, 1, qos, client_id)
    asyncio.run(publish_all(broker.port, messages, qos))
    full = sub_seconds(broker, messages + 1, qos, client_id)
    return full - empty


def trial(kind: str, broker: Broker, messages: int, qos: int, client_id: str) -> float:
    """Seconds the receiver spent on `messages` queued telemetry messages."""
    if kind == "mosquitto_sub":
        return sub_trial(broker, messages, qos, client_id)
    args, cwd, ready = command(kind)
    env = {
        "MQTT_HOST": "127.0.0.1",
        "MQTT_PORT": str(broker.port),
        "MQTT_CLIENT_ID": client_id,
        "MQTT_CLEAN_SESSION": "false",
        "LOG_LEVEL": "INFO",
        "HEARTBEAT_INTERVAL": "3600",
        "DATABASE_URL": database(broker, "session"),
    }
    session = Process(args, cwd, env)
    session.wait_for(ready, timeout=30)
    session.kill()
    quiet = {**env, "LOG_LEVEL": "WARNING"}
    asyncio.run(publish_all(broker.port, 0, qos))
    empty = timed_start(args, cwd, {**quiet, "DATABASE_URL": database(broker, "empty")}, broker)
    asyncio.run(publish_all(broker.port, messages, qos))
    full = timed_start(args, cwd, {**quiet, "DATABASE_URL": database(broker, "full")}, broker)
    return full - empty


def database(broker: Broker, name: str) -> str:
    """A new SQLite file beside the broker's configuration, for one run of the example."""
    return f"sqlite:///{broker.config.parent / f'telemetry-{name}-{time.monotonic_ns()}.db'}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=20000)
    parser.add_argument("--trials", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        broker = Broker(Path(tmp), "max_queued_messages 0\nqueue_qos0_messages true\n")
        broker.start()
        try:
            for qos in (0, 1):
                rates: dict[str, list[float]] = {
                    "generated": [],
                    "hand-written": [],
                    "mosquitto_sub": [],
                }
                for index in range(args.trials):
                    for kind in rates:
                        seconds = 0.0
                        for attempt in range(3):  # a start-up outlier can exceed the whole run
                            seconds = trial(
                                kind,
                                broker,
                                args.messages,
                                qos,
                                f"bench-{qos}-{index}-{kind}-{attempt}",
                            )
                            if seconds > 0:
                                break
                        rates[kind].append(args.messages / seconds)
                report(qos, args, rates)
        finally:
            broker.stop()


def report(qos: int, args: argparse.Namespace, rates: dict[str, list[float]]) -> None:
    medians = {kind: statistics.median(values) for kind, values in rates.items()}
    print(f"QoS {qos}: {args.messages} telemetry messages, {args.trials} trials each, msg/s")
    for kind, median in medians.items():
        trials = ", ".join(f"{r:.0f}" for r in rates[kind])
        print(f"  {kind:<14} median {median:8.0f}   trials: {trials}")
    generated = medians["generated"]
    print(
        f"  ratio of medians, generated / hand-written: {generated / medians['hand-written']:.2f}"
    )
    print(
        f"  ratio of medians, generated / mosquitto_sub: {generated / medians['mosquitto_sub']:.2f}"
    )


if __name__ == "__main__":
    main()
