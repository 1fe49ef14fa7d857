"""Where the time of one received message goes, without a broker: CPU microseconds per message
from PUBLISH bytes into the MQTT 5 engine to PUBACK bytes out, through the dispatcher and the
generated service's `handle_message` with a telemetry handler that reads the model, over 1 topic
and over 1,000; then the same with `handle_message` replaced by a no-op (the runtime's share);
then single steps timed alone (the codec's read, building an `Incoming`, validation).

The project is generated from the IoT example's document into a temporary folder; start-up
objects are frozen out of the garbage collector's way as `Service.run` does. Bytes are fed in
200 kB reads, as a socket delivers a backlog, and reading pauses at the mark as it would. CPU
time (not wall time), medians: what a machine shared with other work disturbs least.

    python bench/message_path.py [--messages N] [--runs K]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib
import json
import statistics
import sys
import tempfile
import time
import timeit
from pathlib import Path
from typing import Any

import mqtt5

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.support import run_cli  # noqa: E402

PACKAGE = "path_bench"
CHUNK = 200_000
HANDLER = '''
"""Reads the validated model and nothing else."""

from __future__ import annotations

from path_bench.context import Context
from path_bench.models import TelemetryPayload


async def handle(message: TelemetryPayload, ctx: Context, *, device_id: str) -> None:
    message.sensors.temperature  # noqa: B018
'''


def body(index: int, topics: int) -> bytes:
    return json.dumps(
        {
            "deviceId": f"sensor{index % topics:03d}",
            "timestamp": f"2026-01-01T{index // 3600 % 24:02d}:{index // 60 % 60:02d}:00Z",
            "sensors": {"temperature": 20.0 + index % 30, "humidity": 40.0, "battery": 90.0},
            "location": {"latitude": 37.7749, "longitude": -122.4194},
            "metadata": {"firmwareVersion": "1.2.3", "model": f"m{index % 7}"},
        }
    ).encode()


def stream(messages: int, topics: int) -> bytes:
    """`messages` QoS 1 PUBLISH packets over `topics` device topics, as the broker sends them."""
    return b"".join(
        mqtt5.PublishPacket(
            f"devices/sensor{n % topics:03d}/telemetry",
            body(n, topics),
            qos=mqtt5.QoS.AT_LEAST_ONCE,
            packet_id=n % 65535 + 1,
        ).write()
        for n in range(messages)
    )


class Sink(asyncio.Transport):
    """Takes what the engine writes (the PUBACKs) and follows its pause and resume."""

    def __init__(self) -> None:
        super().__init__()
        self.written = 0
        self.reading = asyncio.Event()
        self.reading.set()

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written += len(data)

    def is_closing(self) -> bool:
        return False

    def pause_reading(self) -> None:
        self.reading.clear()

    def resume_reading(self) -> None:
        self.reading.set()

    def abort(self) -> None:
        pass


async def one_run(modules: dict[str, Any], data: bytes, messages: int, noop: bool) -> float:
    """CPU seconds to take `data` in, handle every message and acknowledge it."""
    service = modules["service"].Service(modules["settings"].Settings(log_level="WARNING"))
    async with service.living():  # the lifespan's state, as Service.run has it
        return await _timed(service, modules, data, messages, noop)


async def _timed(
    service: Any, modules: dict[str, Any], data: bytes, messages: int, noop: bool
) -> float:
    # the one channel's counters (reading the totals would cost the polling loop below)
    counts = service.metrics.channel("(bench)" if noop else "deviceTelemetry")
    if noop:

        async def nothing(incoming: Any) -> None:
            counts.handled += 1

        service.mqtt.dispatcher._handle = nothing
    mqtt = service.mqtt
    connection = modules["v5"].Mqtt5Connection(mqtt.config, mqtt._session, mqtt._deliver)
    sink = Sink()
    connection.connection_made(sink)
    mqtt._connection = connection
    started = time.process_time()
    for offset in range(0, len(data), CHUNK):
        await sink.reading.wait()
        connection.data_received(data[offset : offset + CHUNK])
        await asyncio.sleep(0)
    for _ in range(1_000_000):
        if counts.handled == messages and sink.written == 4 * messages:
            break
        await asyncio.sleep(0)
    else:
        raise SystemExit("not every message was handled and acknowledged")
    return time.process_time() - started


def steps(modules: dict[str, Any]) -> dict[str, float]:
    """Microseconds of single steps of the path, each timed alone."""
    packet_bytes = stream(1, 1)
    packet, _ = mqtt5.read(packet_bytes)
    incoming_type = modules["message"].Incoming
    decode = modules["routes"].ROUTES[0].decode
    payload = body(1, 1)

    def incoming() -> Any:
        return incoming_type(
            packet.topic,
            packet.payload,
            int(packet.qos),
            packet.retain,
            dict(packet.user_properties),
            packet.response_topic,
            packet.correlation_data,
            packet.content_type,
        )

    timed = {
        "codec read of one PUBLISH": lambda: mqtt5.read(packet_bytes),
        "Incoming from the packet": incoming,
        "validation into the model": lambda: decode(payload),
        "PUBACK from the codec": lambda: mqtt5.PubAckPacket(7).write(),
    }
    return {
        name: statistics.median(timeit.repeat(step, number=20_000, repeat=5)) / 20_000 * 1e6
        for name, step in timed.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=30_000)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as name:
        project = Path(name) / "project"
        spec = REPO / "examples" / "mqtt" / "asyncapi.yaml"
        generated = run_cli("generate", str(spec), "--output", str(project), "--package", PACKAGE)
        if generated.returncode != 0:
            raise SystemExit(generated.stderr)
        (project / PACKAGE / "handlers" / "device_telemetry.py").write_text(HANDLER)
        sys.path.insert(0, str(project))
        modules = {
            name: importlib.import_module(f"{PACKAGE}.{module}")
            for name, module in (
                ("service", "service"),
                ("settings", "settings"),
                ("routes", "routes"),
                ("v5", "_runtime.v5"),
                ("message", "_runtime.message"),
            )
        }
        modules["service"].Service()  # everything start-up makes, then frozen as Service.run does
        gc.freeze()
        print(f"CPU us per message, {args.messages} QoS 1 messages, median of {args.runs} runs")
        for topics in (1, 1000):
            data = stream(args.messages, topics)
            for noop, what in ((False, "whole path"), (True, "runtime only (no-op handling)")):
                runs = [
                    asyncio.run(one_run(modules, data, args.messages, noop))
                    for _ in range(args.runs)
                ]
                each = statistics.median(runs) / args.messages * 1e6
                print(f"  {topics:>5} topic(s), {what:<30} {each:6.2f}", flush=True)
        print("single steps, us each")
        for step, micros in steps(modules).items():
            print(f"  {step:<37} {micros:6.2f}")


if __name__ == "__main__":
    main()
