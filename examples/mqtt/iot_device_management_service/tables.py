"""The example's tables, and the statements that write a batch to them, for SQLite and PostgreSQL.
Hand-written for the example; asyncapi-pygen never touches a file it did not create.

SQLAlchemy Core defines the tables once and writes each dialect's SQL (its upserts, its JSON and
array functions); `BatchWriter` says why a batch is one statement per table.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
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
    bindparam,
    case,
    func,
    select,
    true,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql import Select
from sqlalchemy.types import TypeDecorator, TypeEngine

DEVICE_ID_LENGTH = 128
STATUS_LENGTH = 16

# A UTC time as the database takes it (`BatchWriter.stored_time`): text on SQLite, in the format
# of SQLAlchemy's DateTime, which compares as the times do; an aware datetime on PostgreSQL
Time = str | datetime
Value = float | None
# A reading as it is stored: device, time, temperature, humidity, pressure, battery, latitude,
# longitude, altitude (the column order of `telemetry`)
Reading = tuple[str, Time, Value, Value, Value, Value, Value, Value, Value]
# A device's change in a batch: id, last status (None: unchanged), latest time seen, new errors
DeviceRow = tuple[str, str | None, Time, int]


class UtcDateTime(TypeDecorator[datetime]):
    """An aware UTC timestamp in both databases (SQLite has no time zones: stored as UTC)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None or value.tzinfo is not None:
            return value
        return value.replace(tzinfo=UTC)


metadata = MetaData()
telemetry = Table(
    "telemetry",
    metadata,
    Column("device_id", String(DEVICE_ID_LENGTH), primary_key=True),
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
    Column("device_id", String(DEVICE_ID_LENGTH), primary_key=True),
    Column("last_status", String(STATUS_LENGTH)),
    Column("last_seen", UtcDateTime, nullable=False),
    Column("error_count", Integer, nullable=False),
)


class BatchWriter:
    """Writes a batch in one statement per table, whatever its size: on SQLite the rows travel
    as one JSON array (`json_each`), on PostgreSQL as one array per column (`unnest`).

    Row by row (`executemany`), SQLite's driver gives up the GIL around each row and must win it
    back from the busy event loop, up to 5 ms each time: 1,000 rows took 835 ms while the loop
    was busy, 6 ms while it was idle; one statement needs the GIL a few times per batch. On
    PostgreSQL, one statement's status also says how many rows were new, which `executemany`
    does not."""

    def __init__(self, dialect: Dialect) -> None:
        self._json = dialect.name == "sqlite"
        insert = sqlite.insert if self._json else postgresql.insert
        source = _json_rows if self._json else _arrays
        self._readings = (
            insert(telemetry)
            .from_select(_names(telemetry), source(telemetry))
            .on_conflict_do_nothing()
        )
        self._devices = _device_upsert(
            insert(devices).from_select(_names(devices), source(devices))
        )
        self.stored_time: Callable[[datetime], Time] = sqlite_time if self._json else _same

    async def readings(self, conn: AsyncConnection, rows: Sequence[Reading]) -> int:
        """Store the readings (one already stored stays as it is); how many rows were new."""
        result = await conn.execute(self._readings, self._parameters(telemetry, rows))
        return int(result.rowcount)

    async def devices(self, conn: AsyncConnection, rows: Sequence[DeviceRow]) -> None:
        """Fold each device's latest time seen, last status and new errors into `devices`."""
        await conn.execute(self._devices, self._parameters(devices, rows))

    def _parameters(self, table: Table, rows: Sequence[tuple[Any, ...]]) -> dict[str, Any]:
        if self._json:
            return {ROWS: json.dumps(rows)}
        columns = zip(*rows, strict=True)
        return {column.name: list(values) for column, values in zip(table.c, columns, strict=True)}


ROWS = "rows"


def _names(table: Table) -> list[str]:
    return [column.name for column in table.c]


def _json_rows(table: Table) -> Select[Any]:
    """Each element of the JSON array parameter `rows` as a row of `table` (SQLite). `WHERE
    true` is how SQLite's grammar tells a SELECT's end from an upsert's ON CONFLICT."""
    each = func.json_each(bindparam(ROWS)).table_valued("value")
    values = [func.json_extract(each.c.value, f"$[{index}]") for index in range(len(table.c))]
    return select(*values).where(true())


def _arrays(table: Table) -> Select[Any]:
    """One array parameter per column of `table`, unnested in step (PostgreSQL)."""
    arrays = [
        func.unnest(bindparam(column.name, type_=postgresql.ARRAY(_as_sent(column.type))))
        for column in table.c
    ]
    return select(*arrays)


def _as_sent(kind: TypeEngine[Any]) -> TypeEngine[Any]:
    """The array's element type. Unbounded strings, since a cast to varchar(128)[] would cut a
    longer value short instead of refusing it; times as the driver takes them, since the store
    hands over aware UTC times already (no Python call per element)."""
    if isinstance(kind, String):
        return String()
    return kind.impl_instance if isinstance(kind, TypeDecorator) else kind


def sqlite_time(moment: datetime) -> str:
    """A UTC time as SQLAlchemy's DateTime stores it in SQLite: text to the microsecond, made
    once per row by C code (SQLAlchemy's conversion per row cost a third of a batch)."""
    return moment.replace(tzinfo=None).isoformat(" ", "microseconds")


def _same(moment: datetime) -> datetime:
    return moment


def _device_upsert(insert: Any) -> Any:
    """One row per device: the latest time seen, the last status if any, errors added."""
    new = insert.excluded
    return insert.on_conflict_do_update(
        index_elements=[devices.c.device_id],
        set_={
            "last_seen": case(
                (new.last_seen > devices.c.last_seen, new.last_seen), else_=devices.c.last_seen
            ),
            "last_status": func.coalesce(new.last_status, devices.c.last_status),
            "error_count": devices.c.error_count + new.error_count,
        },
    )
