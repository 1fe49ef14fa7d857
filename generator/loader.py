"""Load one YAML or JSON file into plain data, remembering where every node came from.

JSON is parsed as YAML (it is a subset in practice) so both get the same source positions; the
format is chosen by content, never by file extension. YAML timestamps stay strings, booleans follow
YAML 1.2 (`yes`/`on` stay strings) and duplicate keys are errors, because each of those silently
changes what an AsyncAPI document means.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from generator.errors import Diagnostic, Failed, Location

_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_TIMESTAMP = "tag:yaml.org,2002:timestamp"
_BOOL = "tag:yaml.org,2002:bool"
_MERGE = "tag:yaml.org,2002:merge"


def escape_token(token: str | int) -> str:
    return str(token).replace("~", "~0").replace("/", "~1")


def join_pointer(pointer: str, token: str | int) -> str:
    return f"{pointer}/{escape_token(token)}"


def split_pointer(pointer: str) -> list[str]:
    if not pointer:
        return []
    return [part.replace("~1", "/").replace("~0", "~") for part in pointer.lstrip("/").split("/")]


@dataclass
class Document:
    """One source file: its data and the 1-based (line, col) of each node, by JSON pointer."""

    path: Path
    display: str
    data: Any
    positions: dict[str, tuple[int, int]] = field(default_factory=dict)
    key_positions: dict[str, tuple[int, int]] = field(default_factory=dict)
    url: str | None = None  # set for a document fetched over http(s)

    @property
    def key(self) -> str:
        return self.url or str(self.path)

    def location(self, pointer: str, *, key: bool = False) -> Location:
        table = self.key_positions if key and pointer in self.key_positions else self.positions
        while pointer and pointer not in table:
            pointer = pointer.rsplit("/", 1)[0]
        line, col = table.get(pointer, (1, 1))
        return Location(self.display, line, col)


class _Builder:
    """Turns a composed YAML node tree into data, recording positions and rejecting duplicates."""

    def __init__(self, display: str) -> None:
        self.display = display
        self.constructor = yaml.constructor.SafeConstructor()
        self.positions: dict[str, tuple[int, int]] = {}
        self.key_positions: dict[str, tuple[int, int]] = {}
        self.errors: list[Diagnostic] = []
        self._active: set[int] = set()

    def build(self, node: yaml.Node, pointer: str) -> Any:
        self.positions[pointer] = (node.start_mark.line + 1, node.start_mark.column + 1)
        if id(node) in self._active:
            self._error(node, "recursive YAML alias", pointer)
            return None
        self._active.add(id(node))
        try:
            if isinstance(node, yaml.MappingNode):
                return self._mapping(node, pointer)
            if isinstance(node, yaml.SequenceNode):
                return [
                    self.build(item, join_pointer(pointer, i)) for i, item in enumerate(node.value)
                ]
            return self._scalar(node)
        finally:
            self._active.discard(id(node))

    def _scalar(self, node: yaml.Node) -> Any:
        if node.tag == _TIMESTAMP:
            return node.value
        if node.tag == _BOOL and str(node.value).lower() not in ("true", "false"):
            return node.value
        return self.constructor.construct_object(node)

    def _mapping(self, node: yaml.MappingNode, pointer: str) -> dict[str, Any]:
        result: dict[str, Any] = {}
        merges: list[Any] = []
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE:
                merges.append(self.build(value_node, pointer))
                continue
            if not isinstance(key_node, yaml.ScalarNode):
                self._error(key_node, "mapping keys must be plain strings", pointer)
                continue
            key = str(key_node.value)
            child = join_pointer(pointer, key)
            if key in result:
                first = self.key_positions[child]
                self._error(
                    key_node, f"duplicate key {key!r} (first defined at line {first[0]})", child
                )
                continue
            self.key_positions[child] = (
                key_node.start_mark.line + 1,
                key_node.start_mark.column + 1,
            )
            result[key] = self.build(value_node, child)
        for merged in merges:
            for source in merged if isinstance(merged, list) else [merged]:
                if isinstance(source, dict):
                    for key, value in source.items():
                        result.setdefault(key, value)
        return result

    def _error(self, node: yaml.Node, message: str, pointer: str) -> None:
        mark = node.start_mark
        location = Location(self.display, mark.line + 1, mark.column + 1)
        self.errors.append(Diagnostic(message, location, pointer))


def _syntax_error(display: str, exc: yaml.YAMLError) -> Diagnostic:
    problem_mark = getattr(exc, "problem_mark", None)
    context_mark = getattr(exc, "context_mark", None)
    at_end = "end of stream" in str(getattr(exc, "problem", ""))
    mark = context_mark if (at_end and context_mark is not None) else problem_mark or context_mark
    line, col = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
    problem = getattr(exc, "problem", None) or str(exc)
    context = getattr(exc, "context", None)
    text = f"{context}, {problem}" if context else problem
    return Diagnostic(f"invalid YAML: {text}", Location(display, line, col))


_SURROGATE_PAIR = re.compile(
    r"(?<!\\)((?:\\\\)*)\\u(d[89ab][0-9a-f]{2})\\u(d[c-f][0-9a-f]{2})", re.IGNORECASE
)


def _join_surrogates(text: str) -> str:
    """JSON writes astral characters as escaped surrogate pairs, which YAML does not accept;
    put the character itself in their place (only in a JSON document)."""

    def join(match: re.Match[str]) -> str:
        high, low = int(match.group(2), 16), int(match.group(3), 16)
        return match.group(1) + chr(0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00))

    return _SURROGATE_PAIR.sub(join, text)


def _looks_like_json(text: str) -> bool:
    return text.lstrip()[:1] in ("{", "[")


def _json_error(display: str, text: str) -> Diagnostic | None:
    """Parse as JSON only to get JSON's own error messages for JSON-looking content."""
    try:
        json.loads(text)
    except json.JSONDecodeError as exc:
        return Diagnostic(f"invalid JSON: {exc.msg}", Location(display, exc.lineno, exc.colno))
    return None


def parse(text: str, path: Path, display: str) -> Document:
    """Parse text already read from `path`; raises Failed with located diagnostics."""
    if _looks_like_json(text):
        error = _json_error(display, text)
        if error is not None:
            raise Failed([error])
        text = _join_surrogates(text)
    try:
        root = yaml.compose(text, Loader=_Loader)
    except yaml.YAMLError as exc:
        raise Failed([_syntax_error(display, exc)]) from None
    if root is None:
        raise Failed([Diagnostic("the document is empty", Location(display))])
    builder = _Builder(display)
    data = builder.build(root, "")
    if builder.errors:
        raise Failed(builder.errors)
    return Document(path, display, data, builder.positions, builder.key_positions)


# Prose that documents `$ref` for their descriptions (70 times in one public spec): the value is
# the file's text, as other AsyncAPI tools read it.
TEXT_SUFFIXES = frozenset({".md", ".markdown", ".txt", ".rst", ".adoc", ".html", ".htm"})


def load(path: Path, display: str | None = None) -> Document:
    """Read and parse a file; unreadable files are reported like any other error. A referenced
    prose file (`TEXT_SUFFIXES`) is one string."""
    shown = display if display is not None else str(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise Failed([Diagnostic(f"cannot read file: {reason}", Location(shown))]) from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        message = f"file is not UTF-8 text (byte {exc.start})"
        raise Failed([Diagnostic(message, Location(shown))]) from None
    if path.suffix.lower() in TEXT_SUFFIXES:
        return Document(path, shown, text, {"": (1, 1)})
    return parse(text, path, shown)
