"""Telemetry rows per second that the IoT example's store commits (examples/mqtt/.../storage.py),
SQLite and PostgreSQL, with C handlers waiting on it at once: each awaits the commit of its row
before it takes the next, as a handler does in the service, where C is MAX_CONCURRENT_HANDLERS.
Every row is new (its own timestamp). No MQTT here: this is the database side of the budget.
PostgreSQL is skipped, with a note, when its binaries are not installed (scripts/setup.sh does).

    python bench/storage.py [--rows N] [--handlers 1,16,64,256] [--trials K]
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
START = datetime(2026, 1, 1, tzinfo=UTC)


def reading(index: int) -> TelemetryPayload:
    return TelemetryPayload.model_validate(
        {
            "deviceId": f"bench-{index % 50}",
            "timestamp": (START + timedelta(milliseconds=index)).isoformat(),
            "sensors": {"temperature": 20.0 + index % 30, "humidity": 40.0, "battery": 90.0},
            "location": {"latitude": 37.7749, "longitude": -122.4194},
        }
    )


async def rows_per_second(url: str, rows: int, handlers: int) -> float:
    """Commit `rows` readings through one store with `handlers` writers waiting at once."""
    readings = [reading(i) for i in range(rows)]
    store = Store(url)
    await store.open()
    writer = asyncio.create_task(store.run())
    started = time.perf_counter()

    async def handler(first: int) -> None:
        for index in range(first, rows, handlers):
            item = readings[index]
            await store.add_telemetry(item.device_id, item)

    try:
        async with asyncio.timeout(TIMEOUT):
            await asyncio.gather(*(handler(h) for h in range(handlers)))
        elapsed = time.perf_counter() - started
        assert store.rows_written == rows, (store.rows_written, rows)
    finally:
        writer.cancel()
        await store.close(timeout=5)
    return rows / elapsed


def measure(name: str, new_url: Callable[[], str], args: argparse.Namespace) -> None:
    for handlers in args.handlers:
        figures = [
            asyncio.run(rows_per_second(new_url(), args.rows, handlers)) for _ in range(args.trials)
        ]
        print(
            f"  {name:<10} {handlers:>4} handlers   median {statistics.median(figures):8.0f} rows/s"
            f"   min {min(figures):8.0f}   max {max(figures):8.0f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=5000)
    parser.add_argument("--handlers", default="1,16,64,256")
    parser.add_argument("--trials", type=int, default=3)
    args = parser.parse_args()
    args.handlers = [int(n) for n in args.handlers.split(",")]
    print(f"{args.rows} telemetry rows per trial, {args.trials} trials, each in a new database")
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
