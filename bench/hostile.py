"""What hostile documents cost `asyncapi-pygen validate`: wall time and peak memory of one
process per run, as a user runs it, with the first line it printed. Printed per attack:

- an alias bomb (nine aliases of the level before, eight levels: 43 million nodes);
- a valid 10 MB document of small nodes (a list of five million zeros);
- 10,000 nested JSON brackets;
- a reference bomb (ten `$ref`s to the next of eight levels, one invalid type at the bottom:
  the Python validator walks 10**8 nodes to locate it);
- a remote reference to a server that sends one byte a second (`--allow-remote-refs`);
- and, for scale, a valid 1,000-channel document (bench/synthetic.py).

`--baseline DIR` measures another checkout of the generator too (DIR holds its `generator/`),
e.g. the commit before the budgets: `git archive <commit> generator | tar -x -C DIR`, its runs
interleaved with this one's, and prints the ratio of the medians. `--only LABEL` (repeatable)
picks attacks by the start of their label. Each process gets at most `--memory` GiB of address
space and `--timeout` seconds: past the first it fails with MemoryError, past the second it is
killed.

    python bench/hostile.py [--runs N] [--baseline DIR] [--only LABEL]... [--memory GIB]
                            [--timeout S]
"""

from __future__ import annotations

import argparse
import contextlib
import http.server
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from synthetic import document  # bench/ is on the path when this script runs

REPO = Path(__file__).resolve().parents[1]


def alias_bomb() -> str:
    lines = ["asyncapi: 3.0.0", "info: {title: B, version: '1'}", "x-b:"]
    lines.append(" a: &a [" + "x," * 8 + "x]")
    for previous, name in zip("abcdefg", "bcdefgh", strict=True):
        lines.append(f" {name}: &{name} [" + ",".join([f"*{previous}"] * 9) + "]")
    return "\n".join(lines) + "\n"


def small_nodes() -> str:
    head = '{"asyncapi": "3.0.0", "info": {"title": "Big", "version": "1", "x-data": ['
    count = (10_000_000 - len(head) - 4) // 2
    return head + ",".join(["0"] * count) + "]}}"


def deep_json() -> str:
    return '{"asyncapi": "3.0.0", "info": {"title": "D", "version": "1", "x": ' + (
        "[" * 10_000 + "]" * 10_000 + "}}"
    )


def reference_bomb() -> str:
    schemas: dict[str, object] = {
        f"L{i}": {
            "type": "object",
            "properties": {f"p{j}": {"$ref": f"#/components/schemas/L{i + 1}"} for j in range(10)},
        }
        for i in range(8)
    }
    schemas["L8"] = {"type": "strin"}
    channel = {"address": "a", "messages": {"m": {"payload": {"$ref": "#/components/schemas/L0"}}}}
    return json.dumps(
        {
            "asyncapi": "3.0.0",
            "info": {"title": "Bomb", "version": "1"},
            "channels": {"a": channel},
            "components": {"schemas": schemas},
        }
    )


def remote(url: str) -> str:
    return (
        "asyncapi: 3.0.0\ninfo: {title: R, version: '1'}\nchannels:\n  a:\n    address: a\n"
        f"    messages:\n      m:\n        payload: {{$ref: '{url}'}}\n"
    )


class Drip(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "100000")
        self.end_headers()
        with contextlib.suppress(OSError):  # the generator hung up
            for _ in range(100_000):
                self.wfile.write(b" ")
                self.wfile.flush()
                time.sleep(1)


@contextlib.contextmanager
def dripping_server() -> Iterator[str]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Drip)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/schema.json"
    finally:
        httpd.shutdown()
        httpd.server_close()


def measure(
    args: list[str], cwd: Path, memory_gib: float, timeout: float
) -> tuple[float, float, str]:
    """Wall seconds, peak RSS (MiB) and the first line of stderr (or how it ended)."""

    def limit() -> None:
        size = int(memory_gib * 1024**3)
        resource.setrlimit(resource.RLIMIT_AS, (size, size))

    with tempfile.TemporaryFile() as errors:
        started = time.perf_counter()
        process = subprocess.Popen(
            [sys.executable, "-m", "generator", *args],
            cwd=cwd,
            stdout=subprocess.DEVNULL,
            stderr=errors,
            preexec_fn=limit,
        )
        watchdog = threading.Timer(timeout, process.kill)
        watchdog.start()
        try:
            _, status, usage = os.wait4(process.pid, 0)
        finally:
            watchdog.cancel()
        elapsed = time.perf_counter() - started
        errors.seek(0)
        lines = errors.read().decode(errors="replace").splitlines()
    code = os.waitstatus_to_exitcode(status)
    if code < 0:
        outcome = f"killed after {timeout:g} s"
    else:
        first = lines[0] if lines else "(nothing on stderr)"
        outcome = f"exit {code}: {first[first.find(': ') + 2 :][:90] if ': ' in first else first}"
    return elapsed, usage.ru_maxrss / 1024, outcome


ATTACKS: list[tuple[str, str, Callable[[str], str], list[str]]] = [
    ("alias bomb", "bomb.yaml", lambda _: alias_bomb(), []),
    ("10 MB of small nodes", "big.json", lambda _: small_nodes(), []),
    ("10,000-deep JSON", "deep.json", lambda _: deep_json(), []),
    ("reference bomb (invalid)", "refs.json", lambda _: reference_bomb(), []),
    ("remote ref, 1 byte/s", "remote.yaml", remote, ["--allow-remote-refs"]),
    ("1,000 channels (valid)", "big.yaml", lambda _: json.dumps(document(1000)), []),
]


def row(label: str, runs: list[tuple[float, float, str]]) -> tuple[float, str]:
    seconds = statistics.median(run[0] for run in runs)
    peak = statistics.median(run[1] for run in runs)
    return seconds, f"{label:<10} {seconds:7.2f} s  {peak:7.0f} MiB  {runs[0][2]}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--baseline", type=Path)
    parser.add_argument("--only", action="append", default=[])
    parser.add_argument("--memory", type=float, default=4.0, help="GiB per process")
    parser.add_argument("--timeout", type=float, default=120.0)
    options = parser.parse_args()
    generators = {"this": REPO}
    if options.baseline is not None:
        generators["baseline"] = options.baseline.resolve()
    wanted = options.only
    attacks = [a for a in ATTACKS if not wanted or any(a[0].startswith(w) for w in wanted)]
    print(f"asyncapi-pygen validate; load average {os.getloadavg()}")
    for name, folder in generators.items():
        print(f"  {name}: {folder}")
    print(f"{options.runs} runs each, at most {options.memory:g} GiB and {options.timeout:g} s")
    with tempfile.TemporaryDirectory() as scratch, dripping_server() as url:
        for label, filename, make, flags in attacks:
            path = Path(scratch) / filename
            path.write_text(make(url))
            runs: dict[str, list[tuple[float, float, str]]] = {name: [] for name in generators}
            for _ in range(options.runs):
                for name, folder in generators.items():
                    args = ["validate", str(path), *flags]
                    runs[name].append(measure(args, folder, options.memory, options.timeout))
            print(f"{label} ({path.stat().st_size:,} bytes)")
            medians = {}
            for name in generators:
                medians[name], line = row(name, runs[name])
                print(f"  {line}")
            if "baseline" in medians:
                print(f"  ratio this / baseline {medians['this'] / medians['baseline']:.2f}")


if __name__ == "__main__":
    main()
