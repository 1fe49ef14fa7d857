"""Generation speed and memory, each run a new process, as a user runs it. Printed:

1. the IoT example (examples/mqtt/asyncapi.yaml), interleaved runs, medians:
   - first run on a machine (cache off: models and formatting computed);
   - cold process, warm cache (a later run, any folder, schemas seen before);
   - regenerate, nothing changed (the daily loop: decided from hashes, files verified);
   - the official generator with its python-paho template, when `ag` is on PATH or in
     $ASYNCAPI_GENERATOR_BIN (`npm install @asyncapi/generator @asyncapi/python-paho-template`);
2. synthetic AsyncAPI 3.0 documents (bench/synthetic.py) of 10, 100, 500 and 1,000 channels,
   cache off: wall time, its ratio to 10 channels, the peak memory of the generator process
   (its workers not counted), and how long datamodel-code-generator alone takes for them.

    python bench/generate.py [--runs N] [--sizes 10,100,500,1000]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import yaml
from synthetic import document  # bench/ is on the path when this script runs

REPO = Path(__file__).resolve().parents[1]
SPEC = REPO / "examples" / "mqtt" / "asyncapi.yaml"
OFFICIAL_SPEC = REPO / "tests" / "specs" / "iot-2.6.0.yaml"  # the template reads 2.x only
PAHO = "@asyncapi/python-paho-template"
TIMEOUT = 600


def timed(command: list[str], env: dict[str, str] | None = None) -> tuple[float, int]:
    """Wall seconds and peak resident memory (KiB) of one process (its workers not counted)."""
    with tempfile.TemporaryFile() as errors:
        started = time.perf_counter()
        process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=errors)
        watchdog = threading.Timer(TIMEOUT, process.kill)
        watchdog.start()
        try:
            _, status, usage = os.wait4(process.pid, 0)
        finally:
            watchdog.cancel()
        elapsed = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        if process.returncode:
            errors.seek(0)
            text = errors.read().decode(errors="replace")
            raise SystemExit(f"{' '.join(command)} failed ({process.returncode}):\n{text}")
    return elapsed, usage.ru_maxrss


def generate(spec: Path, output: Path, cache: str) -> tuple[float, int]:
    command = [sys.executable, "-m", "generator", "generate", str(spec), "--output", str(output)]
    return timed(command, {**os.environ, "ASYNCAPI_PYGEN_CACHE": cache})


def official() -> str | None:
    return os.environ.get("ASYNCAPI_GENERATOR_BIN") or shutil.which("ag")


def report(label: str, times: list[float]) -> None:
    print(
        f"  {label:<36} median {statistics.median(times):7.3f} s"
        f"   min {min(times):7.3f} s   max {max(times):7.3f} s"
    )


def iot(root: Path, runs: int) -> None:
    warm_cache = str(root / "cache")
    generate(SPEC, root / "warm-up", warm_cache)  # also fills the OS file cache
    ag = official()
    rows: dict[str, list[float]] = {"first": [], "warm": [], "again": [], "official": []}
    for index in range(runs):
        rows["first"].append(generate(SPEC, root / f"first{index}", "off")[0])
        rows["warm"].append(generate(SPEC, root / f"warm{index}", warm_cache)[0])
        rows["again"].append(generate(SPEC, root / "warm-up", warm_cache)[0])
        if ag is not None:
            target = root / f"official{index}"
            rows["official"].append(timed([ag, str(OFFICIAL_SPEC), PAHO, "-o", str(target)])[0])
        for name in ("first", "warm", "official"):
            shutil.rmtree(root / f"{name}{index}", ignore_errors=True)
    median = {name: statistics.median(times) for name, times in rows.items() if times}
    print(f"IoT example ({SPEC.relative_to(REPO)}), {runs} runs each, interleaved")
    report("first run (cache off)", rows["first"])
    report("cold process, warm cache", rows["warm"])
    report("regenerate, nothing changed", rows["again"])
    print(f"  ratio nothing-changed / warm generate    {median['again'] / median['warm']:.2f}")
    if ag is None:
        print(
            "  official generator: not installed (put `ag` on PATH or set ASYNCAPI_GENERATOR_BIN)"
        )
        return
    report("official generator + python-paho (2.6)", rows["official"])
    print(f"  ratio ours first run / official          {median['first'] / median['official']:.2f}")


# datamodel-code-generator's own call for a document's schemas, timed in a process of its own:
# the part of a run that no other work can hide.
MODELS_ALONE = """
import sys, time
from pathlib import Path
from generator import payload_models, pipeline
api, _ = pipeline.analyse(Path(sys.argv[1]))
job = payload_models.models_job(api.schemas, "pkg.wire.WireModel", "# header")
import datamodel_code_generator
started = time.perf_counter()
payload_models.make(job)
print(time.perf_counter() - started)
"""


def models_alone(spec: Path) -> float:
    done = subprocess.run(
        [sys.executable, "-c", MODELS_ALONE, str(spec)],
        capture_output=True,
        text=True,
        check=True,
        timeout=TIMEOUT,
        cwd=REPO,
    )
    return float(done.stdout)


def scale(root: Path, sizes: list[int]) -> None:
    print("synthetic AsyncAPI 3.0 documents, cache off, one run each")
    print("  (models alone: datamodel-code-generator's own call, in a process of its own)")
    base = None
    for size in sizes:
        spec = root / f"synthetic-{size}.yaml"
        spec.write_text(yaml.safe_dump(document(size), sort_keys=False))
        seconds, peak = generate(spec, root / f"synthetic-{size}", "off")
        alone = models_alone(spec)
        base = base or seconds
        print(
            f"  {size:>5} channels   {seconds:7.2f} s   {seconds / base:5.2f}x the first size"
            f"   {seconds / size * 1000:6.1f} ms/channel   peak RSS {peak / 1024:5.0f} MiB"
            f"   models alone {alone:6.2f} s = {alone / base:5.2f}x the first size's run"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--sizes", default="10,100,500,1000")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        iot(Path(tmp), args.runs)
        scale(Path(tmp), [int(size) for size in args.sizes.split(",")])


if __name__ == "__main__":
    main()
