"""The delivery promises against every broker of the matrix (`tests/matrix.py`), with each MQTT
version the broker speaks: kill -9 and SIGTERM mid-stream, a broker restart where the broker keeps
sessions, QoS 2 both ways, request/reply, and a shared group. What a broker lacks is skipped with
its reason. The handler records every job it finished in a file, as in `test_delivery`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.matrix import Aedes, Mosquitto, RabbitMq
from tests.support import Process, Subscriber, free_port, generated_project, service, wait_until
from tests.test_delivery import HANDLER, PACKAGE, SPEC, Jobs
from tests.test_request_reply import HANDLER as PING_HANDLER
from tests.test_request_reply import LIFECYCLE as PING_LIFECYCLE
from tests.test_request_reply import PACKAGE as PING_PACKAGE
from tests.test_request_reply import SPEC as PING_SPEC

JOBS = 1000

AnyBroker = Mosquitto | Aedes | RabbitMq


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("matrix")
    return generated_project(out, SPEC, {f"{PACKAGE}/handlers/jobs.py": HANDLER})


class MatrixJobs(Jobs):
    """The delivery service speaking the cell's MQTT version, with a persistent session."""

    def __init__(self, project: Path, broker: Any, protocol: str, tmp_path: Path) -> None:
        super().__init__(project, broker, tmp_path)
        self.protocol = protocol

    def start(self, **env: str) -> Process:
        return super().start(MQTT_PROTOCOL=self.protocol, **env)


@pytest.fixture
def jobs(project: Path, target: tuple[Any, str], tmp_path: Path) -> MatrixJobs:
    broker, protocol = target
    runner = MatrixJobs(project, broker, protocol, tmp_path)
    first = runner.start()  # creates the persistent session the jobs are queued for
    assert first.terminate() == 0
    return runner


def wait_handled(jobs: Jobs, count: int, timeout: float = 90) -> None:
    wait_until(lambda: len(set(jobs.handled())) >= count, timeout, f"{count} distinct jobs handled")


def test_kill_9_mid_stream_loses_nothing(jobs: MatrixJobs) -> None:
    jobs.queue(range(JOBS))
    proc = jobs.start(JOB_DELAY="0.002")
    wait_until(lambda: len(jobs.handled()) >= 100, 60, "100 jobs handled")
    proc.kill()
    assert len(set(jobs.handled())) < JOBS, "killed too late to prove anything"
    proc = jobs.start()
    try:
        wait_handled(jobs, JOBS)
    finally:
        proc.kill()
    assert set(jobs.handled()) == set(range(JOBS))


def test_sigterm_with_a_backlog_exits_0_and_loses_nothing(jobs: MatrixJobs) -> None:
    jobs.queue(range(JOBS))
    proc = jobs.start(JOB_DELAY="0.002")
    wait_until(lambda: len(jobs.handled()) >= 100, 60, "100 jobs handled")
    assert proc.terminate() == 0
    assert proc.find_all(r"stopped; \d+ received message\(s\) left for redelivery")
    assert len(set(jobs.handled())) < JOBS
    proc = jobs.start()
    try:
        wait_handled(jobs, JOBS)
    finally:
        proc.kill()
    assert set(jobs.handled()) == set(range(JOBS))


def test_broker_restart_mid_stream_loses_nothing(jobs: MatrixJobs) -> None:
    jobs.broker.lacks.skip_unless("restart")
    jobs.queue(range(JOBS))
    proc = jobs.start(JOB_DELAY="0.002")
    try:
        wait_until(lambda: len(jobs.handled()) >= 100, 60, "100 jobs handled")
        jobs.broker.stop()  # SIGTERM: the broker saves its sessions
        proc.wait_for(r"WARNING .*reconnecting \(\d+ buffered message\(s\) left", timeout=60)
        jobs.broker.start()
        proc.wait_for(r"connected to .*\(session resumed", timeout=60)
        wait_handled(jobs, JOBS)
    finally:
        proc.kill()
    assert set(jobs.handled()) == set(range(JOBS))


def test_qos_2_in_and_out(jobs: MatrixJobs) -> None:
    jobs.broker.lacks.skip_unless("qos2")
    jobs.broker.lacks.skip_unless(f"qos2-{jobs.protocol}")
    proc = jobs.start()
    replies = Subscriber(jobs.broker, "done/echo", count=3, extra=("-q", "2"))
    try:
        jobs.queue(range(3), worker="echo", qos=2)
        received = {replies.message("done/echo")[1] for _ in range(3)}
        assert received == {'{"n":0}', '{"n":1}', '{"n":2}'}
        wait_handled(jobs, 3)
        assert sorted(jobs.handled()) == [0, 1, 2]
        assert any("q2" in line for line in replies.lines), "the reply must arrive at QoS 2"
    finally:
        replies.kill()
        proc.kill()


def test_request_reply(target: tuple[Any, str], tmp_path: Path) -> None:
    broker, protocol = target
    user = {
        f"{PING_PACKAGE}/handlers/ping.py": PING_HANDLER,
        f"{PING_PACKAGE}/lifecycle.py": PING_LIFECYCLE,
    }
    out = generated_project(tmp_path / "pingpong", PING_SPEC, user)
    pongs = Subscriber(broker, "pong/outside")
    proc = service(out, PING_PACKAGE, broker, MQTT_PROTOCOL=protocol)
    try:
        proc.wait_for(r"asked and got 'pong from n1: hello'", timeout=30)
        proc.wait_for(r"timed out as expected: no reply on 'pong/n2' within 0.5 s")
        broker.publish("ping/outside", json.dumps({"id": "req-42", "text": "hi"}))
        _, body = pongs.message("pong/outside")
        assert json.loads(body) == {"id": "req-42", "text": "pong from outside: hi"}
    finally:
        pongs.kill()
        proc.kill()


def test_a_shared_group_handles_each_message_once(
    project: Path, target: tuple[Any, str], tmp_path: Path
) -> None:
    broker, protocol = target
    broker.lacks.skip_unless("shared")
    records = [tmp_path / f"handled-{n}.txt" for n in range(2)]
    procs = []
    try:
        for record in records:
            proc = service(
                project,
                PACKAGE,
                broker,
                MQTT_PROTOCOL=protocol,
                MQTT_CLIENT_ID=f"group-{free_port()}",
                MQTT_SHARED_GROUP="workers",
                HANDLED_FILE=str(record),
            )
            procs.append(proc)
            proc.wait_for(r"connected to .*subscribed to \$share/workers/jobs/\+", timeout=20)
        runner = Jobs(project, broker, tmp_path)
        for device in range(10):
            runner.queue(range(device, JOBS, 10), worker=f"device-{device}")

        def handled() -> list[int]:
            return [int(n) for r in records if r.exists() for n in r.read_text().split()]

        wait_until(lambda: len(set(handled())) >= JOBS, 90, f"{JOBS} distinct jobs handled")
    finally:
        for proc in procs:
            proc.kill()
    assert sorted(handled()) == list(range(JOBS)), "each job handled exactly once"
    assert all(record.exists() and record.read_text() for record in records), "both took a share"
