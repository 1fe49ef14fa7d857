"""Peak memory of a generated service under the large-message attacks of issue 24, with the byte
limits off (no Maximum Packet Size announced, no bytes mark: what the runtime did before) and
with the defaults, side by side in one run against one mosquitto with persistence.

Each trial starts the delivery-test project with a slow handler (0.1 s a job), publishes the
attack to its persistent session with `mosquitto_pub --repeat`, waits for a job queued after it
to be handled, and reports the service's peak resident memory (VmHWM) over its resident memory
before the attack. Medians of `--trials` runs.

    python bench/memory.py [--trials K]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.support import generated_project, persistent, running_broker, wait_until  # noqa: E402
from tests.test_delivery import (  # noqa: E402
    ATTACKS,
    HANDLER,
    PACKAGE,
    SPEC,
    Jobs,
    job_file,
    rss_kib,
)

LIMITS_OFF = {"MAX_PAYLOAD_BYTES": "0", "MAX_PENDING_BYTES": str(1 << 40)}


def trial(jobs: Jobs, folder: Path, attack: str, env: dict[str, str]) -> float:
    """Peak RSS growth in MiB."""
    count, size = ATTACKS[attack]
    proc = jobs.start(JOB_DELAY="0.1", **env)
    try:
        before = rss_kib(proc.popen.pid)
        port = str(jobs.broker.port)
        subprocess.run(
            ["mosquitto_pub", "-h", "127.0.0.1", "-p", port, "-q", "1", "-t", "jobs/big",
             "-f", str(job_file(folder, size)), "--repeat", str(count)],
            check=True, timeout=600,
        )  # fmt: skip
        marker = time.monotonic_ns() % 1_000_000_000
        jobs.queue(range(marker, marker + 1), worker="after")
        wait_until(lambda: marker in jobs.handled(), 600, "the job queued after the attack")
        return (rss_kib(proc.popen.pid, "VmHWM") - before) / 1024
    finally:
        proc.kill()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        project = generated_project(
            folder / "project", SPEC, {f"{PACKAGE}/handlers/jobs.py": HANDLER}
        )
        print(
            f"load average {os.getloadavg()[0]:.2f}; peak RSS growth, MiB, median of {args.trials}"
        )
        print(f"{'attack':<14} {'limits off':>11} {'defaults':>9}")
        for attack in ATTACKS:
            figures: dict[str, list[float]] = {"off": [], "on": []}
            for _ in range(args.trials):
                for label, env in (("off", LIMITS_OFF), ("on", {})):
                    workdir = Path(tempfile.mkdtemp(dir=folder))
                    with running_broker(workdir, persistent(workdir)) as broker:
                        jobs = Jobs(project, broker, workdir)
                        assert jobs.start().terminate() == 0  # its persistent session
                        figures[label].append(trial(jobs, folder, attack, env))
            off, on = (statistics.median(figures[k]) for k in ("off", "on"))
            print(f"{attack:<14} {off:>11.1f} {on:>9.1f}")
        print(f"load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
