"""Aggregate throughput of 1, 2 and 3 instances of one generated service in a shared group
(`MQTT_SHARED_GROUP`) against one mosquitto, QoS 1, ack after handling, on this machine.

Each trial starts N instances of the delivery-test project (its handler appends every job number
to a file of its own), publishes M numbered jobs over 30 device topics with parallel
`mosquitto_pub -l` processes, and times from the first publish until every job is in some file.
Broker, publishers and instances share the machine's cores: the figures say whether anything
serialises, not what a cluster would do.

    python bench/scale.py [--messages M] [--trials K]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.support import Broker, Process, free_port, generated_project, service  # noqa: E402
from tests.test_delivery import HANDLER, PACKAGE, SPEC  # noqa: E402

DEVICES = 30


def handled(records: list[Path]) -> int:
    return sum(len(p.read_bytes().splitlines()) for p in records if p.exists())


def trial(project: Path, broker: Broker, instances: int, messages: int, tmp: Path) -> float:
    records = [tmp / f"handled-{instances}-{i}-{time.monotonic_ns()}.txt" for i in range(instances)]
    procs: list[Process] = []
    try:
        for record in records:
            proc = service(
                project,
                PACKAGE,
                broker,
                MQTT_CLIENT_ID=f"scale-{free_port()}",
                MQTT_SHARED_GROUP="bench",
                HANDLED_FILE=str(record),
                # A persistent session of an instance that is gone keeps receiving its share of
                # the group (mosquitto), so the instances of one trial must not outlive it.
                MQTT_CLEAN_SESSION="true",
            )
            procs.append(proc)
        for proc in procs:
            proc.wait_for(r"subscribed to \$share/bench/", timeout=30)
        started = time.perf_counter()
        base = ["mosquitto_pub", "-h", "127.0.0.1", "-p", str(broker.port), "-q", "1", "-l"]
        publishers = [
            subprocess.Popen(
                [*base, "-t", f"jobs/device-{device}"],
                stdin=subprocess.PIPE,
                text=True,
            )
            for device in range(DEVICES)
        ]
        for device, publisher in enumerate(publishers):
            assert publisher.stdin is not None
            publisher.stdin.write(
                "".join(f'{{"n": {n}}}\n' for n in range(device, messages, DEVICES))
            )
            publisher.stdin.close()
        deadline = time.monotonic() + 300
        while handled(records) < messages:
            if time.monotonic() > deadline:
                raise SystemExit(f"gave up: {handled(records)} of {messages} handled in 300 s")
            time.sleep(0.02)
        elapsed = time.perf_counter() - started
        for publisher in publishers:
            publisher.wait(30)
        return elapsed
    finally:
        for proc in procs:
            proc.kill()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=30_000)
    parser.add_argument("--trials", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        project = generated_project(tmp / "project", SPEC, {f"{PACKAGE}/handlers/jobs.py": HANDLER})
        broker = Broker(tmp, "max_queued_messages 0\n")
        broker.start()
        try:
            rates: dict[int, list[float]] = {1: [], 2: [], 3: []}
            for _ in range(args.trials):
                for instances in rates:
                    seconds = trial(project, broker, instances, args.messages, tmp)
                    rates[instances].append(args.messages / seconds)
        finally:
            broker.stop()
    single = statistics.median(rates[1])
    print(f"{args.messages} QoS 1 jobs over {DEVICES} topics, {args.trials} trials, msg/s")
    for instances, values in rates.items():
        median = statistics.median(values)
        trials = ", ".join(f"{v:.0f}" for v in values)
        print(
            f"  {instances} instance(s): median {median:8.0f}  ({median / single:.2f}x)  {trials}"
        )


if __name__ == "__main__":
    main()
