"""The format stage: black, in-process, on every generated Python file."""

from __future__ import annotations

from importlib import metadata

import black
from black.mode import TargetVersion
from black.parsing import InvalidInput

from generator.cache import cached
from generator.errors import Diagnostic, Failed, Location

MODE = black.Mode(line_length=100, target_versions={TargetVersion.PY310})


def format_python(source: str, name: str) -> str:
    """Formatted source; a bug that yields invalid Python is reported, not hidden."""
    key = (metadata.version("black"), str(MODE), source)
    return cached("black", key, lambda: _format(source, name))


def _format(source: str, name: str) -> str:
    try:
        return black.format_str(source, mode=MODE)
    except InvalidInput as exc:
        raise Failed(
            [
                Diagnostic(
                    f"internal error: generated {name} is not valid Python: {exc}", Location(name)
                )
            ]
        ) from None
