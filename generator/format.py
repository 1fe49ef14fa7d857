"""The format stage: black on every generated Python file, compiled afterwards to be sure.

Black is most of a large project's generation time. On a machine with more than one core the
files go to worker processes (black holds the GIL) that run this module: sources as JSON on
stdin, results on stdout. They start as soon as the templates are rendered, so they format
while this process makes the models; the models are formatted here when they are ready.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import Future, ThreadPoolExecutor

from generator.cache import fingerprint, lookup, store
from generator.errors import Diagnostic, Failed, Location

LINE_LENGTH = 100
PARALLEL_BYTES = 256 * 1024  # from this size on, one worker per core
MAX_WORKERS = 8

Result = tuple[bool, str]  # (True, formatted) or (False, why black refused the source)


class Formatting:
    """A batch of files being formatted by workers while the caller goes on."""

    def __init__(
        self, files: dict[str, str], at_least: int = 0, at_most: int = MAX_WORKERS
    ) -> None:
        """`at_least` workers when the caller has work of its own meanwhile (and a core for it);
        `at_most=0` for none."""
        self.files = {path: text for path, text in files.items() if needs_black(path)}
        self.done = {path: lookup("black", _key(text)) for path, text in self.files.items()}
        self.misses = {path: text for path, text in self.files.items() if self.done[path] is None}
        workers = _workers(self.misses, at_least, at_most)
        self.threads = ThreadPoolExecutor(workers) if workers else None
        self.jobs: list[tuple[list[str], Future[list[Result] | None]]] = []
        for share in _shares(self.misses, workers):
            sources = [self.misses[path] for path in share]  # a thread feeds a worker, waits
            assert self.threads is not None
            self.jobs.append((share, self.threads.submit(_in_worker, sources)))

    def finish(self, more: dict[str, str] | None = None) -> dict[str, str]:
        """Every file of the batch and of `more` formatted (`more` in this process, meanwhile)
        and compiled. A bug in generated code is reported, never written."""
        later = Formatting(more or {}, at_most=0)
        local = later.misses | ({} if self.jobs else self.misses)
        results = {path: _format(text) for path, text in local.items()}
        for share, future in self.jobs:
            outputs = future.result()  # None: the worker failed; this process does its work
            texts = [self.misses[path] for path in share]
            results.update(zip(share, outputs or [_format(t) for t in texts], strict=True))
        if self.threads is not None:
            self.threads.shutdown()
        sources = self.misses | later.misses
        formatted = {p: text for p, text in (self.done | later.done).items() if text is not None}
        for path, result in results.items():
            formatted[path] = _checked(result, path)
            store("black", _key(sources[path]), formatted[path])
        for path, text in formatted.items():
            _check_compiles(text, path)
        return formatted


def format_files(files: dict[str, str]) -> dict[str, str]:
    """Every file, the Python ones formatted; the static runtime is formatted in this
    repository already and copied as it is."""
    return {**files, **Formatting(files).finish()}


def format_python(source: str, name: str) -> str:
    """One file formatted (through the cache) and compiled."""
    return format_files({name: source})[name]


def needs_black(path: str) -> bool:
    return path.endswith(".py") and "/_runtime/" not in path


def _key(source: str) -> tuple[str, ...]:
    return (fingerprint("black"), str(LINE_LENGTH), source)


def _workers(files: dict[str, str], at_least: int, at_most: int) -> int:
    """None on one core or with nothing to do; one per core for a large batch. `at_least`
    counts only while black is not imported here yet: a process that has it (a test run, a
    program calling the generator again and again) formats small batches faster itself."""
    cores = min(at_most, os.cpu_count() or 1)
    if (os.cpu_count() or 1) < 2 or cores < 1 or not files:
        return 0
    by_size = cores if sum(len(text) for text in files.values()) >= PARALLEL_BYTES else 0
    wanted = at_least if "black" not in sys.modules else 0
    return min(max(by_size, wanted), cores)


def _shares(files: dict[str, str], count: int) -> list[list[str]]:
    """The paths dealt into `count` shares of about equal size: longest first, each to the
    lightest share so far."""
    if count < 1:
        return []
    shares: list[list[str]] = [[] for _ in range(count)]
    totals = [0] * count
    for path in sorted(files, key=lambda p: (-len(files[p]), p)):
        lightest = totals.index(min(totals))
        shares[lightest].append(path)
        totals[lightest] += len(files[path])
    return [share for share in shares if share]


def _check_compiles(formatted: str, name: str) -> None:
    """Black parses, but a duplicate argument or a misplaced `return` only fails to compile."""
    try:
        compile(formatted, name, "exec", dont_inherit=True)
    except SyntaxError as exc:
        text = f"internal error: generated {name} does not compile: {exc.msg} (line {exc.lineno})"
        raise Failed([Diagnostic(text, Location(name))]) from None


def _in_worker(sources: list[str]) -> list[Result] | None:
    """`_format` of each source in a worker process, or None if the worker failed."""
    try:
        done = subprocess.run(
            [sys.executable, "-m", "generator.format"],
            input=json.dumps(sources),
            capture_output=True,
            text=True,
            encoding="utf-8",
            check=True,
        )
        results = [(bool(ok), str(text)) for ok, text in json.loads(done.stdout)]
    except (OSError, subprocess.CalledProcessError, ValueError, TypeError):
        return None
    return results if len(results) == len(sources) else None


def _checked(result: Result, name: str) -> str:
    formatted, text = result
    if not formatted:
        message = f"internal error: generated {name} is not valid Python: {text}"
        raise Failed([Diagnostic(message, Location(name))])
    return text


def _format(source: str) -> Result:
    import black  # only on a cache miss: importing black costs more than the rest of a run
    from black.mode import TargetVersion
    from black.parsing import InvalidInput

    mode = black.Mode(line_length=LINE_LENGTH, target_versions={TargetVersion.PY310})
    try:
        return True, black.format_str(source, mode=mode)
    except InvalidInput as exc:
        return False, str(exc)


if __name__ == "__main__":  # a worker of `Formatting`
    json.dump([_format(source) for source in json.load(sys.stdin)], sys.stdout)
