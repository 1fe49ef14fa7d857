"""The store's batches, on a real SQLite file: every reading waiting when a transaction ends goes
into the next one, and a handler cancelled while it waits leaves its reading to be stored. Times
are stored as SQLAlchemy's own DateTime would store them."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.dialects import sqlite

from iot_device_management_service.models import TelemetryPayload
from iot_device_management_service.storage import Store
from iot_device_management_service.tables import UtcDateTime, sqlite_time

START = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)


def reading(index: int, devices: int = 100) -> tuple[str, TelemetryPayload]:
    device = f"dev-{index % devices}"
    moment = START + timedelta(seconds=index // devices)
    payload = {"deviceId": device, "timestamp": moment.isoformat(), "sensors": {"battery": 50.0}}
    return device, TelemetryPayload.model_validate(payload)


def with_store(path: Path, test: Callable[[Store, list[int]], Awaitable[None]], **kw: Any) -> None:
    """Run `test` with an open store whose writer runs, and a list counting its commits."""

    async def scenario() -> None:
        store = Store(f"sqlite:///{path / 'telemetry.db'}", **kw)
        await store.open()
        commits: list[int] = []
        event.listen(store.engine.sync_engine, "commit", lambda _: commits.append(1))
        writer = asyncio.create_task(store.run())
        try:
            async with asyncio.timeout(30):
                await test(store, commits)
        finally:
            writer.cancel()
            await store.close(timeout=5)

    asyncio.run(scenario())


def test_every_reading_waiting_goes_into_one_transaction(tmp_path: Path) -> None:
    async def test(store: Store, commits: list[int]) -> None:
        await asyncio.gather(*(store.add_telemetry(*reading(i)) for i in range(1000)))
        assert store.rows_written == 1000
        assert len(commits) == 1

    with_store(tmp_path, test)


def test_a_transaction_holds_telemetry_batch_rows_at_most(tmp_path: Path) -> None:
    async def test(store: Store, commits: list[int]) -> None:
        await asyncio.gather(*(store.add_telemetry(*reading(i)) for i in range(1000)))
        assert store.rows_written == 1000
        assert len(commits) == 4

    with_store(tmp_path, test, batch_rows=300)


def test_a_handler_cancelled_while_it_waits_leaves_its_reading_stored(tmp_path: Path) -> None:
    async def test(store: Store, commits: list[int]) -> None:
        waiting = asyncio.create_task(store.add_telemetry(*reading(0)))
        await asyncio.sleep(0)  # it is in the queue
        waiting.cancel()
        await store.add_telemetry(*reading(1))  # written in the same batch or after it
        assert store.rows_written == 2
        assert waiting.cancelled()

    with_store(tmp_path, test)


@pytest.mark.parametrize(
    "moment",
    [
        datetime(2024, 1, 15, 10, 30, tzinfo=UTC),
        datetime(2024, 1, 15, 10, 30, 0, 7, tzinfo=UTC),
        datetime(999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
        datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC),
    ],
)
def test_a_time_is_stored_in_sqlalchemys_own_format(moment: datetime) -> None:
    """Retention and readers compare through SQLAlchemy; the fast path must write the same."""
    dialect = sqlite.dialect()
    convert = UtcDateTime().dialect_impl(dialect).bind_processor(dialect)
    assert convert is not None
    assert sqlite_time(moment) == convert(moment)
