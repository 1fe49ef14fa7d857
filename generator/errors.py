"""Errors are values: every stage returns diagnostics with a location; only the CLI prints them."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Level(enum.Enum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True, order=True)
class Location:
    """A point in a source file; line and column are 1-based, as editors show them. Line 0
    means the file or folder as a whole: it is shown without a position."""

    file: str
    line: int = 1
    col: int = 1

    def __str__(self) -> str:
        return self.file if self.line == 0 else f"{self.file}:{self.line}:{self.col}"


@dataclass(frozen=True)
class Diagnostic:
    message: str
    location: Location
    pointer: str | None = None
    level: Level = Level.ERROR

    def render(self) -> str:
        prefix = "" if self.level is Level.ERROR else "warning: "
        at = "" if self.pointer is None else f" (at {self.pointer or 'document root'})"
        return f"{self.location}: {prefix}{self.message}{at}"

    def sort_key(self) -> tuple[Location, str]:
        return (self.location, self.message)


class Failed(Exception):
    """Raised by a stage that cannot go on; carries the diagnostics that explain why."""

    def __init__(self, diagnostics: list[Diagnostic]) -> None:
        super().__init__("; ".join(d.render() for d in diagnostics))
        self.diagnostics = diagnostics
