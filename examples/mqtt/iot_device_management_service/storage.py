"""Telemetry and device state in a database: SQLite by default, PostgreSQL when `DATABASE_URL`
says so. Hand-written for the example; asyncapi-pygen never touches a file it did not create.

One access layer for both: SQLAlchemy 2 Core over its async drivers (aiosqlite, asyncpg). It
gives one schema definition (`tables.py`, created on start-up), each dialect's upserts and a
connection pool; a layer of our own would have to get each of those right twice. The ORM is not
used.

Durability: the telemetry handler passes `queue_telemetry()`'s future to `ctx.ack_after`, so the
runtime acknowledges the MQTT message once its row's transaction is committed, while the handler
returns at once and the next readings are handled meanwhile; the status handler awaits
`record_status()`, which returns once committed. Either way an acknowledged message is a stored
row. A crash before the commit leaves the message unacknowledged and the broker delivers it
again; telemetry rows are keyed by device and timestamp, so the second delivery stores nothing
twice.

Rows are written by one task, in batches: every row waiting when a transaction ends goes into
the next one (up to `TELEMETRY_BATCH_ROWS`, after waiting up to `TELEMETRY_FLUSH_INTERVAL` for
company). Handlers do not wait for the commit, so a batch holds every reading received while the
previous one was being written: up to the messages the runtime holds (`MAX_PENDING_MESSAGES`).

A row the database cannot hold (a time beyond the year 9999 once in UTC, a device id longer than
its column) is refused before it joins a batch. A row the database refuses all the same (a
constraint of its own) fails its batch: the batch is then written in halves, down to the row
that fails alone, so only that row is refused. A refused row is logged (rate-limited), counted,
and acknowledged: delivering the message again could not help (`add_telemetry` and
`record_status` raise `Unstorable`; `queue_telemetry`'s future simply completes). Any other failure
(the database down, restarting, unreachable, or refusing the service rather than a row) is
retried with backoff while the handlers wait: the runtime stops reading at `MAX_PENDING_MESSAGES`
and the broker keeps the rest.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import (
    DataError,
    DBAPIError,
    IntegrityError,
    InterfaceError,
    OperationalError,
    StatementError,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from iot_device_management_service._runtime.ratelimit import RateLimitedLog
from iot_device_management_service.models import TelemetryPayload
from iot_device_management_service.tables import (
    DEVICE_ID_LENGTH,
    BatchWriter,
    DeviceRow,
    Reading,
    Time,
    metadata,
    telemetry,
)

logger = logging.getLogger(__name__)

ASYNC_DRIVERS = {
    "sqlite": "sqlite+aiosqlite",
    "postgresql": "postgresql+asyncpg",
    "postgres": "postgresql+asyncpg",
}
BACKOFF_FIRST, BACKOFF_MAX = 0.2, 5.0
ATTEMPT_TIMEOUT = 30.0  # a database that hangs counts as down


class Unstorable(Exception):
    """The database cannot hold this message's data: not stored, logged and counted."""


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


def refused_row(exc: BaseException) -> bool:
    """A failure caused by the values of a row (a constraint, a value the column cannot take):
    the same row would fail again, so it is refused rather than retried."""
    if isinstance(exc, DataError | IntegrityError):
        return True
    return isinstance(exc, StatementError) and isinstance(exc.orig, ValueError | OverflowError)


@dataclass(slots=True, eq=False)
class _Write:
    device: str
    seen: Time  # the reading's time, or the status's last seen
    reading: Reading | None  # None: a status
    status: str | None
    done: asyncio.Future[None]
    since: float  # time.monotonic() when it arrived
    quiet: bool  # refused: `done` completes (the store logged and counted it) rather than raise
    settled: bool = False  # committed or refused


class Store:
    """The database, and the one task that writes to it (`run`, a background task)."""

    def __init__(self, url: str, batch_rows: int = 5000, flush_interval: float = 0.0) -> None:
        self.engine: AsyncEngine = create_async_engine(engine_url(url))
        dialect = self.engine.dialect
        sqlite = dialect.name == "sqlite"
        if sqlite:
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
        # SQLite has one writer at a time: the batches and the retention job take turns
        self._turn: contextlib.AbstractAsyncContextManager[Any] = (
            asyncio.Lock() if sqlite else contextlib.nullcontext()
        )
        self._batch = BatchWriter(dialect)
        self.batch_rows = batch_rows
        self.flush_interval = flush_interval
        self.rows_written = 0  # telemetry rows committed since start (repeats not counted)
        self.errors = 0  # failed attempts to write or delete, retried
        self.refused = 0  # messages whose data the database cannot hold
        self._waiting: list[_Write] = []
        self._writing: Sequence[_Write] = ()
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
        while (self._waiting or self._writing) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        left = len(self._waiting) + sum(not write.settled for write in self._writing)
        if left:
            logger.warning("%d row(s) not written at shutdown", left)
        await self.engine.dispose()

    async def add_telemetry(self, device_id: str, reading: TelemetryPayload) -> None:
        """Store a reading; returns once it is committed, raises `Unstorable` if refused."""
        await self._telemetry(device_id, reading, quiet=False)

    def queue_telemetry(self, device_id: str, reading: TelemetryPayload) -> asyncio.Future[None]:
        """Queue a reading for the next batch without waiting for it: the future is done once
        its row is committed, or refused by the database (logged and counted here). Raises
        `Unstorable` at once for a reading the database cannot hold."""
        return self._telemetry(device_id, reading, quiet=True)

    def _telemetry(
        self, device_id: str, reading: TelemetryPayload, quiet: bool
    ) -> asyncio.Future[None]:
        moment = self._storable(device_id, reading.timestamp)
        sensors, where = reading.sensors, reading.location
        row: Reading = (
            device_id,
            moment,
            sensors.temperature,
            sensors.humidity,
            sensors.pressure,
            sensors.battery,
            where.latitude if where else None,
            where.longitude if where else None,
            where.altitude if where else None,
        )
        if not all(math.isfinite(value) for value in row[2:] if value is not None):
            raise self._refusal(device_id, "NaN or infinity is not a JSON number")
        return self._queue(_Write(device_id, moment, row, None, *self._ticket(), quiet))

    async def record_status(self, device_id: str, status: str, seen: datetime) -> None:
        """Record a device's status; returns once it is committed, raises `Unstorable` if
        refused."""
        seen_at = self._storable(device_id, seen)
        # a cancelled handler leaves its row to be written all the same
        await self._queue(_Write(device_id, seen_at, None, status, *self._ticket(), False))

    def flush_lag(self) -> float:
        """Seconds the oldest row not yet committed has waited (0 when none waits)."""
        oldest = self._writing or self._waiting
        return time.monotonic() - oldest[0].since if oldest else 0.0

    async def run(self) -> None:
        """Write batches for ever: each takes every row waiting, up to `batch_rows`."""
        while True:
            await self._arrived.wait()
            await self._linger()
            batch = self._waiting[: self.batch_rows]
            del self._waiting[: len(batch)]
            if not self._waiting:
                self._arrived.clear()
            self._writing = batch
            await self._commit(batch)
            self._writing = ()

    async def delete_older_than(self, age: float) -> int:
        """Delete telemetry older than `age` seconds; how many rows went."""
        cutoff = datetime.now(UTC) - timedelta(seconds=age)
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

    def _storable(self, device_id: str, moment: datetime) -> Time:
        """`moment` in UTC as the database takes it, once sure that the database can hold the
        row (else `Unstorable`): the document allows any device id in a topic and any year in
        any time zone."""
        if len(device_id) > DEVICE_ID_LENGTH:
            raise self._refusal(device_id, f"device id longer than {DEVICE_ID_LENGTH} characters")
        try:
            utc = moment.astimezone(UTC)
        except OverflowError:
            raise self._refusal(device_id, f"time {moment.isoformat()} is out of range") from None
        return self._batch.stored_time(utc)

    @staticmethod
    def _ticket() -> tuple[asyncio.Future[None], float]:
        """A write's future and arrival time."""
        return asyncio.get_running_loop().create_future(), time.monotonic()

    def _queue(self, write: _Write) -> asyncio.Future[None]:
        self._waiting.append(write)
        self._arrived.set()
        return write.done

    async def _linger(self) -> None:
        """Let rows join the batch: those of handlers already running (one loop turn), and
        with a flush interval, any arriving until the oldest row has waited that long."""
        await asyncio.sleep(0)
        while self._waiting and len(self._waiting) < self.batch_rows:
            left = self._waiting[0].since + self.flush_interval - time.monotonic()
            if left <= 0:
                return
            await asyncio.sleep(min(left, 0.01))

    async def _commit(self, batch: Sequence[_Write]) -> None:
        """Write the batch, retrying with a growing pause while the database cannot take it."""
        backoff = BACKOFF_FIRST
        while True:
            try:
                await self._write_or_split([write for write in batch if not write.settled])
                return
            except Exception as exc:
                self._failed(exc, "telemetry not written yet; retrying")
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, BACKOFF_MAX)

    async def _write_or_split(self, batch: Sequence[_Write]) -> None:
        """Commit the batch; if a row's values make it fail, commit each half on its own, down
        to the rows that fail alone, which are refused."""
        try:
            async with asyncio.timeout(ATTEMPT_TIMEOUT):
                new = await self._write(batch)
        except Exception as exc:
            if not refused_row(exc):
                raise
            if len(batch) == 1:
                [write] = batch
                write.settled = True
                refusal = self._refusal(write.device, _reason(exc))
                if write.quiet and not write.done.done():
                    write.done.set_result(None)
                elif not write.done.done():
                    write.done.set_exception(refusal)
                return
            half = len(batch) // 2
            await self._write_or_split(batch[:half])
            await self._write_or_split(batch[half:])
            return
        self.rows_written += new
        for write in batch:
            write.settled = True
            if not write.done.done():
                write.done.set_result(None)

    async def _write(self, batch: Sequence[_Write]) -> int:
        """Commit the batch; how many telemetry rows are new (a reading delivered again is
        already there and stays as it is)."""
        readings = [write.reading for write in batch if write.reading is not None]
        new = 0
        async with self._turn, self.engine.begin() as conn:
            if not self._schema_ready:
                await self._create_schema(conn)
            if readings:
                new = await self._batch.readings(conn, readings)
            await self._batch.devices(conn, _device_rows(batch))
        return new

    async def _create_schema(self, conn: AsyncConnection) -> None:
        await conn.run_sync(metadata.create_all)
        self._schema_ready = True

    def _refusal(self, device: str, reason: str) -> Unstorable:
        """Count and log a message the database cannot hold."""
        self.refused += 1
        shown = device if len(device) <= 40 else device[:40] + "…"
        self._log.log(logging.WARNING, "refused", "not stored (device %r): %s", shown, reason)
        return Unstorable(reason)

    def _failed(self, exc: BaseException, what: str) -> None:
        self.errors += 1
        self._log.log(logging.WARNING, "database", "%s: %s", what, _reason(exc))


def _device_rows(batch: Sequence[_Write]) -> list[DeviceRow]:
    """The batch folded per device (one statement may not update a row twice)."""
    rows: dict[str, DeviceRow] = {}
    for write in batch:
        errors = int(write.status == "error")
        row = rows.get(write.device)
        if row is not None:
            _, status, seen, count = row
            errors += count
            write_seen = max(seen, write.seen)
            rows[write.device] = (write.device, write.status or status, write_seen, errors)
        else:
            rows[write.device] = (write.device, write.status, write.seen, errors)
    return list(rows.values())


def _sqlite_pragmas(connection: Any, _: Any) -> None:
    """WAL lets readers (the demo, a dashboard) read while the service writes; every commit
    is still synced to disk (synchronous=FULL, SQLite's default)."""
    with contextlib.closing(connection.cursor()) as cursor:
        cursor.execute("PRAGMA journal_mode=WAL")


def _reason(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
