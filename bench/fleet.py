"""A fleet, not a device: telemetry from 1,000 device topics (and from 1, for comparison) through
a real mosquitto into a service generated from the IoT example's document, whose telemetry
handler reads the validated model and nothing else, against `mosquitto_sub` in the same run.

Throughput. Each trial pre-loads the broker: the receiver connects once with a persistent
session and is stopped, then the service's own simulator (`python -m fleet_bench simulate
--devices D`, whose rate is reported too) queues N telemetry messages for it, and the receiver is
started again; the clock runs from the first message it handles (the service's handler) or
prints (`mosquitto_sub`, read as it prints) to the last. Start-up is left out without
subtracting two noisy start-up times, which on a loaded machine differ by more than the N
messages take. The service's CPU time per message (first message to last) is printed too: it is
what the machine's load disturbs least.

Latency. The service runs subscribed while a raw-socket publisher sends QoS 1 telemetry over the
1,000 devices at a steady rate (a batch whenever the event loop wakes, about every millisecond),
each payload's `timestamp` set to the moment it is written; the handler records the wall clock
minus that timestamp. Rates: 25%, 50% and 75% of the service's median QoS 1 rate over 1,000
devices measured above, and 10,000 msg/s. The first second of each run is left out (warm-up).
Interleaved with the service's runs, the same publisher feeds a minimal receiver (`floor`: raw
socket, json.loads, PUBACK at once, its own process): the latency this machine and broker allow
at that moment, so that a figure above target can be told apart from a loaded machine.

    python bench/fleet.py [--messages N] [--trials K] [--seconds S] [--skip-throughput R]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import mqtt5

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.support import Broker, Process, free_port, run_cli, running_broker  # noqa: E402

PACKAGE = "fleet_bench"
FILTER = "devices/+/telemetry"
PERCENTILES = ("p50", "p99", "p999")
CONNECTIONS = 4  # of the latency publisher: mosquitto lets 20 QoS 1 messages be in flight on each
HANDLER = '''
"""Reads the validated model and nothing else; says when it has seen BENCH_EXPECT messages."""

from __future__ import annotations

import json
import os
import statistics
import time

from fleet_bench.context import Context
from fleet_bench.models import TelemetryPayload

EXPECT = int(os.environ.get("BENCH_EXPECT", "0"))
WARMUP = int(os.environ.get("BENCH_WARMUP", "0"))  # latency: messages left out at the start
LATENCY = os.environ.get("BENCH_LATENCY") == "1"
delays: list[float] = []
seen = 0
cpu = first = 0.0  # process time and clock at the first message


async def handle(message: TelemetryPayload, ctx: Context, *, device_id: str) -> None:
    global seen, cpu, first
    if LATENCY:
        delays.append(time.time() - message.timestamp.timestamp())
    else:
        message.sensors.temperature  # noqa: B018
    seen += 1
    if seen == 1:
        cpu, first = time.process_time(), time.perf_counter()
    if seen == EXPECT:
        cuts = statistics.quantiles(sorted(delays[WARMUP:]), n=1000) if LATENCY else [0.0] * 999
        summary = {"p50": cuts[499], "p99": cuts[989], "p999": cuts[998]} if LATENCY else {}
        summary["cpu_us"] = (time.process_time() - cpu) / max(1, seen - 1) * 1e6
        summary["seconds"] = time.perf_counter() - first
        print("BENCH " + json.dumps({"handled": seen, **summary}), flush=True)
'''


def simulate(project: Path, broker: Broker, count: int, devices: int, qos: int) -> float:
    """Queue `count` telemetry messages with the project's simulator; its rate, msg/s."""
    options = ["--count", str(count), "--devices", str(devices), "--qos", str(qos), "--seed", "1"]
    result = subprocess.run(
        [sys.executable, "-m", PACKAGE, "simulate", "--channel", "deviceTelemetry", *options],
        cwd=project,
        env={"PATH": "/usr/bin:/bin", "MQTT_HOST": "127.0.0.1", "MQTT_PORT": str(broker.port)},
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    return float(json.loads(result.stdout.strip().splitlines()[-1])["rate"])


def service_env(broker: Broker, client_id: str, **extra: str) -> dict[str, str]:
    return {
        "MQTT_HOST": "127.0.0.1",
        "MQTT_PORT": str(broker.port),
        "MQTT_CLIENT_ID": client_id,
        "MQTT_CLEAN_SESSION": "false",
        "LOG_LEVEL": "WARNING",
        **extra,
    }


def service_rate(project: Path, broker: Broker, client_id: str, expect: int) -> tuple[float, float]:
    """(msg/s from the service's first handled message to its last, CPU microseconds per message
    meanwhile), with `expect` messages queued for it."""
    env = service_env(broker, client_id, BENCH_EXPECT=str(expect))
    receiver = Process([sys.executable, "-m", PACKAGE], project, env)
    try:
        found = json.loads(receiver.wait_for(r"^BENCH (.*)$", timeout=600).group(1))
        return (expect - 1) / found["seconds"], found["cpu_us"]
    finally:
        receiver.kill()


def sub_rate(broker: Broker, client_id: str, qos: int, count: int) -> float:
    """msg/s from the first message `mosquitto_sub` prints to the last, read as it prints."""
    args = ["mosquitto_sub", "-h", "127.0.0.1", "-p", str(broker.port), "-q", str(qos)]
    args += ["-c", "-i", client_id, "-t", FILTER, "-C", str(count), "-W", "600"]
    with subprocess.Popen(args, stdout=subprocess.PIPE) as sub:
        assert sub.stdout is not None
        lines = before = 0  # before: printed by the time the first output was read
        first = 0.0
        while lines < count:
            chunk = sub.stdout.read1(1 << 16)
            if not chunk:
                raise SystemExit(f"mosquitto_sub ended after {lines} of {count} messages")
            lines += chunk.count(b"\n")
            if not first:
                first, before = time.perf_counter(), lines
        last = time.perf_counter()
    return (count - before) / (last - first)


def open_session(kind: str, project: Path, broker: Broker, client_id: str, qos: int) -> None:
    if kind == "mosquitto_sub":
        args = ["mosquitto_sub", "-h", "127.0.0.1", "-p", str(broker.port), "-q", str(qos)]
        subprocess.run([*args, "-c", "-i", client_id, "-t", FILTER, "-E"], check=True, timeout=30)
        return
    env = service_env(broker, client_id, LOG_LEVEL="INFO")
    session = Process([sys.executable, "-m", PACKAGE], project, env)
    try:
        session.wait_for("subscribed to", timeout=60)
    finally:
        session.kill()


def trial(
    kind: str, project: Path, broker: Broker, shape: tuple[int, int, int], client_id: str
) -> tuple[float, float, float]:
    """(msg/s of the receiver on `messages` queued, msg/s of the simulator that queued them,
    the service's CPU microseconds per message or 0)."""
    messages, devices, qos = shape
    open_session(kind, project, broker, client_id, qos)
    simulated = simulate(project, broker, messages, devices, qos)
    if kind == "mosquitto_sub":
        return sub_rate(broker, client_id, qos, messages), simulated, 0.0
    rate, cpu = service_rate(project, broker, client_id, messages)
    return rate, simulated, cpu


def throughput(project: Path, broker: Broker, args: argparse.Namespace) -> float:
    """Print the throughput table; return the service's median QoS 1 rate over 1,000 devices."""
    fleet_qos1 = 0.0
    simulator: list[float] = []
    for devices in (1000, 1):
        for qos in (1, 0):
            rates: dict[str, list[float]] = {"service": [], "mosquitto_sub": []}
            cpus: list[float] = []
            for index in range(args.trials):
                for kind, values in rates.items():
                    client_id = f"bench-{devices}-{qos}-{index}-{kind}"
                    rate, simulated, cpu = trial(
                        kind, project, broker, (args.messages, devices, qos), client_id
                    )
                    values.append(rate)
                    simulator.append(simulated)
                    cpus += [cpu] if kind == "service" else []
            service = statistics.median(rates["service"])
            sub = statistics.median(rates["mosquitto_sub"])
            trials = {kind: ", ".join(f"{r:.0f}" for r in values) for kind, values in rates.items()}
            print(
                f"{devices:>5} device topic(s), QoS {qos}: service {service:7.0f} msg/s, "
                f"mosquitto_sub {sub:7.0f} msg/s, ratio {service / sub:.2f}; service CPU "
                f"{statistics.median(cpus):.1f} us/msg   "
                f"(trials: service {trials['service']}; mosquitto_sub {trials['mosquitto_sub']})",
                flush=True,
            )
            if devices == 1000 and qos == 1:
                fleet_qos1 = service
    print(
        f"simulator (queueing {args.messages} messages, 1 connection): median "
        f"{statistics.median(simulator):.0f} msg/s over {len(simulator)} runs",
        flush=True,
    )
    return fleet_qos1


def telemetry(device: int, stamp: str) -> bytes:
    return (
        f'{{"deviceId":"sensor{device:03d}","timestamp":"{stamp}","sensors":'
        f'{{"temperature":21.5,"humidity":40.0,"battery":90.0}},'
        f'"location":{{"latitude":37.7749,"longitude":-122.4194}}}}'
    ).encode()


class Link:
    """One publisher connection: QoS 1 PUBLISH packets out, PUBACKs counted in."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.quota = self.receive_max = 0
        self.last_id = 0
        self.buffer = bytearray()

    @classmethod
    async def open(cls, port: int, client_id: str) -> Link:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        link = cls(reader, writer)
        writer.write(mqtt5.ConnectPacket(client_id).write())
        (connack,) = await link.packets()
        link.quota = link.receive_max = connack.receive_max
        return link

    async def close(self) -> None:
        """Once every message is acknowledged: closing with PUBACKs unread would reset the
        connection, and the broker would drop what it had not read yet."""
        async with asyncio.timeout(30):
            while self.quota < self.receive_max:
                await asyncio.sleep(0.001)
        self.writer.write(mqtt5.DisconnectPacket().write())
        self.writer.close()
        await self.writer.wait_closed()

    async def packets(self) -> list[mqtt5.Packet]:
        found: list[mqtt5.Packet] = []
        while not found:
            data = await self.reader.read(65536)
            if not data:
                raise ConnectionError("the broker closed the publisher's connection")
            self.buffer += data
            while self.buffer:
                try:
                    packet, size = mqtt5.read(bytes(self.buffer))
                except IndexError:
                    break
                del self.buffer[:size]
                found.append(packet)
        return found

    async def count_acks(self) -> None:
        while True:
            packets = await self.packets()  # before reading the quota, which publish() changes
            self.quota += sum(isinstance(p, mqtt5.PubAckPacket) for p in packets)

    def publish(self, topics: list[bytes], first: int, count: int, stamp: str) -> None:
        out = []
        for n in range(first, first + count):
            self.last_id = self.last_id % 65535 + 1
            device = n % len(topics)
            out.append(
                mqtt5.PublishPacket(
                    topics[device].decode(),
                    telemetry(device, stamp),
                    qos=mqtt5.QoS.AT_LEAST_ONCE,
                    packet_id=self.last_id,
                ).write()
            )
        self.quota -= count
        self.writer.write(b"".join(out))


async def publish_steadily(port: int, rate: float, total: int) -> float:
    """Send `total` QoS 1 messages over 1,000 device topics at `rate`; the rate achieved."""
    topics = [f"devices/sensor{d:03d}/telemetry".encode() for d in range(1000)]
    links = [await Link.open(port, f"bench-publisher-{n}") for n in range(CONNECTIONS)]
    readers = [asyncio.create_task(link.count_acks()) for link in links]
    loop = asyncio.get_running_loop()
    sent = 0
    started = loop.time()
    try:
        while sent < total:
            due = min(total, int((loop.time() - started) * rate) + 1)
            stamp = datetime.now(UTC).isoformat()
            for link in links:
                count = min(due - sent, link.quota)
                if count > 0:
                    link.publish(topics, sent, count, stamp)
                    sent += count
            await asyncio.sleep(0.001)
        elapsed = loop.time() - started
        for link in links:
            await link.close()
    finally:
        for reader in readers:
            reader.cancel()
    return total / elapsed


def percentiles(delays: list[float]) -> dict[str, float]:
    cuts = statistics.quantiles(sorted(delays), n=1000)
    return {"p50": cuts[499], "p99": cuts[989], "p999": cuts[998]}


async def floor_receiver(port: int, total: int, warmup: int) -> None:
    """The latency floor of this machine and broker: a minimal receiver (raw socket, json.loads,
    PUBACK at once), run as its own process like the service. Prints what the handler prints."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    link = Link(reader, writer)
    writer.write(mqtt5.ConnectPacket(f"bench-floor-{port}-{total}").write())
    topic = mqtt5.TopicFilter(FILTER, max_qos=mqtt5.QoS.AT_LEAST_ONCE)
    writer.write(mqtt5.SubscribePacket(1, [topic]).write())
    delays: list[float] = []
    cpu = 0.0
    while len(delays) < total:
        for packet in await link.packets():
            if isinstance(packet, mqtt5.SubAckPacket):
                print("subscribed to", FILTER, flush=True)
            elif isinstance(packet, mqtt5.PublishPacket):
                stamp = json.loads(packet.payload)["timestamp"]
                delays.append(time.time() - datetime.fromisoformat(stamp).timestamp())
                writer.write(mqtt5.PubAckPacket(packet.packet_id or 0).write())
                cpu = cpu or time.process_time()
    cpu_us = (time.process_time() - cpu) / (total - 1) * 1e6
    print("BENCH " + json.dumps({**percentiles(delays[warmup:]), "cpu_us": cpu_us}), flush=True)


def latency(
    kind: str, project: Path, broker: Broker, rate: float, seconds: float
) -> tuple[dict[str, float], float]:
    """(p50/p99/p99.9 in seconds, the rate the publisher achieved) of one run."""
    total, warmup = int(rate * seconds), int(rate)
    if kind == "floor":
        args = [sys.executable, __file__, "--floor", str(broker.port), str(total), str(warmup)]
        receiver = Process(args, REPO)
    else:
        env = service_env(
            broker,
            f"bench-latency-{free_port()}",
            MQTT_CLEAN_SESSION="true",
            LOG_LEVEL="INFO",  # for "subscribed to"; nothing is logged per message
            BENCH_LATENCY="1",
            BENCH_EXPECT=str(total),
            BENCH_WARMUP=str(warmup),
        )
        receiver = Process([sys.executable, "-m", PACKAGE], project, env)
    try:
        receiver.wait_for("subscribed to", timeout=60)
        achieved = asyncio.run(publish_steadily(broker.port, rate, total))
        found = receiver.wait_for(r"^BENCH (.*)$", timeout=600)
        return json.loads(found.group(1)), achieved
    finally:
        receiver.kill()


def latencies(project: Path, broker: Broker, top: float, args: argparse.Namespace) -> None:
    print(
        f"latency, publish to handler, QoS 1, 1,000 devices, {args.trials} runs of {args.seconds} s"
        " each, medians in ms (floor: a minimal raw-socket receiver, same runs interleaved)"
    )
    for label, rate in (
        ("25% of max", top * 0.25),
        ("50% of max", top * 0.5),
        ("75% of max", top * 0.75),
        ("10,000/s", 10_000.0),
    ):
        runs: dict[str, list[tuple[dict[str, float], float]]] = {"service": [], "floor": []}
        for _ in range(args.trials):
            for kind, found in runs.items():
                found.append(latency(kind, project, broker, rate, args.seconds))
        sent = statistics.median(run[1] for found in runs.values() for run in found)
        print(f"  {label:>11} ({rate:6.0f}/s, sent at {sent:6.0f}/s):", flush=True)
        for kind, found in runs.items():
            median = {k: statistics.median(run[0][k] for run in found) * 1000 for k in PERCENTILES}
            each = "; ".join(
                "/".join(f"{run[0][k] * 1000:.2f}" for k in PERCENTILES) for run in found
            )
            cpu = statistics.median(run[0]["cpu_us"] for run in found)
            print(
                f"    {kind:<8} p50 {median['p50']:6.2f}  p99 {median['p99']:6.2f}  "
                f"p99.9 {median['p999']:6.2f}  CPU {cpu:4.1f} us/msg  (runs p50/p99/p99.9: {each})",
                flush=True,
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=30_000)
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5.0, help="of each latency run")
    parser.add_argument(
        "--skip-throughput", type=float, default=0.0, metavar="RATE",
        help="only latency, taking RATE msg/s as the maximum",
    )  # fmt: skip
    parser.add_argument("--floor", nargs=3, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.floor:
        asyncio.run(floor_receiver(*args.floor))
        return
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        project = tmp / "project"
        spec = REPO / "examples" / "mqtt" / "asyncapi.yaml"
        generated = run_cli("generate", str(spec), "--output", str(project), "--package", PACKAGE)
        if generated.returncode != 0:
            raise SystemExit(generated.stderr)
        (project / PACKAGE / "handlers" / "device_telemetry.py").write_text(HANDLER)
        with running_broker(tmp, "max_queued_messages 0\nqueue_qos0_messages true\n") as broker:
            top = args.skip_throughput or throughput(project, broker, args)
            latencies(project, broker, top, args)


if __name__ == "__main__":
    main()
