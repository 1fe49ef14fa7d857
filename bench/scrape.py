"""Messages per second of a generated service with and without a flood of `/metrics` scrapes
(10,000 of them, 2,000 at once, as in issue 24), and how long `/healthz` takes meanwhile.

Each trial queues M jobs (QoS 1) for the delivery-test project with `mosquitto_pub -l`, starts
it with its HTTP side on, and times from its start until every job is in its record; in a flood
trial, a thread scrapes in rounds of 10,000 from the start until then (refused until the service
listens) and probes `/healthz` every 50 ms. The
scrapers, the broker and the service share the machine's cores. Medians of `--trials` runs,
quiet and flooded side by side.

    python bench/scrape.py [--messages M] [--trials K]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.support import (  # noqa: E402
    free_port,
    generated_project,
    persistent,
    running_broker,
    wait_until,
)
from tests.test_delivery import HANDLER, PACKAGE, SPEC, Jobs  # noqa: E402

SCRAPES, AT_ONCE = 10_000, 2_000


async def request(port: int, path: str) -> int:
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        answer = await reader.read()
        writer.close()
        return int(answer.split(b" ", 2)[1]) if answer else 0
    except (ConnectionError, ValueError, IndexError):
        return 0


async def scrape_flood(port: int, stop: threading.Event) -> dict[int, int]:
    outcomes: dict[int, int] = {}
    slots = asyncio.Semaphore(AT_ONCE)

    async def one() -> None:
        async with slots:
            status = await request(port, "/metrics")
        outcomes[status] = outcomes.get(status, 0) + 1

    while not stop.is_set():
        await asyncio.gather(*(one() for _ in range(SCRAPES)))
    return outcomes


def probe(port: int, stop: threading.Event, health: list[tuple[int, float]]) -> None:
    """A liveness probe every 50 ms, from a thread of its own (not queued behind the flood)."""
    while not stop.wait(0.05):
        started = time.perf_counter()
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
                sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                status = int(sock.recv(64).split(b" ", 2)[1])
        except (OSError, ValueError, IndexError):
            status = 0
        health.append((status, time.perf_counter() - started))


Probes = list[tuple[int, float]]  # status (0: reset), seconds


def trial(jobs: Jobs, messages: int, flood: bool) -> tuple[float, Probes, dict[int, int]]:
    port = free_port()
    jobs.queue(range(messages))
    stop = threading.Event()
    health: Probes = []
    outcomes: dict[int, int] = {}
    threads = [
        threading.Thread(target=lambda: outcomes.update(asyncio.run(scrape_flood(port, stop)))),
        threading.Thread(target=probe, args=(port, stop, health)),
    ]
    started = time.perf_counter()
    if flood:  # from the start: refused until the service listens
        for thread in threads:
            thread.start()
    proc = jobs.start(SERVER_PORT=str(port), SERVER_HOST="127.0.0.1")
    listening = len(health)  # probes from here on: the service is up
    try:
        wait_until(
            lambda: len(set(jobs.handled())) >= messages, 600, "every job handled", interval=0.2
        )
        elapsed = time.perf_counter() - started
    finally:
        stop.set()
        if flood:
            for thread in threads:
                thread.join()
        proc.kill()
    jobs.record.write_text("")
    return messages / elapsed, health[listening:], outcomes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--trials", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        handler = {f"{PACKAGE}/handlers/jobs.py": HANDLER}
        project = generated_project(folder / "project", SPEC, handler)
        with running_broker(folder, persistent(folder)) as broker:
            jobs = Jobs(project, broker, folder)
            assert jobs.start().terminate() == 0  # its persistent session
            rates: dict[bool, list[float]] = {False: [], True: []}
            health: Probes = []
            outcomes: dict[int, int] = {}
            print(f"load average {os.getloadavg()[0]:.2f}")
            for _ in range(args.trials):
                for flood in (False, True):
                    rate, probes, seen = trial(jobs, args.messages, flood)
                    rates[flood].append(rate)
                    health += probes
                    for status, count in seen.items():
                        outcomes[status] = outcomes.get(status, 0) + count
            quiet, flooded = (statistics.median(rates[f]) for f in (False, True))
            print(f"{args.messages} jobs, median of {args.trials}: {quiet:.0f} msg/s quiet, "
                  f"{flooded:.0f} msg/s during rounds of {SCRAPES:,} scrapes "
                  f"({AT_ONCE:,} at once): {flooded / quiet:.2f}x")  # fmt: skip
            answered = [seconds for status, seconds in health if status == 200]
            print(f"/healthz every 50 ms during the floods: {len(answered)} of {len(health)} "
                  "answered 200", end="")  # fmt: skip
            if answered:
                print(f", p50 {statistics.median(answered) * 1000:.1f} ms, "
                      f"max {max(answered) * 1000:.1f} ms", end="")  # fmt: skip
            print()
            print(f"scrape outcomes (status: count, 0 = reset): {dict(sorted(outcomes.items()))}")
            print(f"load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
