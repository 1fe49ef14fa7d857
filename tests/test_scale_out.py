"""Several instances of one service share the load through an MQTT 5 shared subscription
(`MQTT_SHARED_GROUP`), against a real mosquitto: every message handled once, each instance takes
a share, a killed instance loses nothing, and request/reply still works inside a group."""

from __future__ import annotations

import subprocess
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import (
    Broker,
    Process,
    free_port,
    generated_project,
    running_broker,
    service,
    wait_until,
)
from tests.test_delivery import HANDLER, PACKAGE, SPEC
from tests.test_request_reply import HANDLER as PING_HANDLER
from tests.test_request_reply import LIFECYCLE as PING_LIFECYCLE
from tests.test_request_reply import PACKAGE as PING_PACKAGE
from tests.test_request_reply import SPEC as PING_SPEC

GROUP = "workers"


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("shared")
    return generated_project(out, SPEC, {f"{PACKAGE}/handlers/jobs.py": HANDLER})


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    with running_broker(tmp_path, "max_queued_messages 0\n") as instance:
        yield instance


class Fleet:
    """Instances of the service in one shared group, each recording what it handled."""

    def __init__(self, project: Path, broker: Broker, tmp_path: Path) -> None:
        self.project, self.broker, self.tmp_path = project, broker, tmp_path
        self.client_ids = [f"fleet-{n}-{free_port()}" for n in range(3)]
        self.running: dict[int, Process] = {}

    def record(self, index: int) -> Path:
        return self.tmp_path / f"handled-{index}.txt"

    def start(self, index: int, **env: str) -> Process:
        proc = service(
            self.project,
            PACKAGE,
            self.broker,
            MQTT_CLIENT_ID=self.client_ids[index],
            MQTT_SHARED_GROUP=GROUP,
            HANDLED_FILE=str(self.record(index)),
            **env,
        )
        proc.wait_for(rf"connected to .*subscribed to \$share/{GROUP}/jobs/\+", timeout=20)
        self.running[index] = proc
        return proc

    def handled(self) -> Counter[int]:
        counts: Counter[int] = Counter()
        for index in range(3):
            path = self.record(index)
            if path.exists():
                counts.update(int(line) for line in path.read_text().split())
        return counts

    def per_instance(self) -> list[int]:
        return [
            len(self.record(i).read_text().split()) if self.record(i).exists() else 0
            for i in range(3)
        ]

    def publish(self, count: int, devices: int = 30) -> None:
        """`count` numbered QoS 1 jobs spread over `devices` topics, one mosquitto_pub each."""
        for device in range(devices):
            lines = "".join(f'{{"n": {n}}}\n' for n in range(device, count, devices))
            port, topic = str(self.broker.port), f"jobs/device-{device}"
            subprocess.run(
                ["mosquitto_pub", "-h", "127.0.0.1", "-p", port, "-q", "1", "-t", topic, "-l"],
                input=lines,
                text=True,
                check=True,
                timeout=60,
            )

    def stop_all(self) -> None:
        for proc in self.running.values():
            proc.kill()


@pytest.fixture
def fleet(project: Path, broker: Broker, tmp_path: Path) -> Iterator[Fleet]:
    group = Fleet(project, broker, tmp_path)
    try:
        yield group
    finally:
        group.stop_all()


def test_three_instances_share_the_load_and_handle_each_message_once(fleet: Fleet) -> None:
    for index in range(3):
        fleet.start(index)
    fleet.publish(3000)
    wait_until(lambda: len(fleet.handled()) >= 3000, 90, "3,000 distinct jobs handled")
    counts = fleet.handled()
    assert set(counts) == set(range(3000))
    assert max(counts.values()) == 1, "a message was handled twice without any failure"
    shares = fleet.per_instance()
    assert sum(1 for share in shares if share > 0) >= 2, shares


def test_a_killed_instance_loses_nothing(fleet: Fleet) -> None:
    for index in range(3):
        fleet.start(index, JOB_DELAY="0.002")
    fleet.publish(3000)
    wait_until(lambda: fleet.per_instance()[0] >= 50, 60, "instance 0 to take its share")
    fleet.running[0].kill()
    fleet.start(0)
    wait_until(lambda: len(fleet.handled()) >= 3000, 120, "3,000 distinct jobs handled")
    assert set(fleet.handled()) == set(range(3000))


def test_request_reply_works_inside_a_shared_group(tmp_path: Path, broker: Broker) -> None:
    user = {
        f"{PING_PACKAGE}/handlers/ping.py": PING_HANDLER,
        f"{PING_PACKAGE}/lifecycle.py": PING_LIFECYCLE,
    }
    out = generated_project(tmp_path / "pingpong", PING_SPEC, user)
    proc = service(out, PING_PACKAGE, broker, MQTT_SHARED_GROUP=GROUP)
    try:
        # requests are shared, the replies this instance waits for are its own
        proc.wait_for(rf"subscribed to (?=.*\$share/{GROUP}/ping/\+)(?=.*(^|, )pong/\+)")
        proc.wait_for(r"asked and got 'pong from n1: hello'")
    finally:
        proc.kill()
