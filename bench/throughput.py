"""Telemetry messages per second from a fleet (by default 1,000 devices, each on its own topic,
every reading with its own timestamp) through a real mosquitto at QoS 1, measured in the same run,
interleaved:

- the IoT example (`python -m iot_device_management_service`) with its defaults, storing every
  reading in SQLite (its default database), then in PostgreSQL (`DATABASE_URL`; skipped, saying
  so, when PostgreSQL is not installed);
- a minimal hand-written aiomqtt + pydantic receiver (bench/baseline_receiver.py) that validates
  and stores nothing;
- `mosquitto_sub`, the broker's own C client, which only prints.

So that the publisher's speed cannot cap the figures, each trial pre-loads the broker: the receiver
connects once with a persistent session and is stopped; then messages are queued for it and it is
started again. The clock runs from its start until it is done: the example when its database holds
every reading (counted with a query every 20 ms), the hand-written receiver when it sends the
CriticalAlert for the last reading (85 °C; it handles one message at a time, in order),
mosquitto_sub when it has printed the last message (`-C`). This is done twice, with one reading
queued and with N before it; the difference of the two times is what the N readings took,
start-up excluded. Each example trial has a database of its own, which must end with exactly one
row per reading. Receivers run at LOG_LEVEL=WARNING, as in production.

    python bench/throughput.py [--messages N] [--devices D] [--trials K] [--set NAME=VALUE ...]

`--set` passes a setting to the example (e.g. `--set MAX_CONCURRENT_HANDLERS=64`), to see what
one moves.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiomqtt
import asyncpg

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.postgres import Postgres, binaries  # noqa: E402
from tests.support import Broker, Process, Subscriber, wait_until  # noqa: E402

EXAMPLE = REPO / "examples" / "mqtt"
FILTER = "devices/+/telemetry"
TIMEOUT = 300.0


class Fleet:
    """The readings of one trial: device `i % devices`, a second apart per device, the last
    hot. Timestamps are an hour old (inside the example's retention) and never repeat."""

    def __init__(self, devices: int) -> None:
        self.devices = devices
        self._start = datetime.now(UTC) - timedelta(hours=1)

    def messages(self, count: int) -> list[tuple[str, bytes]]:
        out = [self._message(i, 20.0 + i % 30) for i in range(count)]
        out.append(self._message(count, 85.0))
        self._start += timedelta(seconds=count // self.devices + 2)
        return out

    def _message(self, index: int, temperature: float) -> tuple[str, bytes]:
        device = f"sensor-{index % self.devices:05d}"
        moment = self._start + timedelta(seconds=index // self.devices)
        body = {
            "deviceId": device,
            "timestamp": moment.isoformat().replace("+00:00", "Z"),
            "sensors": {"temperature": temperature, "humidity": 40.0, "battery": 90.0},
            "location": {"latitude": 37.7749, "longitude": -122.4194},
            "metadata": {"firmwareVersion": "1.2.3", "model": f"m{index % 7}"},
        }
        return f"devices/{device}/telemetry", json.dumps(body).encode()


async def _publish(port: int, messages: list[tuple[str, bytes]]) -> None:
    quiet = logging.getLogger("bench.publisher")
    quiet.setLevel(logging.ERROR)
    async with aiomqtt.Client("127.0.0.1", port, logger=quiet) as client:
        for first in range(0, len(messages), 100):
            chunk = messages[first : first + 100]
            await asyncio.gather(*(client.publish(t, p, qos=1) for t, p in chunk))


def publish(broker: Broker, messages: list[tuple[str, bytes]]) -> None:
    asyncio.run(_publish(broker.port, messages))


class Database:
    """A fresh database for one example trial, and its row count."""

    def __init__(self, url: str, count: Callable[[], int]) -> None:
        self.url, self.count = url, count


def sqlite_databases(folder: Path) -> Iterator[Database]:
    for index in range(1_000_000):
        path = folder / f"fleet-{index}.db"

        def count(path: Path = path) -> int:
            try:
                with sqlite3.connect(path, timeout=5) as db:
                    return int(db.execute("SELECT count(*) FROM telemetry").fetchone()[0])
            except sqlite3.OperationalError:
                return 0  # the table is not there yet

        yield Database(f"sqlite:///{path}", count)


def postgres_databases(server: Postgres) -> Iterator[Database]:
    """Counted over one asyncpg connection (a psql per query would load the machine)."""
    loop = asyncio.new_event_loop()
    try:
        for index in range(1_000_000):
            url = server.create_database(f"fleet{index}")
            connection = loop.run_until_complete(asyncpg.connect(url))

            def count(connection: asyncpg.Connection = connection) -> int:
                query = "SELECT count(*) FROM telemetry"
                try:
                    return int(loop.run_until_complete(connection.fetchval(query)))
                except asyncpg.UndefinedTableError:
                    return 0

            yield Database(url, count)
            loop.run_until_complete(connection.close())
    finally:
        loop.close()


def example_run(env: dict[str, str], database: Database, rows: int) -> float:
    """Seconds from starting the example to `rows` rows in its database."""
    started = time.perf_counter()
    receiver = Process([sys.executable, "-m", "iot_device_management_service"], EXAMPLE, env)
    try:
        wait_until(lambda: database.count() >= rows, TIMEOUT, f"{rows} rows", interval=0.02)
        return time.perf_counter() - started
    finally:
        receiver.kill()


def example_trial(
    broker: Broker, fleet: Fleet, database: Database, messages: int, env: dict[str, str]
) -> float:
    env = {**env, "DATABASE_URL": database.url}
    session = Process([sys.executable, "-m", "iot_device_management_service"], EXAMPLE, env)
    session.wait_for("connected to", timeout=30)
    session.kill()
    quiet = {**env, "LOG_LEVEL": "WARNING"}
    publish(broker, fleet.messages(0))
    empty = example_run(quiet, database, 1)
    publish(broker, fleet.messages(messages))
    full = example_run(quiet, database, messages + 2)
    stored = database.count()
    assert stored == messages + 2, f"{stored} rows for {messages + 2} readings"
    return full - empty


def baseline_run(env: dict[str, str], broker: Broker) -> float:
    """Seconds from starting the hand-written receiver to its alert for the last reading."""
    alerts = Subscriber(broker, "alerts/critical")
    started = time.perf_counter()
    receiver = Process([sys.executable, str(REPO / "bench" / "baseline_receiver.py")], REPO, env)
    try:
        alerts.message("alerts/critical", timeout=TIMEOUT)
        return time.perf_counter() - started
    finally:
        receiver.kill()
        alerts.kill()


def baseline_trial(broker: Broker, fleet: Fleet, messages: int, env: dict[str, str]) -> float:
    session = Process([sys.executable, str(REPO / "bench" / "baseline_receiver.py")], REPO, env)
    session.wait_for("connected", timeout=30)
    session.kill()
    publish(broker, fleet.messages(0))
    empty = baseline_run(env, broker)
    publish(broker, fleet.messages(messages))
    return baseline_run(env, broker) - empty


def sub_seconds(broker: Broker, count: int, client_id: str) -> float:
    """Seconds mosquitto_sub takes, from its start, to print `count` queued messages."""
    args = ["mosquitto_sub", "-h", "127.0.0.1", "-p", str(broker.port), "-q", "1", "-c"]
    args += ["-i", client_id, "-t", FILTER, "-C", str(count), "-W", str(int(TIMEOUT))]
    started = time.perf_counter()
    subprocess.run(args, stdout=subprocess.DEVNULL, check=True, timeout=TIMEOUT + 10)
    return time.perf_counter() - started


def sub_trial(broker: Broker, fleet: Fleet, messages: int, client_id: str) -> float:
    session = ["mosquitto_sub", "-h", "127.0.0.1", "-p", str(broker.port), "-q", "1", "-c"]
    subprocess.run([*session, "-i", client_id, "-t", FILTER, "-E"], check=True, timeout=30)
    publish(broker, fleet.messages(0))
    empty = sub_seconds(broker, 1, client_id)
    publish(broker, fleet.messages(messages))
    return sub_seconds(broker, messages + 1, client_id) - empty


def settings(broker: Broker, client_id: str, extra: dict[str, str]) -> dict[str, str]:
    return {
        "MQTT_HOST": "127.0.0.1",
        "MQTT_PORT": str(broker.port),
        "MQTT_CLIENT_ID": client_id,
        "MQTT_CLEAN_SESSION": "false",  # what the hand-written receiver reads
        "LOG_LEVEL": "INFO",
        "HEARTBEAT_INTERVAL": "3600",
        **extra,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=20000)
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE")
    args = parser.parse_args()
    extra = dict(item.split("=", 1) for item in args.set)
    fleet = Fleet(args.devices)
    with tempfile.TemporaryDirectory() as tmp:
        broker = Broker(Path(tmp), "max_queued_messages 0\n")
        broker.start()
        bin_dir = binaries()
        server = Postgres(bin_dir) if bin_dir is not None else None
        if server is not None:
            server.start()
        try:
            kinds: dict[str, Callable[[str], float]] = {
                "example, SQLite": _example(
                    broker, fleet, sqlite_databases(Path(tmp)), args, extra
                ),
            }
            if server is not None:
                pg = postgres_databases(server)
                kinds["example, PostgreSQL"] = _example(broker, fleet, pg, args, extra)
            kinds["hand-written"] = lambda cid: baseline_trial(
                broker, fleet, args.messages, settings(broker, cid, {})
            )
            kinds["mosquitto_sub"] = lambda cid: sub_trial(broker, fleet, args.messages, cid)
            rates: dict[str, list[float]] = {kind: [] for kind in kinds}
            for index in range(args.trials):
                for number, (kind, trial) in enumerate(kinds.items()):
                    seconds = trial(f"bench-{index}-{number}")
                    rates[kind].append(args.messages / seconds)
            report(args, extra, rates, server is not None)
        finally:
            broker.stop()
            if server is not None:
                server.remove()


def _example(
    broker: Broker,
    fleet: Fleet,
    databases: Iterator[Database],
    args: argparse.Namespace,
    extra: dict[str, str],
) -> Callable[[str], float]:
    def trial(client_id: str) -> float:
        env = settings(broker, client_id, extra)
        return example_trial(broker, fleet, next(databases), args.messages, env)

    return trial


def report(
    args: argparse.Namespace, extra: dict[str, str], rates: dict[str, list[float]], pg: bool
) -> None:
    with open("/proc/loadavg") as loadavg:
        load = " ".join(loadavg.read().split()[:3])
    told = ", ".join(f"{k}={v}" for k, v in extra.items()) or "its defaults"
    print(
        f"QoS 1: {args.messages} telemetry readings from {args.devices} devices, "
        f"{args.trials} trials each, msg/s; the example with {told}; load average {load}"
    )
    if not pg:
        print("  (PostgreSQL is not installed: scripts/setup.sh installs it)")
    medians = {kind: statistics.median(values) for kind, values in rates.items()}
    for kind, median in medians.items():
        trials = ", ".join(f"{r:.0f}" for r in rates[kind])
        ratio = median / medians["mosquitto_sub"]
        print(f"  {kind:<20} median {median:8.0f}   {ratio:5.2f}x mosquitto_sub   trials: {trials}")


if __name__ == "__main__":
    main()
