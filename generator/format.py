"""The format stage: black, in-process, on every generated Python file."""

from __future__ import annotations

from generator.cache import cached, fingerprint
from generator.errors import Diagnostic, Failed, Location

LINE_LENGTH = 100


def format_files(files: dict[str, str]) -> dict[str, str]:
    """Every generated Python file formatted; the static runtime is formatted in this repository
    already and copied as it is."""
    return {
        path: (
            format_python(text, path) if path.endswith(".py") and "/_runtime/" not in path else text
        )
        for path, text in files.items()
    }


def format_python(source: str, name: str) -> str:
    """Formatted source, compiled once to be sure: black parses, but a duplicate argument or a
    misplaced `return` only fails at compile time. A bug is reported, never written."""
    key = (fingerprint("black"), str(LINE_LENGTH), source)
    formatted = cached("black", key, lambda: _format(source, name))
    try:
        compile(formatted, name, "exec", dont_inherit=True)
    except SyntaxError as exc:
        text = f"internal error: generated {name} does not compile: {exc.msg} (line {exc.lineno})"
        raise Failed([Diagnostic(text, Location(name))]) from None
    return formatted


def _format(source: str, name: str) -> str:
    import black  # only on a cache miss: importing black costs more than the rest of a run
    from black.mode import TargetVersion
    from black.parsing import InvalidInput

    mode = black.Mode(line_length=LINE_LENGTH, target_versions={TargetVersion.PY310})
    try:
        return black.format_str(source, mode=mode)
    except InvalidInput as exc:
        raise Failed(
            [
                Diagnostic(
                    f"internal error: generated {name} is not valid Python: {exc}", Location(name)
                )
            ]
        ) from None
