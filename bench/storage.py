"""Telemetry rows per second that the IoT example's store commits (examples/mqtt/.../storage.py),
SQLite and PostgreSQL, for a fleet: readings from 1,000 devices, each with its own timestamp, so
every row is new. C handlers wait on the store at once, each awaiting the commit of its reading
before it takes the next, as a handler that awaits `add_telemetry` would (C is at most the number
of device topics with a message waiting, MAX_CONCURRENT_HANDLERS and MAX_PENDING_MESSAGES). `all`
puts every reading in at once: what the example's telemetry handler does, since it queues its
reading and leaves the acknowledgement to wait for the commit (`ctx.ack_after`); in the service
MAX_PENDING_MESSAGES bounds how many are queued. No MQTT here: this is the database side of the
budget.
PostgreSQL is skipped, with a note, when its binaries are not installed (scripts/setup.sh does).

    python bench/storage.py [--rows N] [--devices D] [--handlers 16,256,1000,all] [--trials K]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "examples" / "mqtt")]

from iot_device_management_service.models import TelemetryPayload  # noqa: E402
from iot_device_management_service.storage import Store  # noqa: E402

from tests.postgres import Postgres, binaries  # noqa: E402

TIMEOUT = 600.0


def fleet(rows: int, devices: int) -> list[tuple[str, TelemetryPayload]]:
    """Device `i % devices`, a second apart per device, an hour ago (inside the retention)."""
    start = datetime.now(UTC) - timedelta(hours=1)
    readings = []
    for index in range(rows):
        device = f"sensor-{index % devices:05d}"
        payload = {
            "deviceId": device,
            "timestamp": (start + timedelta(seconds=index // devices)).isoformat(),
            "sensors": {"temperature": 20.0 + index % 30, "humidity": 40.0, "battery": 90.0},
            "location": {"latitude": 37.7749, "longitude": -122.4194},
        }
        readings.append((device, TelemetryPayload.model_validate(payload)))
    return readings


async def rows_per_second(url: str, args: argparse.Namespace, handlers: int) -> float:
    """Commit the fleet's readings through one store with `handlers` writers waiting at once."""
    readings = fleet(args.rows, args.devices)
    store = Store(url)
    await store.open()
    writer = asyncio.create_task(store.run())
    started = time.perf_counter()

    async def handler(first: int) -> None:
        for index in range(first, len(readings), handlers):
            await store.add_telemetry(*readings[index])

    try:
        async with asyncio.timeout(TIMEOUT):
            await asyncio.gather(*(handler(h) for h in range(handlers)))
        elapsed = time.perf_counter() - started
        assert store.rows_written == args.rows, (store.rows_written, args.rows)
    finally:
        writer.cancel()
        await store.close(timeout=5)
    return args.rows / elapsed


def measure(name: str, new_url: Callable[[], str], args: argparse.Namespace) -> None:
    for label in args.handlers:
        handlers = args.rows if label == "all" else int(label)
        figures = [
            asyncio.run(rows_per_second(new_url(), args, handlers)) for _ in range(args.trials)
        ]
        print(
            f"  {name:<10} {label:>5} handlers   median {statistics.median(figures):8.0f} rows/s"
            f"   min {min(figures):8.0f}   max {max(figures):8.0f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=20000)
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--handlers", default="16,256,1000,all")
    parser.add_argument("--trials", type=int, default=3)
    args = parser.parse_args()
    args.handlers = args.handlers.split(",")
    with open("/proc/loadavg") as loadavg:
        load = " ".join(loadavg.read().split()[:3])
    print(
        f"{args.rows} telemetry rows from {args.devices} devices per trial, {args.trials} trials,"
        f" each in a new database; load average {load}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        files = iter(range(1_000_000))
        measure("sqlite", lambda: f"sqlite:///{tmp}/bench-{next(files)}.db", args)
    bin_dir = binaries()
    if bin_dir is None:
        print("  postgresql: not installed (scripts/setup.sh installs it)")
        return
    server = Postgres(bin_dir)
    server.start()
    try:
        names = iter(range(1_000_000))
        measure("postgresql", lambda: server.create_database(f"bench{next(names)}"), args)
    finally:
        server.stop()
        server.remove()


if __name__ == "__main__":
    main()
