"""Median wall time of a cold `asyncapi-pygen generate examples/mqtt/asyncapi.yaml` (a new process
each run, output into a fresh folder), as a user runs it, in two settings measured in one run:

- first run on a machine: an empty result cache each time (models and formatting computed);
- cold process, warm cache: a later run, in any folder, on a spec whose schemas were seen before;
- regenerate, nothing changed: the daily loop's no-op run into an up-to-date project.

    python bench/generate.py [--runs N]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SPEC = REPO / "examples" / "mqtt" / "asyncapi.yaml"


def one_run(output: Path, cache: Path) -> float:
    env = {**os.environ, "ASYNCAPI_PYGEN_CACHE": str(cache)}
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "generator", "generate", str(SPEC), "--output", str(output)],
        check=True,
        capture_output=True,
        env=env,
    )
    return time.perf_counter() - started


def report(label: str, times: list[float]) -> None:
    print(
        f"  {label:<28} median {statistics.median(times):.3f} s"
        f"   min {min(times):.3f} s   max {max(times):.3f} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=11)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        warm_cache = root / "cache"
        one_run(root / "warm-up", warm_cache)  # also fills the OS file cache
        first, warm, again = [], [], []
        for index in range(args.runs):
            empty_cache = root / f"empty-cache{index}"
            first.append(one_run(root / f"first{index}", empty_cache))
            warm.append(one_run(root / f"warm{index}", warm_cache))
            again.append(one_run(root / "warm-up", warm_cache))
            shutil.rmtree(root / f"first{index}")
            shutil.rmtree(root / f"warm{index}")
    print(f"cold generate of {SPEC.relative_to(REPO)}, {args.runs} runs each, interleaved")
    report("first run (empty cache)", first)
    report("cold process, warm cache", warm)
    report("regenerate, nothing changed", again)
    print(
        f"  ratio first/warm (medians)   {statistics.median(first) / statistics.median(warm):.2f}"
    )


if __name__ == "__main__":
    main()
