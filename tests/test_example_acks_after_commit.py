"""The example acknowledges a reading only once its row is committed, though its handler returns
before the commit (`ctx.ack_after`): `python -m iot_device_management_service` against a scripted
broker, with the SQLite file's write lock held by the test so that no commit can happen."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import mqtt5

from tests.peer import Peer, scripted
from tests.support import EXAMPLE, Process, free_port

READINGS = 40  # over 8 devices
START = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)


def publish(index: int) -> mqtt5.PublishPacket:
    device = f"dev-{index % 8}"
    stamp = (START + timedelta(seconds=index)).isoformat().replace("+00:00", "Z")
    body = json.dumps({"deviceId": device, "timestamp": stamp, "sensors": {"temperature": 20.0}})
    return mqtt5.PublishPacket(
        f"devices/{device}/telemetry",
        body.encode(),
        qos=mqtt5.QoS.AT_LEAST_ONCE,
        packet_id=index + 1,
    )


def stored(path: Path) -> int:
    with sqlite3.connect(path, timeout=5) as db:
        return int(db.execute("SELECT count(*) FROM telemetry").fetchone()[0])


def has_row(path: Path, index: int) -> bool:
    """Whether reading `index` (packet id index + 1) is in the database."""
    stamp = (START + timedelta(seconds=index)).strftime("%Y-%m-%d %H:%M:%S")
    query = "SELECT count(*) FROM telemetry WHERE device_id = ? AND ts LIKE ?"
    with sqlite3.connect(path, timeout=5) as db:
        return bool(db.execute(query, (f"dev-{index % 8}", stamp + "%")).fetchone()[0])


async def next_puback(peer: Peer, timeout: float) -> int:
    """The next PUBACK's packet id; the service's own sends (its heartbeat) are acknowledged."""
    while True:
        packet: Any = await peer.read(timeout)
        if isinstance(packet, mqtt5.PubAckPacket):
            return int(packet.packet_id)
        if isinstance(packet, mqtt5.PublishPacket) and packet.qos != mqtt5.QoS.AT_MOST_ONCE:
            peer.send(mqtt5.PubAckPacket(packet.packet_id))


def test_a_reading_is_acknowledged_only_after_its_commit_and_in_order(tmp_path: Path) -> None:
    database = tmp_path / "telemetry.db"
    acked_with_rows: list[tuple[int, bool]] = []  # (packet id, its row there when acknowledged)
    early: list[int] = []

    async def script(peer: Peer) -> None:
        await peer.accept()
        while not isinstance(subscribe := await peer.read(), mqtt5.SubscribePacket):
            pass
        codes = [mqtt5.SubAckReasonCode(1)] * len(subscribe.topic_filters)
        peer.send(mqtt5.SubAckPacket(subscribe.packet_id, codes))
        lock = sqlite3.connect(database, isolation_level=None)
        lock.execute("BEGIN IMMEDIATE")  # no commit of the service's can happen now
        try:
            peer.send(*(publish(index) for index in range(READINGS)))
            with contextlib.suppress(TimeoutError):  # none may come while nothing can commit
                early.append(await next_puback(peer, timeout=1.5))
        finally:
            lock.execute("ROLLBACK")
            lock.close()
        for _ in range(READINGS):
            packet_id = await next_puback(peer, timeout=30)
            acked_with_rows.append((packet_id, has_row(database, packet_id - 1)))

    async def scenario() -> None:
        async with scripted(script) as (port, finished):
            env = {
                "MQTT_HOST": "127.0.0.1",
                "MQTT_PORT": str(port),
                "MQTT_CLIENT_ID": f"acks-{free_port()}",
                "DATABASE_URL": f"sqlite:///{database}",
                "HEARTBEAT_INTERVAL": "3600",
                "LOG_LEVEL": "INFO",
            }
            service = Process([sys.executable, "-m", "iot_device_management_service"], EXAMPLE, env)
            try:
                async with asyncio.timeout(60):
                    await finished
            finally:
                service.kill()

    asyncio.run(scenario())
    assert early == []
    assert [packet_id for packet_id, _ in acked_with_rows] == list(range(1, READINGS + 1))
    assert all(there for _, there in acked_with_rows)
    assert stored(database) == READINGS
