"""The format stage: every generated Python file in black's style, then compiled to be sure.

`ruff format` is the engine: it formats a whole project in a fraction of a second, where black
took most of a large project's generation time. Black itself is there on request
(`--formatter black`); the tests prove both give the same bytes. A result is cached by content,
so a re-run formats and compiles only the files that changed.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

from generator.cache import fingerprint, lookup, store
from generator.errors import Diagnostic, Failed, Location

LINE_LENGTH = 100
TARGET = "py311"  # what generated projects require
PYTHON = f"{TARGET[2]}.{TARGET[3:]}"  # the same, as `requires-python` and mypy spell it
TIMEOUT = 300  # seconds for one ruff process; a whole 1,000-channel project takes under one


def format_files(files: dict[str, str], formatter: str = "ruff") -> dict[str, str]:
    """Every file, the Python ones formatted; the static runtime is formatted in this
    repository already and copied as it is."""
    return {**files, **_formatted({p: t for p, t in files.items() if is_formatted(p)}, formatter)}


def format_pieces(pieces: list[str], name: str, formatter: str = "ruff") -> list[str]:
    """Pieces of one module (`name`), each formatted and compiled on its own, so that a
    module made of many (the payload models) costs only the pieces that changed."""
    named = {f"{name} (part {index + 1})": piece for index, piece in enumerate(pieces)}
    return list(_formatted(named, formatter).values())


def _formatted(files: dict[str, str], formatter: str) -> dict[str, str]:
    """The files formatted and compiled, from the cache where they were before."""
    formatted: dict[str, str] = {}
    misses: dict[str, str] = {}
    for path, text in files.items():
        found = lookup("format", _key(formatter, text))
        if found is None:
            misses[path] = text
        else:
            formatted[path] = found
    made = _ruff(misses) if formatter == "ruff" else {p: _black(t, p) for p, t in misses.items()}
    for path, text in made.items():
        store("format", _key(formatter, misses[path]), text)
    return {path: formatted[path] if path in formatted else made[path] for path in files}


def format_python(source: str, name: str, formatter: str = "ruff") -> str:
    """One file formatted and compiled."""
    return format_files({name: source}, formatter)[name]


def is_formatted(path: str) -> bool:
    return path.endswith(".py") and "/_runtime/" not in path


def _key(formatter: str, source: str) -> tuple[str, ...]:
    """The formatter's version and this module's options shape the result."""
    return (fingerprint(formatter), fingerprint(__name__), formatter, source)


def ruff_binary() -> str:
    """The binary the `ruff` package installs (a dependency of this one)."""
    try:
        from ruff import find_ruff_bin

        return str(find_ruff_bin())
    except (ImportError, FileNotFoundError):
        message = "ruff is not installed: reinstall asyncapi-pygen, or use --formatter black"
        raise Failed([Diagnostic(message, Location("ruff"))]) from None


def _ruff(sources: dict[str, str]) -> dict[str, str]:
    """One `ruff format` over a folder holding every file: a process per file would cost more
    than the formatting (measured in bench/generate.py). The folder is in memory where the
    system has one (creating 2,000 files on a disk took longer than formatting them), and this
    process compiles the sources while ruff formats them."""
    if not sources:
        return {}
    names = {f"{index:06d}.py": path for index, path in enumerate(sources)}
    with tempfile.TemporaryDirectory(prefix="asyncapi-pygen-", dir=_scratch()) as tmp:
        root = Path(tmp)
        for name, path in names.items():
            (root / name).write_bytes(sources[path].encode("utf-8"))
        options = [f"--line-length={LINE_LENGTH}", f"--target-version={TARGET}"]
        command = [ruff_binary(), "format", "--isolated", "--no-cache", "--quiet", *options]
        with subprocess.Popen(
            [*command, *LF, *names], cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        ) as ruff:
            try:
                for path, text in sources.items():
                    _check_compiles(text, path)
                _, stderr = ruff.communicate(timeout=TIMEOUT)
            finally:
                ruff.kill()
        if ruff.returncode != 0:
            _refused(stderr.decode("utf-8", "replace"), names)
        return {path: (root / name).read_bytes().decode("utf-8") for name, path in names.items()}


def _scratch() -> str | None:
    """A memory-backed folder for temporary files, if this system has one (Linux)."""
    shm = "/dev/shm"
    return shm if os.path.isdir(shm) and os.access(shm, os.W_OK | os.X_OK) else None


LF = ["--config", "format.line-ending = 'lf'"]  # black's, whatever the platform


def _refused(stderr: str, names: dict[str, str]) -> None:
    """Ruff names the files of its batch: say which generated file it was."""
    named = [path for name, path in names.items() if name in stderr]
    for name, path in names.items():
        stderr = stderr.replace(name, path)
    message = f"internal error: generated code is not valid Python: {stderr.strip()}"
    raise Failed([Diagnostic(message, Location(named[0] if named else next(iter(names.values()))))])


def _black(source: str, name: str) -> str:
    _check_compiles(source, name)
    import black  # only on request: importing black costs more than a small project's run
    from black.mode import TargetVersion
    from black.parsing import InvalidInput

    mode = black.Mode(line_length=LINE_LENGTH, target_versions={TargetVersion[TARGET.upper()]})
    try:
        return black.format_str(source, mode=mode)
    except InvalidInput as exc:
        message = f"internal error: generated {name} is not valid Python: {exc}"
        raise Failed([Diagnostic(message, Location(name))]) from None


def _check_compiles(source: str, name: str) -> None:
    """A formatter parses, but a duplicate argument or a misplaced `return` only fails to
    compile (formatting changes layout only: the source compiles as its result does)."""
    try:
        compile(source, name, "exec", dont_inherit=True)
    except SyntaxError as exc:
        text = f"internal error: generated {name} does not compile: {exc.msg} (line {exc.lineno})"
        raise Failed([Diagnostic(text, Location(name))]) from None
