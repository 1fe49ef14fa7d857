"""Worker processes for the two slow, pure stages: datamodel-code-generator and black.

A build starts its workers first, so one of them imports datamodel-code-generator (half a
second, the largest fixed cost of a run) while this process loads, validates and renders. Black
holds the GIL, so parallel formatting needs processes too. A worker is `python -m
generator.workers`: one JSON request per line on stdin, one JSON answer per line on stdout. Jobs
are pure functions of their input, so a worker that fails costs only time: its caller does the
job itself.
"""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

MAX_WORKERS = 7  # besides this process


class Worker:
    """One worker process; `warm` names the library it imports before its first job."""

    def __init__(self, warm: str) -> None:
        self.lock = threading.Lock()
        self.process: subprocess.Popen[str] | None
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-P", "-m", "generator.workers", warm],
                env=_environment(),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
                encoding="utf-8",
            )
        except OSError:
            self.process = None

    def call(self, kind: str, payload: Any) -> Any | None:
        """The job's answer, or None when the worker failed (it takes no more jobs then)."""
        with self.lock:
            process = self.process
            if process is None or process.stdin is None or process.stdout is None:
                return None
            try:
                process.stdin.write(json.dumps([kind, payload]) + "\n")
                process.stdin.flush()
                line = process.stdout.readline()
                answer = json.loads(line)
                if not isinstance(answer, list) or answer[0] != "ok":
                    raise ValueError(line)
                return answer[1]
            except (OSError, ValueError):
                self._stop()
                return None

    def close(self) -> None:
        process = self.process
        if process is not None:
            process.kill()  # first: a call in flight holds the lock until its answer
        with self.lock:
            self._stop()

    def _stop(self) -> None:
        """Killed, not asked: a worker keeps nothing, and one still importing would make the
        caller wait for the import to end."""
        process, self.process = self.process, None
        if process is None:
            return
        process.kill()
        process.wait()
        for stream in (process.stdin, process.stdout):
            try:
                if stream is not None:
                    stream.close()
            except OSError:  # a request still buffered for the dead process
                pass


def _environment() -> dict[str, str]:
    """The worker imports this very generator, never a `generator` package in the user's
    folder (`-P`: the current folder is not on its path; the one holding ours is)."""
    ours = str(Path(__file__).resolve().parents[1])
    path = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": os.pathsep.join([ours, path] if path else [ours])}


class Pool:
    """This process's helpers for one build. The first worker warms up datamodel-code-generator
    and keeps the models job until it is done; more start only for a large formatting batch."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.workers = [Worker("models")] if capacity > 0 else []
        self.threads = ThreadPoolExecutor(max(capacity, 1) * 2)  # a models job, a feeder each
        self.busy: dict[Worker, Future[Any]] = {}
        self.closing = False
        self.stops: list[Callable[[], None]] = []  # what lets the threads end at close

    @classmethod
    def start(cls) -> Pool:
        """Workers for the other cores when this is a fresh process. One that has built before
        has both libraries imported and is faster alone (a test run, a program that calls the
        generator again and again)."""
        cores = os.cpu_count() or 1
        fresh = "datamodel_code_generator" not in sys.modules and "black" not in sys.modules
        return cls(min(cores - 1, MAX_WORKERS) if fresh else 0)

    def __enter__(self) -> Pool:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def models(self, payload: Any) -> Future[Any] | None:
        """The models job on the warmed worker; None with no worker (the caller does it)."""
        if not self.workers:
            return None
        worker = self.workers[0]
        self.busy[worker] = future = self.threads.submit(worker.call, "models", payload)
        return future

    def no_models(self) -> None:
        """The models came from the cache: the worker warming up for them stops now."""
        if self.workers and not self.busy:
            self.workers.pop(0).close()

    def grow(self) -> list[Worker]:
        """Every worker this pool may have, started: for a batch worth sharing out."""
        self.workers += [Worker("black") for _ in range(self.capacity - len(self.workers))]
        return self.workers

    def close(self) -> None:
        """Also after a failure half-way: threads waiting for work are told to end, and a job
        in flight fails with its worker instead of being done here."""
        self.closing = True
        for stop in self.stops:
            stop()
        for worker in self.workers:
            worker.close()
        self.threads.shutdown(wait=True)


@contextmanager
def collector_paused() -> Iterator[None]:
    """For a job that builds a large object graph and drops it: black's syntax tree (parent
    links: cycles) and the library's models. The cycle collector scanning them again and again
    took 35-45% of black's time and 15% of the models'; the garbage is collected once after."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _serve(warm: str) -> None:
    """A worker's loop: requests from stdin until it closes."""
    from generator import format as fmt
    from generator import payload_models

    jobs: dict[str, Callable[[Any], Any]] = {"models": payload_models.make, "black": fmt.black_job}
    if warm == "models":
        import datamodel_code_generator  # noqa: F401  (imported while the parent works)
    else:
        import black  # noqa: F401
    for line in sys.stdin:
        kind, payload = json.loads(line)
        print(json.dumps(["ok", jobs[kind](payload)]), flush=True)


if __name__ == "__main__":
    _serve(sys.argv[1] if len(sys.argv) > 1 else "black")
