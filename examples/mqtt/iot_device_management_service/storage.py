"""Telemetry and device state in a database: SQLite by default, PostgreSQL when `DATABASE_URL`
says so. Hand-written for the example; asyncapi-pygen never touches a file it did not create.

One access layer for both: SQLAlchemy 2 Core over its async drivers (aiosqlite, asyncpg). It
gives one schema definition, created on start-up, dialect-correct upserts and a connection pool;
a layer of our own would have to get each of those right twice. The ORM is not used.

Durability: a handler awaits `add_telemetry()` or `record_status()`, which return once the row's
transaction is committed. The runtime acknowledges an MQTT message only after its handler
returns, so an acknowledged message is a stored row. A crash before the commit leaves the
message unacknowledged and the broker delivers it again; telemetry rows are keyed by device and
timestamp, so the second delivery stores nothing twice.

Rows are written by one task, in batches: whatever is waiting when a transaction ends goes into
the next one (up to `TELEMETRY_BATCH_ROWS`, after waiting up to `TELEMETRY_FLUSH_INTERVAL` for
company). While the database is unreachable the batch is retried with backoff, and the handlers
wait with it: the runtime stops reading at `MAX_PENDING_MESSAGES` and the broker keeps the rest.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import (
    Column,
    DateTime,
    Dialect,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    case,
    delete,
    event,
    func,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.types import TypeDecorator

from iot_device_management_service._runtime.ratelimit import RateLimitedLog
from iot_device_management_service.models import TelemetryPayload

logger = logging.getLogger(__name__)

ASYNC_DRIVERS = {
    "sqlite": "sqlite+aiosqlite",
    "postgresql": "postgresql+asyncpg",
    "postgres": "postgresql+asyncpg",
}
BACKOFF_FIRST, BACKOFF_MAX = 0.2, 5.0
ATTEMPT_TIMEOUT = 30.0  # a database that hangs counts as down


class UtcDateTime(TypeDecorator[datetime]):
    """An aware UTC timestamp in both databases (SQLite has no time zones: stored as UTC)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        value = value.astimezone(timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None or value.tzinfo is not None:
            return value
        return value.replace(tzinfo=timezone.utc)


metadata = MetaData()
telemetry = Table(
    "telemetry",
    metadata,
    Column("device_id", String(128), primary_key=True),
    Column("ts", UtcDateTime, primary_key=True),
    Column("temperature", Float),
    Column("humidity", Float),
    Column("pressure", Float),
    Column("battery", Float),
    Column("latitude", Float),
    Column("longitude", Float),
    Column("altitude", Float),
)
Index("telemetry_by_time", telemetry.c.ts)
devices = Table(
    "devices",
    metadata,
    Column("device_id", String(128), primary_key=True),
    Column("last_status", String(16)),
    Column("last_seen", UtcDateTime, nullable=False),
    Column("error_count", Integer, nullable=False),
)


def engine_url(url: str) -> str:
    """`DATABASE_URL` for an async driver: `postgresql://...` (as the seed writes it) means
    asyncpg, `sqlite:///FILE` aiosqlite; a URL that names its driver is kept."""
    parsed = make_url(url)
    if "+" not in parsed.drivername:
        driver = ASYNC_DRIVERS.get(parsed.drivername)
        if driver is None:
            raise ValueError(f"DATABASE_URL: {parsed.drivername!r} is not sqlite or postgresql")
        parsed = parsed.set(drivername=driver)
    return parsed.render_as_string(hide_password=False)


def transient(exc: BaseException) -> bool:
    """A failure that retrying can cure: the database down, restarting or unreachable."""
    if isinstance(exc, OperationalError | InterfaceError | OSError | TimeoutError):
        return True
    return isinstance(exc, DBAPIError) and exc.connection_invalidated


@dataclass
class _Write:
    kind: str  # "telemetry" or "status"
    row: dict[str, Any]
    done: asyncio.Future[None]
    since: float  # time.monotonic() when it arrived


class Store:
    """The database, and the one task that writes to it (`run`, a background task)."""

    def __init__(self, url: str, batch_rows: int = 500, flush_interval: float = 0.0) -> None:
        self.engine: AsyncEngine = create_async_engine(engine_url(url))
        sqlite = self.engine.dialect.name == "sqlite"
        if sqlite:
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
        # SQLite has one writer at a time: the batches and the retention job take turns
        self._turn: contextlib.AbstractAsyncContextManager[Any] = (
            asyncio.Lock() if sqlite else contextlib.nullcontext()
        )
        self.batch_rows = batch_rows
        self.flush_interval = flush_interval
        self.rows_written = 0  # telemetry rows committed since start (repeats not counted)
        self.errors = 0  # failed attempts to write or delete
        self._waiting: list[_Write] = []
        self._arrived = asyncio.Event()
        self._schema_ready = False
        self._log = RateLimitedLog(logger)

    async def open(self) -> None:
        """Create the tables if they are missing. A database that is down is not fatal: the
        writer creates them before its first batch."""
        try:
            async with asyncio.timeout(ATTEMPT_TIMEOUT), self.engine.begin() as conn:
                await self._create_schema(conn)
        except Exception as exc:
            if not transient(exc):
                raise
            self._failed(exc, "the database is unreachable at start-up")

    async def close(self, timeout: float) -> None:
        """Wait (up to `timeout`) for rows still waiting, then close the pool. A row not
        written belongs to a handler that never returned: its message was not acknowledged."""
        deadline = time.monotonic() + timeout
        while self._waiting and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        if self._waiting:
            logger.warning("%d row(s) not written at shutdown", len(self._waiting))
        await self.engine.dispose()

    async def add_telemetry(self, device_id: str, reading: TelemetryPayload) -> None:
        """Store a reading; returns once it is committed."""
        sensors, where = reading.sensors, reading.location
        row = {
            "device_id": device_id,
            "ts": reading.timestamp,
            "temperature": sensors.temperature,
            "humidity": sensors.humidity,
            "pressure": sensors.pressure,
            "battery": sensors.battery,
            "latitude": where.latitude if where else None,
            "longitude": where.longitude if where else None,
            "altitude": where.altitude if where else None,
        }
        await self._submit("telemetry", row)

    async def record_status(self, device_id: str, status: str, seen: datetime) -> None:
        """Record a device's status; returns once it is committed."""
        row = {"device_id": device_id, "last_status": status, "last_seen": seen}
        await self._submit("status", row)

    def flush_lag(self) -> float:
        """Seconds the oldest row not yet committed has waited (0 when none waits)."""
        return time.monotonic() - self._waiting[0].since if self._waiting else 0.0

    async def run(self) -> None:
        """Write batches for ever; a failed batch is retried, after a growing pause."""
        backoff = BACKOFF_FIRST
        while True:
            await self._arrived.wait()
            await self._linger()
            batch = self._waiting[: self.batch_rows]
            try:
                async with asyncio.timeout(ATTEMPT_TIMEOUT):
                    new = await self._write(batch)
            except Exception as exc:
                if not transient(exc):
                    self.errors += 1
                    self._done(batch, exc)
                    continue
                self._failed(exc, "telemetry not written yet; retrying")
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, BACKOFF_MAX)
                continue
            backoff = BACKOFF_FIRST
            self.rows_written += new
            self._done(batch)

    async def delete_older_than(self, age: float) -> int:
        """Delete telemetry older than `age` seconds; how many rows went."""
        cutoff = datetime.now(timezone.utc) - timedelta(seconds=age)
        async with self._turn, self.engine.begin() as conn:
            result = await conn.execute(delete(telemetry).where(telemetry.c.ts < cutoff))
        return int(result.rowcount or 0)

    async def keep_telemetry_for(self, retention: float, every: float) -> None:
        """Delete telemetry older than `retention` seconds, now and every `every` seconds."""
        while True:
            try:
                deleted = await self.delete_older_than(retention)
            except Exception as exc:
                if not transient(exc):
                    raise
                self._failed(exc, "old telemetry not deleted; trying again later")
            else:
                if deleted:
                    logger.info("deleted %d telemetry row(s) older than %.0f s", deleted, retention)
            await asyncio.sleep(every)

    async def _submit(self, kind: str, row: dict[str, Any]) -> None:
        done = asyncio.get_running_loop().create_future()
        self._waiting.append(_Write(kind, row, done, time.monotonic()))
        self._arrived.set()
        await asyncio.shield(done)  # a cancelled handler leaves its row to be written

    async def _linger(self) -> None:
        """Let rows join the batch: those of handlers already running (one loop turn), and
        with a flush interval, any arriving until the oldest row has waited that long."""
        await asyncio.sleep(0)
        while self._waiting and len(self._waiting) < self.batch_rows:
            left = self._waiting[0].since + self.flush_interval - time.monotonic()
            if left <= 0:
                return
            await asyncio.sleep(min(left, 0.01))

    async def _write(self, batch: Sequence[_Write]) -> int:
        """Commit the batch; how many telemetry rows are new (a reading delivered again is
        already there and stays as it is)."""
        readings = [w.row for w in batch if w.kind == "telemetry"]
        new = 0
        async with self._turn, self.engine.begin() as conn:
            if not self._schema_ready:
                await self._create_schema(conn)
            if readings:
                stmt = _insert(conn)(telemetry).on_conflict_do_nothing()
                result = await conn.execute(stmt.returning(telemetry.c.device_id), readings)
                new = len(result.all())
            await conn.execute(_device_upsert(conn), _device_rows(batch))
        return new

    async def _create_schema(self, conn: AsyncConnection) -> None:
        await conn.run_sync(metadata.create_all)
        self._schema_ready = True

    def _done(self, batch: Sequence[_Write], exc: Exception | None = None) -> None:
        """The batch leaves the queue; its handlers go on, or fail with `exc` (a batch the
        database refuses for good: logged and counted as handler errors)."""
        del self._waiting[: len(batch)]
        if not self._waiting:
            self._arrived.clear()
        for write in batch:
            if write.done.done():
                continue
            if exc is None:
                write.done.set_result(None)
            else:
                write.done.set_exception(exc)

    def _failed(self, exc: BaseException, what: str) -> None:
        self.errors += 1
        self._log.log(logging.WARNING, "database", "%s: %s", what, _reason(exc))


def _insert(conn: AsyncConnection) -> Any:
    """The dialect's INSERT, which knows ON CONFLICT (both databases spell it the same)."""
    from sqlalchemy.dialects import postgresql, sqlite

    return postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert


def _device_upsert(conn: AsyncConnection) -> Any:
    """One row per device: the latest time seen, the last status if any, errors added."""
    stmt = _insert(conn)(devices)
    new = stmt.excluded
    return stmt.on_conflict_do_update(
        index_elements=[devices.c.device_id],
        set_={
            "last_seen": case(
                (new.last_seen > devices.c.last_seen, new.last_seen), else_=devices.c.last_seen
            ),
            "last_status": func.coalesce(new.last_status, devices.c.last_status),
            "error_count": devices.c.error_count + new.error_count,
        },
    )


def _device_rows(batch: Sequence[_Write]) -> list[dict[str, Any]]:
    """The batch folded per device (one statement may not update a row twice)."""
    rows: dict[str, dict[str, Any]] = {}
    for write in batch:
        device = write.row["device_id"]
        seen = write.row["ts"] if write.kind == "telemetry" else write.row["last_seen"]
        status = write.row.get("last_status")
        row = rows.setdefault(
            device,
            {"device_id": device, "last_status": None, "last_seen": seen, "error_count": 0},
        )
        row["last_seen"] = max(row["last_seen"], seen)
        if status is not None:
            row["last_status"] = status
            row["error_count"] += status == "error"
    return list(rows.values())


def _sqlite_pragmas(connection: Any, _: Any) -> None:
    """WAL lets readers (the demo, a dashboard) read while the service writes; every commit
    is still synced to disk (synchronous=FULL, SQLite's default)."""
    with contextlib.closing(connection.cursor()) as cursor:
        cursor.execute("PRAGMA journal_mode=WAL")


def _reason(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
