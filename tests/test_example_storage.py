"""The IoT example stores what it receives, in real databases: SQLite files, and a PostgreSQL
server the tests start. Messages go in as devices send them (mosquitto_pub through mosquitto to
`python -m iot_device_management_service`); rows are read back with sqlite3 and psql."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.postgres import Postgres, binaries
from tests.support import (
    EXAMPLE,
    EXAMPLE_PACKAGE,
    Broker,
    Process,
    Subscriber,
    free_port,
    running_broker,
    wait_until,
)
from tests.support import service as start_service

SEED_READING = {
    "deviceId": "sensor001",
    "timestamp": "2024-01-15T10:30:00Z",
    "sensors": {"temperature": 23.5, "humidity": 65.2, "pressure": 1013.25, "battery": 87.3},
    "location": {"latitude": 37.7749, "longitude": -122.4194},
}
SEED_STATUS = {"deviceId": "sensor001", "status": "online", "lastSeen": "2024-01-15T10:30:00Z"}


class Database:
    """One test's database, and a way to read it as its user would."""

    def __init__(self, url: str, sqlite_file: Path | None, server: Postgres | None) -> None:
        self.url, self.sqlite_file, self.server = url, sqlite_file, server

    def rows(self, sql: str) -> list[tuple[str, ...]]:
        """A query's rows, every value as text (None as an empty string)."""
        if self.sqlite_file is not None:
            if not self.sqlite_file.exists():
                return []
            with sqlite3.connect(self.sqlite_file) as db:
                found = db.execute(sql).fetchall()
            return [tuple("" if v is None else str(v) for v in row) for row in found]
        assert self.server is not None
        return [tuple(row) for row in self.server.psql(self.url.rsplit("/", 1)[1], sql)]

    def count(self, where: str = "true") -> int:
        try:
            return int(self.rows(f"SELECT count(*) FROM telemetry WHERE {where}")[0][0])
        except (sqlite3.OperationalError, subprocess.CalledProcessError):
            return 0  # the service has not created the table yet

    def wait_for_count(self, expected: int, where: str = "true", timeout: float = 60) -> None:
        wait_until(lambda: self.count(where) == expected, timeout, f"{expected} row(s) {where}")


@pytest.fixture(scope="module")
def postgres() -> Iterator[Postgres]:
    found = binaries()
    if found is None:
        pytest.skip("PostgreSQL is not installed (scripts/setup.sh installs it)")
    server = Postgres(found)
    try:
        server.start()
        yield server
    finally:
        server.remove()


@pytest.fixture
def deep_broker(tmp_path: Path) -> Iterator[Broker]:
    """A broker that queues any backlog for a service that is away (mosquitto's default keeps
    1,000 messages per client and drops the rest, as the README warns)."""
    with running_broker(tmp_path, "persistence false\nmax_queued_messages 0\n") as instance:
        yield instance


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Database:
    if request.param == "sqlite":
        path = tmp_path / "telemetry.db"
        return Database(f"sqlite:///{path}", path, None)
    server: Postgres = request.getfixturevalue("postgres")
    return Database(server.create_database(f"test_{free_port()}"), None, server)


def run(broker: Broker, database: Database, **env: str) -> Process:
    proc = start_service(EXAMPLE, EXAMPLE_PACKAGE, broker, DATABASE_URL=database.url, **env)
    proc.wait_for("connected to")
    return proc


def reading(device: str, moment: datetime, temperature: float) -> str:
    stamp = moment.isoformat().replace("+00:00", "Z")
    return json.dumps(
        {"deviceId": device, "timestamp": stamp, "sensors": {"temperature": temperature}}
    )


def publish_many(broker: Broker, topic: str, payloads: list[str]) -> None:
    """Each payload a QoS 1 message on `topic`, one mosquitto_pub for all (`-l`: a line each)."""
    subprocess.run(
        ["mosquitto_pub", "-h", "127.0.0.1", "-p", str(broker.port), "-q", "1", "-t", topic, "-l"],
        input="\n".join(payloads) + "\n",
        text=True,
        check=True,
        timeout=30,
    )


def publish_fleet(broker: Broker, streams: dict[str, list[str]]) -> None:
    """Each topic's payloads in order, all topics at once: one mosquitto_pub per topic."""
    command = ["mosquitto_pub", "-h", "127.0.0.1", "-p", str(broker.port), "-q", "1", "-l"]
    publishers = [
        subprocess.Popen([*command, "-t", topic], stdin=subprocess.PIPE, text=True)
        for topic in streams
    ]
    for publisher, payloads in zip(publishers, streams.values(), strict=True):
        assert publisher.stdin is not None
        publisher.stdin.write("\n".join(payloads) + "\n")
        publisher.stdin.close()
    for publisher in publishers:
        assert publisher.wait(timeout=60) == 0


def fleet(devices: int, each: int, start: datetime) -> dict[str, list[str]]:
    """`each` readings per device, a second apart, at 20 °C."""
    return {
        f"devices/dev-{d:02d}/telemetry": [
            reading(f"dev-{d:02d}", start + timedelta(seconds=i), 20.0) for i in range(each)
        ]
        for d in range(devices)
    }


def backlog(broker: Broker, database: Database, streams: dict[str, list[str]], **env: str) -> None:
    """Queue the streams for a service that is not running (a persistent session it made and
    left), so that it receives them as fast as it can, many devices at once."""
    run(broker, database, **env).terminate()
    publish_fleet(broker, streams)


def refused_in_heartbeats(heartbeats: Subscriber) -> int:
    beats = heartbeats.find_all(r"^system/heartbeat ")
    counts = [json.loads(line.split(" ", 1)[1])["metrics"]["refusedMessages"] for line in beats]
    return max(counts, default=0)


def test_poison_readings_are_refused_and_every_valid_one_is_stored(
    deep_broker: Broker, database: Database
) -> None:
    """What the schema lets through but the database cannot hold: a time beyond the year 9999
    once in UTC, a device id over 128 characters, NaN. Each is refused, logged and counted;
    the valid readings of the same batches are all stored."""
    session = {"MQTT_CLIENT_ID": f"poison-{free_port()}", "MQTT_CLEAN_SESSION": "false"}
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    streams = fleet(30, 100, start)
    for device in (3, 17):
        late = json.loads(reading(f"dev-{device:02d}", start, 20.0))
        late["timestamp"] = "9999-12-31T23:59:59-01:00"
        streams[f"devices/dev-{device:02d}/telemetry"].insert(50, json.dumps(late))
    nan = reading("dev-09", start + timedelta(days=1), 20.0).replace(
        "}}", '}, "location": ' '{"latitude": 1.0, "longitude": 2.0, "altitude": NaN}}'
    )
    streams["devices/dev-09/telemetry"].insert(30, nan)
    long_id = "x" * 129
    streams[f"devices/{long_id}/telemetry"] = [
        reading("long", start + timedelta(seconds=i), 20.0) for i in range(2)
    ]
    backlog(deep_broker, database, streams, **session)
    heartbeats = Subscriber(deep_broker, "system/heartbeat", count=10_000)
    proc = run(deep_broker, database, HEARTBEAT_INTERVAL="0.2", **session)
    database.wait_for_count(3000)
    wait_until(lambda: refused_in_heartbeats(heartbeats) == 5, 30, "5 refused in a heartbeat")
    assert database.count("temperature = 20.0") == 3000
    assert database.count("length(device_id) > 128 OR ts > '9000-01-01'") == 0
    assert proc.find_all(r"not stored \(device 'xxxx.*…'\): device id longer than 128")
    assert proc.find_all(r"not stored \(device 'dev-(03|17)'\): time 9999-12-31T23:59:59-01:00")
    assert proc.terminate() == 0
    assert not proc.find_all("Traceback")
    heartbeats.kill()


def test_a_row_the_database_refuses_is_isolated_and_the_rest_of_its_batch_stored(
    deep_broker: Broker, database: Database
) -> None:
    """A rule of the database's own (a check constraint, a trigger) refuses readings at 99.5 °C
    that the service cannot know about: only those are refused."""
    session = {"MQTT_CLIENT_ID": f"rule-{free_port()}", "MQTT_CLEAN_SESSION": "false"}
    run(deep_broker, database, **session).terminate()  # creates the tables
    if database.sqlite_file is not None:
        with sqlite3.connect(database.sqlite_file) as db:
            db.execute(
                "CREATE TRIGGER no_99_5 BEFORE INSERT ON telemetry WHEN NEW.temperature = 99.5 "
                "BEGIN SELECT RAISE(ABORT, 'no_99_5'); END"
            )
    else:
        database.rows("ALTER TABLE telemetry ADD CONSTRAINT no_99_5 CHECK (temperature <> 99.5)")
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    streams = fleet(20, 30, start)
    for device in (2, 11, 19):
        hot = reading(f"dev-{device:02d}", start + timedelta(days=1), 99.5)
        streams[f"devices/dev-{device:02d}/telemetry"].insert(15, hot)
    backlog(deep_broker, database, streams, **session)
    heartbeats = Subscriber(deep_broker, "system/heartbeat", count=10_000)
    proc = run(deep_broker, database, HEARTBEAT_INTERVAL="0.2", **session)
    database.wait_for_count(600)
    wait_until(lambda: refused_in_heartbeats(heartbeats) == 3, 30, "3 refused in a heartbeat")
    assert database.count("temperature = 99.5") == 0
    assert len(proc.find_all(r"not stored \(device 'dev-(02|11|19)'\): .*no_99_5")) == 3
    assert proc.terminate() == 0
    heartbeats.kill()


def test_with_its_defaults_a_kill_9_loses_no_reading(deep_broker: Broker, tmp_path: Path) -> None:
    """The example's own settings (a persistent session under its document's client id):
    readings published while it is killed wait in the deep_broker and are stored when it is back."""
    path = tmp_path / "telemetry.db"
    database = Database(f"sqlite:///{path}", path, None)
    defaults = {"MQTT_CLIENT_ID": ""}  # empty is ignored: the document's client id
    proc = run(deep_broker, database, **defaults)
    assert not proc.find_all("MQTT_CLEAN_SESSION is on")
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    streams = fleet(30, 100, start)
    first = {topic: payloads[:50] for topic, payloads in streams.items()}
    publish_fleet(deep_broker, first)
    wait_until(lambda: database.count() >= 100, 60, "100 readings stored")
    proc.kill()
    publish_fleet(deep_broker, {topic: payloads[50:] for topic, payloads in streams.items()})
    again = run(deep_broker, database, **defaults)
    database.wait_for_count(3000)
    assert again.terminate() == 0


def test_a_clean_session_chosen_against_the_document_is_warned_about(broker: Broker) -> None:
    proc = start_service(EXAMPLE, EXAMPLE_PACKAGE, broker, MQTT_CLEAN_SESSION="true")
    proc.wait_for(r"WARNING .*MQTT_CLEAN_SESSION is on: QoS 1/2 messages sent while the service")
    assert proc.terminate() == 0


def test_the_seed_reading_is_stored_with_its_values(broker: Broker, database: Database) -> None:
    proc = run(broker, database, TELEMETRY_RETENTION="0")  # the seed's reading is from 2024
    broker.publish("devices/sensor001/telemetry", json.dumps(SEED_READING), 1)
    broker.publish("devices/sensor001/status", json.dumps(SEED_STATUS), 1)
    database.wait_for_count(1, "device_id = 'sensor001'")
    wait_until(
        lambda: database.rows("SELECT last_status FROM devices") == [("online",)], 30, "status"
    )
    columns = "temperature, humidity, pressure, battery, latitude, longitude, altitude"
    [row] = database.rows(f"SELECT {columns} FROM telemetry")
    assert [float(v) for v in row[:6]] == [23.5, 65.2, 1013.25, 87.3, 37.7749, -122.4194]
    assert row[6] == ""  # no altitude in the reading
    [(seen,)] = database.rows("SELECT last_seen FROM devices")
    assert seen.startswith("2024-01-15 10:30:00")
    assert proc.terminate() == 0


def test_a_thousand_messages_over_fifty_devices_are_a_thousand_rows_after_a_restart(
    broker: Broker, database: Database
) -> None:
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)  # within the retention
    proc = run(broker, database)
    for device in range(50):
        name = f"dev-{device:02d}"
        payloads = [reading(name, start + timedelta(seconds=i), 20.0 + i) for i in range(20)]
        publish_many(broker, f"devices/{name}/telemetry", payloads)
    database.wait_for_count(1000)
    assert database.rows("SELECT count(*) FROM devices") == [("50",)]
    [(hottest,)] = database.rows("SELECT max(temperature) FROM telemetry")
    assert float(hottest) == 39.0
    assert proc.terminate() == 0
    again = run(broker, database)
    assert database.count() == 1000
    repeat = reading("dev-00", start, 20.0)  # delivered before: stored once, not twice
    broker.publish("devices/dev-00/telemetry", repeat, 1)
    earlier = reading("dev-00", start - timedelta(hours=1), 1.0)
    broker.publish("devices/dev-00/telemetry", earlier, 1)
    database.wait_for_count(1001)  # one topic, in order: the repeat was handled before this
    assert again.terminate() == 0


def test_telemetry_older_than_the_retention_is_deleted(broker: Broker, database: Database) -> None:
    proc = run(broker, database, TELEMETRY_RETENTION="7d", RETENTION_CHECK_INTERVAL="0.2")
    now = datetime.now(UTC).replace(microsecond=0)
    broker.publish("devices/old/telemetry", reading("old", now - timedelta(days=8), 1.0), 1)
    broker.publish("devices/new/telemetry", reading("new", now - timedelta(days=6), 2.0), 1)
    proc.wait_for(r"deleted 1 telemetry row\(s\) older than 604800 s")
    database.wait_for_count(1)
    assert database.rows("SELECT device_id FROM telemetry") == [("new",)]
    assert proc.terminate() == 0


def test_with_the_database_down_the_service_counts_it_waits_and_catches_up(
    broker: Broker, postgres: Postgres
) -> None:
    database = Database(postgres.create_database(f"test_{free_port()}"), None, postgres)
    heartbeats = Subscriber(broker, "system/heartbeat", count=1000)
    proc = run(broker, database, HEARTBEAT_INTERVAL="0.2")
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    publish_many(
        broker,
        "devices/a/telemetry",
        [reading("a", start + timedelta(seconds=i), 1.0) for i in range(10)],
    )
    database.wait_for_count(10)
    postgres.stop()
    try:
        later = [reading("a", start + timedelta(minutes=1, seconds=i), 2.0) for i in range(20)]
        publish_many(broker, "devices/a/telemetry", later)
        proc.wait_for("telemetry not written yet; retrying", timeout=30)

        def degraded_counting_errors() -> bool:
            lines = heartbeats.find_all(r"^system/heartbeat (.*)$")
            beats = [json.loads(line.split(" ", 1)[1]) for line in lines]
            return any(
                beat["metrics"]["databaseErrors"] > 0
                and beat["metrics"]["flushLagSeconds"] > 0.2  # more than the interval
                and beat["status"] == "degraded"
                for beat in beats
            )

        wait_until(degraded_counting_errors, 30, "a degraded heartbeat counting database errors")
        assert proc.popen.poll() is None  # still running
    finally:
        postgres.start()
    database.wait_for_count(30)
    assert proc.terminate() == 0
    heartbeats.kill()


def test_a_reading_is_acknowledged_only_once_stored_so_kill_9_loses_none(
    broker: Broker, postgres: Postgres
) -> None:
    """The database is down, readings arrive and wait; kill -9. None was acknowledged, so the
    broker delivers every one again to the next run, which stores them."""
    database = Database(postgres.create_database(f"test_{free_port()}"), None, postgres)
    session = {"MQTT_CLIENT_ID": f"durable-{free_port()}", "MQTT_CLEAN_SESSION": "false"}
    proc = run(broker, database, **session)
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    postgres.stop()
    try:
        readings = [reading("k", start + timedelta(seconds=i), 3.0) for i in range(50)]
        publish_many(broker, "devices/k/telemetry", readings)
        proc.wait_for("telemetry not written yet; retrying", timeout=30)
        proc.kill()
    finally:
        postgres.start()
    assert database.count() == 0
    again = run(broker, database, **session)
    database.wait_for_count(50)
    assert again.terminate() == 0


def test_at_shutdown_readings_waiting_for_their_batch_are_stored(
    broker: Broker, database: Database
) -> None:
    """Readings wait for company (TELEMETRY_FLUSH_INTERVAL); SIGTERM comes first. The service
    lets their handlers finish, which stores them, before it exits."""
    port = free_port()
    proc = run(broker, database, TELEMETRY_FLUSH_INTERVAL="5", SERVER_PORT=str(port))
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    broker.publish("devices/w/telemetry", reading("w", start, 1.0), 1)
    broker.publish("devices/v/telemetry", reading("v", start, 2.0), 1)

    def received() -> float:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
            text = answer.read().decode()
        return sum(
            sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
            if sample.name == "messages_received_total"
        )

    wait_until(lambda: received() == 2, 30, "both readings received")
    assert database.count() == 0  # still waiting for their batch
    assert proc.terminate() == 0
    assert database.count() == 2
