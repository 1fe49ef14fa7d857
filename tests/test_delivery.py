"""The delivery promises of the generated service against a real mosquitto: a backlog larger
than memory should hold, a flood of bad messages, oversized payloads, reading paused past the
keep-alive. kill -9, SIGTERM, a broker restart and QoS 2 both ways run against every broker of the
matrix, mosquitto included, in `test_broker_matrix.py`, with this service and its `Jobs`. The
handler appends every job number it finished to a file, so what was handled survives the process
that handled it."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import (
    REPO,
    Broker,
    Process,
    free_port,
    generated_project,
    persistent,
    running_broker,
    service,
    wait_until,
)

SPEC = REPO / "tests" / "specs" / "delivery-3.0.yaml"
PACKAGE = "delivery_test"

HANDLER = """
import asyncio
import os

from delivery_test.context import Context
from delivery_test.models import DonePayload, JobPayload

DELAY = float(os.environ.get("JOB_DELAY", "0"))
RECORD = open(os.environ["HANDLED_FILE"], "a", encoding="utf-8")


async def handle(message: JobPayload, ctx: Context, *, worker: str) -> None:
    if DELAY:
        await asyncio.sleep(DELAY)
    if worker == "echo":
        await ctx.publisher.send_done(DonePayload(n=message.n), worker=worker)
    RECORD.write(f"{message.n}\\n")
    RECORD.flush()
"""


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("delivery")
    return generated_project(out, SPEC, {f"{PACKAGE}/handlers/jobs.py": HANDLER})


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    """A mosquitto that queues without limit and keeps its state across restarts."""
    with running_broker(tmp_path, persistent(tmp_path)) as instance:
        yield instance


class Jobs:
    """The service under test, its record of handled jobs, and a way to queue jobs for it."""

    def __init__(self, project: Path, broker: Broker, tmp_path: Path) -> None:
        self.project = project
        self.broker = broker
        self.record = tmp_path / "handled.txt"
        self.record.touch()
        self.client_id = f"delivery-{free_port()}"

    def start(self, **env: str) -> Process:
        proc = service(
            self.project,
            PACKAGE,
            self.broker,
            MQTT_CLIENT_ID=self.client_id,
            HANDLED_FILE=str(self.record),
            **env,
        )
        proc.wait_for(r"connected to .*subscribed to jobs/\+", timeout=20)
        return proc

    def queue(self, numbers: range, worker: str = "w1", qos: int = 1) -> None:
        """Queue jobs in the broker with one mosquitto_pub (a line per message)."""
        lines = "".join(f'{{"n": {n}}}\n' for n in numbers)
        self.broker_pub(f"jobs/{worker}", lines, qos)

    def broker_pub(self, topic: str, lines: str, qos: int) -> None:
        port = str(self.broker.port)
        subprocess.run(
            ["mosquitto_pub", "-h", "127.0.0.1", "-p", port, "-q", str(qos), "-t", topic, "-l"],
            input=lines,
            text=True,
            check=True,
            timeout=120,
        )

    def handled(self) -> list[int]:
        return [int(line) for line in self.record.read_text().split()]


@pytest.fixture
def jobs(project: Path, broker: Broker, tmp_path: Path) -> Jobs:
    runner = Jobs(project, broker, tmp_path)
    first = runner.start()  # creates the persistent session the jobs are queued for
    assert first.terminate() == 0
    return runner


def wait_handled(jobs: Jobs, count: int, timeout: float = 90) -> None:
    wait_until(lambda: len(set(jobs.handled())) >= count, timeout, f"{count} distinct jobs handled")


def rss_kib(pid: int, field: str = "VmRSS") -> int:
    """Resident memory now (VmRSS), or at its highest so far (VmHWM)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise AssertionError(f"no {field}")


def test_slow_handler_with_100k_queued_keeps_memory_bounded(jobs: Jobs) -> None:
    proc = jobs.start(JOB_DELAY="0.01")
    before = rss_kib(proc.popen.pid)
    try:
        jobs.queue(range(100_000))
        wait_until(lambda: len(jobs.handled()) >= 100, 60, "the service to work through jobs")
        after = rss_kib(proc.popen.pid)
        assert proc.popen.poll() is None
    finally:
        proc.kill()
    growth_mib = (after - before) / 1024
    print(f"RSS growth with 100k queued and a slow handler: {growth_mib:.1f} MiB")
    assert growth_mib < 20, f"RSS grew by {growth_mib:.1f} MiB"
    assert len(jobs.handled()) < 50_000, "the handler is slow: the backlog must still be there"


def test_50k_bad_messages_give_bounded_logs_then_a_good_one_is_handled(jobs: Jobs) -> None:
    jobs.broker_pub("jobs/w1", "this is not JSON\n" * 50_000, qos=1)
    jobs.queue(range(1))
    proc = jobs.start()
    try:
        wait_handled(jobs, 1)
    finally:
        assert proc.terminate() == 0
    rejected = proc.find_all("rejected message on 'jobs/w1'")
    summaries = proc.find_all(r"more 'invalid JSON' message\(s\) not logged")
    assert 1 <= len(rejected) <= 100, len(rejected)
    assert proc.find_all(r"invalid_json=50000")
    assert len(proc.lines) < 200 + len(summaries)


def test_oversized_payloads_are_rejected_and_retained_clears_are_not_errors(jobs: Jobs) -> None:
    proc = jobs.start(MAX_PAYLOAD_BYTES="64")
    try:
        jobs.broker_pub("jobs/w1", '{"n": 1, "padding": "' + "x" * 100 + '"}\n', qos=1)
        proc.wait_for(r"rejected message on 'jobs/w1': \d+ bytes, more than MAX_PAYLOAD_BYTES=64")
        jobs.broker.publish("jobs/w1", "", 1, "-r")  # clears a retained message
        jobs.queue(range(2, 3))
        wait_handled(jobs, 1)
    finally:
        assert proc.terminate() == 0
    assert jobs.handled() == [2]
    assert proc.find_all(r"too_large=1, handler_errors=0, retained_clears=1\)")
    assert not proc.find_all("invalid JSON")


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
def test_reading_paused_longer_than_the_keep_alive_keeps_the_connection(
    jobs: Jobs, protocol: str
) -> None:
    """Handlers slower than 1.5x the keep-alive while reading is paused at the mark: the client
    still pings and does not take the unread answers for silence, so neither side hangs up."""
    proc = jobs.start(
        MQTT_PROTOCOL=protocol,
        MQTT_KEEP_ALIVE="1",
        JOB_DELAY="2.5",
        MAX_CONCURRENT_HANDLERS="1",
        MAX_PENDING_MESSAGES="1",
    )
    try:
        jobs.queue(range(4))
        wait_handled(jobs, 4, timeout=60)
        assert not proc.find_all("reconnecting|connection lost|no answer")
        assert sorted(jobs.handled()) == [0, 1, 2, 3]
    finally:
        proc.kill()


MIB = 1 << 20
ATTACKS = {  # the issue's: (messages, payload bytes each); 1 MiB is at the default limit
    "one 250 MB": (1, 250_000_000),
    "60 x 10 MB": (60, 10_000_000),
    "300 x 1 MiB": (300, MIB),
}


def job_file(folder: Path, size: int) -> Path:
    """A valid job of exactly `size` bytes."""
    head = '{"n": 7, "padding": "'
    path = folder / f"job-{size}.json"
    path.write_text(head + "x" * (size - len(head) - 2) + '"}')
    return path


@pytest.mark.parametrize("attack", ATTACKS)
def test_large_messages_behind_a_slow_handler_keep_memory_bounded(
    jobs: Jobs, tmp_path: Path, attack: str
) -> None:
    """The Maximum Packet Size keeps what is over MAX_PAYLOAD_BYTES in the broker (mosquitto
    drops it for us); what is within it is held up to MAX_PENDING_BYTES, and as much again
    while delivery is paused. Peak resident memory (VmHWM) is compared with the start."""
    count, size = ATTACKS[attack]
    proc = jobs.start(JOB_DELAY="0.1")
    try:
        before = rss_kib(proc.popen.pid)
        port = str(jobs.broker.port)
        subprocess.run(
            ["mosquitto_pub", "-h", "127.0.0.1", "-p", port, "-q", "1", "-t", "jobs/big",
             "-f", str(job_file(tmp_path, size)), "--repeat", str(count)],
            check=True, timeout=300,
        )  # fmt: skip
        jobs.queue(range(1), worker="after")  # handled once what came before is dealt with
        wait_until(lambda: 0 in jobs.handled(), 120, "the job queued after the attack")
        growth = (rss_kib(proc.popen.pid, "VmHWM") - before) / 1024
    finally:
        proc.kill()
    print(f"{attack}: peak RSS growth {growth:.1f} MiB")
    assert growth < 64, f"{attack}: peak RSS grew by {growth:.1f} MiB"
