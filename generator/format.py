"""The format stage: black, in-process, on every generated Python file.

Black is most of a large project's generation time, so a large batch is spread over the machine's
cores: worker processes (black holds the GIL) that run this module, read sources as JSON on stdin
and write the results to stdout. A large file is cut at its top-level classes so that it too can be
shared out. Small batches stay in this process: a worker costs a Python start and a black import.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

from generator.cache import fingerprint, lookup, store
from generator.errors import Diagnostic, Failed, Location

LINE_LENGTH = 100
PARALLEL_BYTES = 256 * 1024  # below this, starting workers costs more than it saves
CHUNK_BYTES = 48 * 1024
MAX_WORKERS = 8

# A top-level class, preceded by a blank line: a statement of its own, which black formats the
# same alone as in its file (two blank lines before it, whatever came before).
_CLASS_START = re.compile(r"(?<=\n\n)(?=class \w)")


def format_files(files: dict[str, str]) -> dict[str, str]:
    """Every generated Python file formatted; the static runtime is formatted in this repository
    already and copied as it is. A bug is reported, never written."""
    todo = {path: text for path, text in files.items() if _needs_black(path)}
    done = {path: lookup("black", _key(text)) for path, text in todo.items()}
    misses = {path: text for path, text in todo.items() if done[path] is None}
    for path, formatted in _format_all(misses).items():
        store("black", _key(misses[path]), formatted)
        done[path] = formatted
    result = {path: done.get(path) or text for path, text in files.items()}
    for path in todo:
        _check_compiles(result[path], path)
    return result


def format_python(source: str, name: str) -> str:
    """One file formatted (through the cache) and compiled."""
    return format_files({name: source})[name]


def _needs_black(path: str) -> bool:
    return path.endswith(".py") and "/_runtime/" not in path


def _key(source: str) -> tuple[str, ...]:
    return (fingerprint("black"), str(LINE_LENGTH), source)


def _check_compiles(formatted: str, name: str) -> None:
    """Black parses, but a duplicate argument or a misplaced `return` only fails to compile."""
    try:
        compile(formatted, name, "exec", dont_inherit=True)
    except SyntaxError as exc:
        text = f"internal error: generated {name} does not compile: {exc.msg} (line {exc.lineno})"
        raise Failed([Diagnostic(text, Location(name))]) from None


def _format_all(files: dict[str, str]) -> dict[str, str]:
    workers = min(MAX_WORKERS, os.cpu_count() or 1)
    if workers < 2 or sum(len(text) for text in files.values()) < PARALLEL_BYTES:
        return {path: _checked(_format(text), path) for path, text in files.items()}
    pieces = [(path, chunk) for path, text in files.items() for chunk in split(text)]
    shares = _shares([len(chunk) for _, chunk in pieces], workers)
    _format("")  # black imported here first: two threads importing it at once can clash
    with ThreadPoolExecutor(workers - 1) as threads:  # each thread waits on one worker process
        remote = [threads.submit(_in_worker, [pieces[i][1] for i in share]) for share in shares[1:]]
        outputs = {i: _format(pieces[i][1]) for i in shares[0]}  # this process takes a share too
        for share, future in zip(shares[1:], remote, strict=True):
            results = future.result()  # None: the worker failed, and this process does its work
            outputs.update(
                zip(share, results or [_format(pieces[i][1]) for i in share], strict=True)
            )
    joined: dict[str, list[str]] = {}
    for index, (path, _) in enumerate(pieces):
        joined.setdefault(path, []).append(_checked(outputs[index], path))
    return {path: join(chunks) for path, chunks in joined.items()}


def _shares(sizes: list[int], count: int) -> list[list[int]]:
    """Indexes of `sizes` dealt into `count` shares of about equal total: longest first, each to
    the lightest share so far."""
    shares: list[list[int]] = [[] for _ in range(count)]
    totals = [0] * count
    for index in sorted(range(len(sizes)), key=lambda i: -sizes[i]):
        lightest = totals.index(min(totals))
        shares[lightest].append(index)
        totals[lightest] += sizes[index]
    return [share for share in shares if share] or [[]]


def _in_worker(sources: list[str]) -> list[tuple[bool, str]] | None:
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


def split(source: str) -> list[str]:
    """A large module cut before top-level classes into pieces of about CHUNK_BYTES."""
    if len(source) <= CHUNK_BYTES:
        return [source]
    pieces: list[str] = []
    start = 0
    for match in _CLASS_START.finditer(source):
        if match.start() - start >= CHUNK_BYTES:
            pieces.append(source[start : match.start()])
            start = match.start()
    pieces.append(source[start:])
    return pieces


def join(chunks: list[str]) -> str:
    """Formatted pieces of one module put back together, two blank lines between them."""
    if len(chunks) == 1:
        return chunks[0]
    return "\n\n\n".join(chunk.strip("\n") for chunk in chunks) + "\n"


def _checked(result: tuple[bool, str], name: str) -> str:
    formatted, text = result
    if not formatted:
        message = f"internal error: generated {name} is not valid Python: {text}"
        raise Failed([Diagnostic(message, Location(name))])
    return text


def _format(source: str) -> tuple[bool, str]:
    """(True, black's output), or (False, why black refused the source)."""
    import black  # only on a cache miss: importing black costs more than the rest of a run
    from black.mode import TargetVersion
    from black.parsing import InvalidInput

    mode = black.Mode(line_length=LINE_LENGTH, target_versions={TargetVersion.PY310})
    try:
        return True, black.format_str(source, mode=mode)
    except InvalidInput as exc:
        return False, str(exc)


if __name__ == "__main__":  # a worker of `_format_all`
    json.dump([_format(source) for source in json.load(sys.stdin)], sys.stdout)
