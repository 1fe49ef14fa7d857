"""Generation speed and memory, each run a new process as a user runs it; every figure of issue
20's targets, medians of interleaved runs, ratios measured side by side in this one run:

1. the IoT example in AsyncAPI 2.6 (tests/specs/iot-2.6.0.yaml), first run (cache off), against
   the official generator with its python-paho template;
2. synthetic AsyncAPI 2.6 documents (bench/synthetic.py) of 10, 100 and 1,000 channels, cache
   off, against the official generator; peak memory;
3. the daily loop at 1,000 channels, cache on, regenerating into one folder: the first run,
   nothing changed (replayed; and without the replay record, to see what the replay saves),
   one field added to one channel's payload (each run another channel; and without the
   formatting cache, to see what it saves);
4. where a 1,000-channel first run goes, stage by stage, and the datamodel-code-generator's
   time in one call over all schemas for comparison; the format stage on that project: one
   `ruff format` over a folder, ruff once per file on stdin, black in this process.

Each of our runs is also given in CPU seconds (the process and its ruff, user + system): on a
shared machine the wall time mostly says how busy the others kept the cores.

The official generator is found through $ASYNCAPI_GENERATOR_BIN or `ag` on PATH (`npm install
@asyncapi/generator@1.17 @asyncapi/python-paho-template@0.2.13` outside this repository).

    python bench/generate.py [--runs N] [--sizes 10,100,1000]
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
from collections.abc import Callable
from pathlib import Path

import yaml
from synthetic import document  # bench/ is on the path when this script runs

REPO = Path(__file__).resolve().parents[1]
IOT = REPO / "tests" / "specs" / "iot-2.6.0.yaml"
PAHO = "@asyncapi/python-paho-template"
TIMEOUT = 900
LOOP_SIZE = 1000


def timed(command: list[str], env: dict[str, str] | None = None) -> tuple[float, int, float]:
    """Wall seconds, peak resident memory (KiB) and CPU seconds of one process (with the
    processes it waited for)."""
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
        code = os.waitstatus_to_exitcode(status)
        if code:
            errors.seek(0)
            text = errors.read().decode(errors="replace")
            raise SystemExit(f"{' '.join(command)} failed ({code}):\n{text}")
    return elapsed, usage.ru_maxrss, usage.ru_utime + usage.ru_stime


def ours(spec: Path, output: Path, cache: str) -> tuple[float, int, float]:
    command = [sys.executable, "-m", "generator", "generate", str(spec), "--output", str(output)]
    return timed(command, {**os.environ, "ASYNCAPI_PYGEN_CACHE": cache})


def official_binary() -> str | None:
    return os.environ.get("ASYNCAPI_GENERATOR_BIN") or shutil.which("ag")


def official(spec: Path, output: Path) -> float:
    binary = official_binary()
    assert binary is not None
    seconds = timed([binary, str(spec), PAHO, "-o", str(output)])[0]
    shutil.rmtree(output, ignore_errors=True)
    return seconds


def median(times: list[float]) -> float:
    return statistics.median(times)


def row(label: str, times: list[float], extra: str = "", cpu: list[float] | None = None) -> None:
    spread = f"(min {min(times):6.2f}, max {max(times):6.2f}, n={len(times)})"
    used = f"  CPU {median(cpu):.2f} s" if cpu else ""
    print(f"  {label:<44} {median(times):7.2f} s  {spread}{used}{extra}")


def side_by_side(label: str, spec: Path, root: Path, runs: int) -> tuple[float, int]:
    """Ours (cache off) and the official generator, interleaved; returns our median and peak."""
    mine: list[float] = []
    cpu: list[float] = []
    theirs: list[float] = []
    peak = 0
    for index in range(runs):
        seconds, rss, used = ours(spec, root / f"ours-{index}", "off")
        shutil.rmtree(root / f"ours-{index}")
        mine.append(seconds)
        cpu.append(used)
        peak = max(peak, rss)
        if official_binary() is not None:
            theirs.append(official(spec, root / f"official-{index}"))
    print(label)
    row("ours, first run (cache off)", mine, f"  peak RSS {peak / 1024:.0f} MiB", cpu)
    if theirs:
        row("official generator + python-paho", theirs)
        print(f"  ratio ours / official{median(mine) / median(theirs):33.2f}x")
    else:
        print("  official generator: not installed ($ASYNCAPI_GENERATOR_BIN or `ag` on PATH)")
    return median(mine), peak


def synthetic(root: Path, size: int) -> Path:
    spec = root / f"synthetic-{size}.yaml"
    spec.write_text(yaml.safe_dump(document(size), sort_keys=False))
    return spec


def add_field(spec: Path, channel: int, field: str) -> None:
    data = yaml.safe_load(spec.read_text())
    properties = data["components"]["schemas"][f"Reading{channel}"]["properties"]
    properties[field] = {"type": "integer", "minimum": 0}
    spec.write_text(yaml.safe_dump(data, sort_keys=False))


def daily_loop(root: Path, runs: int) -> None:
    spec, out, cache = synthetic(root, LOOP_SIZE), root / "loop", root / "loop-cache"
    first, peak, first_cpu = ours(spec, out, str(cache))
    times: dict[str, list[float]] = {k: [] for k in ("same", "no-replay", "field", "no-fmt")}
    cpu: dict[str, list[float]] = {k: [] for k in times}
    steps: list[tuple[str, Callable[[int], None]]] = [
        ("same", lambda _: None),
        ("no-replay", lambda _: shutil.rmtree(cache / "runs", ignore_errors=True)),
        ("field", lambda i: add_field(spec, 7 + 2 * i, f"added{i}")),
        ("no-fmt", lambda i: _without_format_cache(spec, cache, 8 + 2 * i, f"added{i}")),
    ]
    for index in range(runs):
        for name, prepare in steps:
            prepare(index)
            seconds, _, used = ours(spec, out, str(cache))
            times[name].append(seconds)
            cpu[name].append(used)
    print(f"daily loop at {LOOP_SIZE:,} channels, cache on, regenerating into one folder")
    print(
        f"  {'first run (cold cache)':<44} {first:7.2f} s  CPU {first_cpu:.2f} s"
        f"  peak RSS {peak / 1024:.0f} MiB"
    )
    row("nothing changed (replayed)", times["same"], cpu=cpu["same"])
    row("nothing changed, no replay record", times["no-replay"], cpu=cpu["no-replay"])
    row("one field added to one channel's payload", times["field"], cpu=cpu["field"])
    row("  the same without the formatting cache", times["no-fmt"], cpu=cpu["no-fmt"])
    print(f"  ratio one field / first run{median(times['field']) / first:27.3f}x")


def _without_format_cache(spec: Path, cache: Path, channel: int, field: str) -> None:
    add_field(spec, channel, field)
    shutil.rmtree(cache / "format", ignore_errors=True)


def stages(root: Path) -> None:
    """One cache-off build of the 1,000-channel document in this process, each stage timed;
    then the format stage alone, three ways, on the sources that build rendered."""
    sys.path.insert(0, str(REPO))
    os.environ["ASYNCAPI_PYGEN_CACHE"] = "off"
    from generator import format as fmt
    from generator import payload_models, pipeline

    seconds: dict[str, float] = {}
    rendered: dict[str, str] = {}
    timed_stage(pipeline, "analyse", seconds)
    timed_stage(payload_models, "generate_models", seconds)
    timed_stage(payload_models, "module", seconds)
    timed_stage(fmt, "format_files", seconds, rendered)
    started = time.process_time()
    result = pipeline.build(synthetic(root, LOOP_SIZE))
    api = result.api
    models = f"{api.package}/models.py"  # formatted in pieces: here formatted whole again
    rendered[models] = result.files[models]
    total = time.process_time() - started
    one_call = _seconds(lambda: payload_models.make(payload_models.models_job(api.schemas), ""))
    print(f"where a {LOOP_SIZE:,}-channel first run goes (cache off, CPU seconds of one process)")
    print(f"  {'load, validate, normalize':<44} {seconds['analyse']:7.2f} s")
    print(f"  {'models, chunk by chunk (with the import)':<44} {seconds['generate_models']:7.2f} s")
    print(f"  {'  the library alone, one call over all':<44} {one_call:7.2f} s")
    print(f"  {'models module formatted in pieces':<44} {seconds['module']:7.2f} s")
    print(f"  {'compile, the other files (ruff runs apart)':<44} {seconds['format_files']:7.2f} s")
    print(f"  {'the whole build':<44} {total:7.2f} s")
    sources = {p: t for p, t in rendered.items() if fmt.is_formatted(p)}
    size = sum(len(t) for t in sources.values()) / 1e6
    print(f"format stage alone ({len(sources)} files, {size:.1f} MB; wall seconds)")
    wall = time.perf_counter
    once = _seconds(lambda: fmt.format_files(sources), wall)
    per_file = _seconds(lambda: [_ruff_stdin(text) for text in sources.values()], wall)
    black = _seconds(lambda: fmt.format_files(sources, "black"), wall)
    print(f"  {'ruff format, one process over a folder':<44} {once:7.2f} s  (compile included)")
    print(f"  {'ruff format, one process per file (stdin)':<44} {per_file:7.2f} s")
    print(f"  {'black, in this process':<44} {black:7.2f} s  (compile included)")


def timed_stage(
    module: object, name: str, seconds: dict[str, float], arguments: dict[str, str] | None = None
) -> None:
    """Replace `module.name` by itself timed (and its first argument kept, if asked)."""
    real = getattr(module, name)

    def stage(*args: object, **kwargs: object) -> object:
        if arguments is not None and isinstance(args[0], dict):
            arguments.update(args[0])
        started = time.process_time()
        result = real(*args, **kwargs)
        seconds[name] = seconds.get(name, 0.0) + time.process_time() - started
        return result

    setattr(module, name, stage)


def _ruff_stdin(text: str) -> str:
    from generator import format as fmt

    command = [fmt.ruff_binary(), "format", "--isolated", "--line-length=100", "-"]
    done = subprocess.run(command, input=text.encode(), capture_output=True, check=True)
    return done.stdout.decode()


def _seconds(job: Callable[[], object], clock: Callable[[], float] = time.process_time) -> float:
    """CPU seconds of this process (not of the processes it starts), or `clock`'s."""
    started = clock()
    job()
    return clock() - started


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (1 min), {five:.2f} (5 min)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--sizes", default="10,100,1000")
    args = parser.parse_args()
    print(f"{load()}, {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        side_by_side(f"IoT example, AsyncAPI 2.6 ({IOT.relative_to(REPO)})", IOT, root, args.runs)
        for size in (int(s) for s in args.sizes.split(",")):
            side_by_side(
                f"synthetic AsyncAPI 2.6, {size:,} channels", synthetic(root, size), root, args.runs
            )
        daily_loop(root, args.runs)
        stages(root)
    print(load())


if __name__ == "__main__":
    main()
