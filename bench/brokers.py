"""Throughput of a generated service on each broker of the test matrix (mosquitto, aedes 2,
RabbitMQ's MQTT plugin), with each MQTT version the broker speaks, and over WebSockets on aedes,
against `mosquitto_sub` on the same broker in the same run (aedes and RabbitMQ have no
command-line subscriber of their own; mosquitto_sub speaks to both).

Each trial pre-loads the broker: the receiver connects once with a persistent session and is
stopped, `mosquitto_pub -l` queues N QoS 1 jobs for it, and the receiver is started again; the
clock runs from the first message it handles (the service's handler) or prints (mosquitto_sub)
to the last, so start-up is left out. Medians of the trials; the ratio is service / mosquitto_sub
within one broker; the load average is printed with the figures. First it prints what the MQTT 5
engine's WebSocket framing costs per frame, apart from any socket (`--framing-only`: just that).

    python bench/brokers.py [--messages N] [--trials K] [--brokers mosquitto,aedes,rabbitmq]
                            [--framing-only]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.matrix import Mosquitto, running_aedes, running_rabbitmq  # noqa: E402
from tests.support import Process, run_cli  # noqa: E402

PACKAGE = "delivery_test"
SPEC = REPO / "tests" / "specs" / "delivery-3.0.yaml"
HANDLER = '''
"""Says when it has seen BENCH_EXPECT jobs, and how long from the first to the last."""

import json
import os
import time

from delivery_test.context import Context
from delivery_test.models import JobPayload

EXPECT = int(os.environ["BENCH_EXPECT"])
seen = 0
first = 0.0


async def handle(message: JobPayload, ctx: Context, *, worker: str) -> None:
    global seen, first
    seen += 1
    if seen == 1:
        first = time.perf_counter()
    if seen == EXPECT:
        print("BENCH " + json.dumps({"seconds": time.perf_counter() - first}), flush=True)
'''


def project(folder: Path) -> Path:
    result = run_cli("generate", str(SPEC), "--output", str(folder))
    if result.returncode:
        raise SystemExit(result.stderr)
    (folder / PACKAGE / "handlers" / "jobs.py").write_text(HANDLER)
    return folder


def queue(broker: Any, count: int) -> None:
    lines = "".join(f'{{"n": {n}}}\n' for n in range(count))
    subprocess.run(
        ["mosquitto_pub", "-h", "127.0.0.1", "-p", str(broker.port), "-q", "1",
         "-t", "jobs/bench", "-l"],
        input=lines, text=True, check=True, timeout=600,
    )  # fmt: skip


def service_env(broker: Any, cell: dict[str, str], client_id: str, **extra: str) -> dict[str, str]:
    port = broker.ws_port if cell.get("transport") == "websockets" else broker.port
    return {
        "MQTT_HOST": "127.0.0.1",
        "MQTT_PORT": str(port),
        "MQTT_CLIENT_ID": client_id,
        "MQTT_CLEAN_SESSION": "false",
        "MQTT_PROTOCOL": cell["protocol"],
        "MQTT_TRANSPORT": cell.get("transport", "tcp"),
        "LOG_LEVEL": "INFO",
        **extra,
    }


def service_rate(folder: Path, broker: Any, cell: dict[str, str], client_id: str, n: int) -> float:
    session = Process(
        [sys.executable, "-m", PACKAGE],
        folder,
        service_env(broker, cell, client_id, BENCH_EXPECT="0"),
    )
    try:
        session.wait_for("subscribed to", timeout=60)
    finally:
        session.terminate()
    queue(broker, n)
    env = service_env(broker, cell, client_id, BENCH_EXPECT=str(n), LOG_LEVEL="WARNING")
    receiver = Process([sys.executable, "-m", PACKAGE], folder, env)
    try:
        found = json.loads(receiver.wait_for(r"^BENCH (.*)$", timeout=600).group(1))
    finally:
        receiver.kill()
    return (n - 1) / found["seconds"]


def sub_rate(broker: Any, client_id: str, n: int) -> float:
    """msg/s from the first message `mosquitto_sub` prints to the last, read as it prints."""
    args = ["mosquitto_sub", "-h", "127.0.0.1", "-p", str(broker.port), "-q", "1", "-c",
            "-i", client_id, "-t", "jobs/+"]  # fmt: skip
    subprocess.run([*args, "-E"], check=True, timeout=30)
    queue(broker, n)
    with subprocess.Popen([*args, "-C", str(n), "-W", "600"], stdout=subprocess.PIPE) as sub:
        assert sub.stdout is not None
        lines = before = 0
        first = 0.0
        while lines < n:
            chunk = sub.stdout.read1(1 << 16)
            if not chunk:
                raise SystemExit(f"mosquitto_sub ended after {lines} of {n} messages")
            lines += chunk.count(b"\n")
            if not first:
                first, before = time.perf_counter(), lines
        last = time.perf_counter()
    return (n - before) / (last - first)


@contextlib.contextmanager
def started(name: str, folder: Path) -> Iterator[Any]:
    if name == "aedes":
        with running_aedes(folder) as aedes:
            yield aedes
    elif name == "rabbitmq":
        with running_rabbitmq() as rabbit:
            yield rabbit
    else:
        broker = Mosquitto(folder)
        broker.start()
        try:
            yield broker
        finally:
            broker.kill()


CELLS = {
    "mosquitto": [{"protocol": "5"}, {"protocol": "3.1.1"}],
    "aedes": [
        {"protocol": "5"},
        {"protocol": "3.1.1"},
        {"protocol": "5", "transport": "websockets"},
        {"protocol": "3.1.1", "transport": "websockets"},
    ],
    "rabbitmq": [{"protocol": "3.1.1"}],
}


def framing_cost(frames: int = 50_000) -> None:
    """Microseconds per WebSocket frame read (a QoS 1 PUBLISH each), one and 50 to a read."""
    import asyncio
    import base64
    import hashlib

    import mqtt5

    from generator.runtime.websocket import WebSocketProtocol

    class Sink(asyncio.Protocol):
        def data_received(self, data: bytes) -> None:
            return None

    class Socket(asyncio.Transport):
        written = b""

        def write(self, data: Any) -> None:
            self.written = bytes(data)

        def is_closing(self) -> bool:
            return False

    async def measure() -> None:
        protocol = WebSocketProtocol(Sink, "127.0.0.1", 1, "/mqtt")
        socket = Socket()
        protocol.connection_made(socket)
        key = socket.written.split(b"Sec-WebSocket-Key: ")[1].split(b"\r\n")[0]
        accept = base64.b64encode(
            hashlib.sha1(key + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest()
        )
        protocol.data_received(
            b"HTTP/1.1 101 Switching Protocols\r\nSec-WebSocket-Accept: " + accept
            + b"\r\nSec-WebSocket-Protocol: mqtt\r\n\r\n"
        )  # fmt: skip
        packet = mqtt5.PublishPacket(
            "jobs/bench", b'{"n": 12345}', qos=mqtt5.QoS.AT_LEAST_ONCE, packet_id=1
        ).write()
        frame = bytes([0x82, len(packet)]) + packet
        for batch in (1, 50):
            data = frame * batch
            start = time.perf_counter()
            for _ in range(frames // batch):
                protocol.data_received(data)
            took = time.perf_counter() - start
            cost = took / frames * 1e6
            print(f"WebSocket framing, {batch:>2} frame(s) per read: {cost:.2f} us/frame")

    asyncio.run(measure())


def load() -> str:
    return "load average " + ", ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--brokers", default="mosquitto,aedes,rabbitmq")
    parser.add_argument("--framing-only", action="store_true")
    args = parser.parse_args()
    framing_cost()
    if args.framing_only:
        return
    with tempfile.TemporaryDirectory() as tmp:
        folder = project(Path(tmp) / "project")
        for name in args.brokers.split(","):
            workdir = Path(tmp) / name
            workdir.mkdir()
            with started(name, workdir) as broker:
                print(f"{name}: {args.messages} queued QoS 1 jobs, {args.trials} trials; {load()}")
                subs = [
                    sub_rate(broker, f"sub-{name}-{t}", args.messages) for t in range(args.trials)
                ]
                sub = statistics.median(subs)
                trials = ", ".join(f"{r:.0f}" for r in subs)
                print(f"  mosquitto_sub             {sub:7.0f} msg/s  ({trials})")
                for cell in CELLS[name]:
                    label = f"MQTT {cell['protocol']}" + (
                        " over ws" if cell.get("transport") else ""
                    )
                    rates = [
                        service_rate(
                            folder,
                            broker,
                            cell,
                            f"svc-{name}-{label}-{t}".replace(" ", ""),
                            args.messages,
                        )
                        for t in range(args.trials)
                    ]
                    rate = statistics.median(rates)
                    print(
                        f"  service {label:<18}{rate:7.0f} msg/s  ratio {rate / sub:.2f}  "
                        f"({', '.join(f'{r:.0f}' for r in rates)}); {load()}",
                        flush=True,
                    )


if __name__ == "__main__":
    main()
