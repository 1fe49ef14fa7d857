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
from typing import Any, Protocol

import yaml

from generator.budget import MAX_DEPTH, Budget, too_deep
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


class _Mark(Protocol):
    """A position in the text: PyYAML's and libyaml's marks alike."""

    line: int
    column: int


@dataclass
class _Open:
    """A collection being scanned: its anchor, the nodes counted before it, its own level and
    the deepest level reached inside it."""

    anchor: str | None
    nodes_before: int
    depth: int
    deepest: int


class _Scan:
    """Counts nodes and levels from the parser's events, which build nothing, so that a text
    beyond the budget is refused before a node is made. An alias counts as the nodes it repeats
    and reaches as deep as they do. Syntax errors are left for `yaml.compose` to report."""

    def __init__(self, budget: Budget, display: str) -> None:
        self.budget = budget
        self.display = display
        self.open: list[_Open] = []
        self.sizes: dict[str, int] = {}  # anchor -> nodes it stands for, its aliases expanded
        self.heights: dict[str, int] = {}  # anchor -> levels it adds where an alias repeats it
        self.aliased = False

    def run(self, text: str) -> None:
        try:
            for event in yaml.parse(text, Loader=_Loader):
                self._event(event)
        except yaml.MarkedYAMLError as exc:
            # libyaml's scanner reads nested brackets ahead, and stops at 1,000 of them
            if "nesting depth" in str(exc.problem) and exc.problem_mark is not None:
                self._fail(too_deep(), exc.problem_mark)
        except yaml.YAMLError:
            return

    def _event(self, event: yaml.Event) -> None:
        if isinstance(event, yaml.CollectionStartEvent):
            depth = len(self.open) + 1
            self._reach(depth, event)
            self._add(1, event)
            self.open.append(_Open(event.anchor, self.budget.nodes_used - 1, depth, depth))
        elif isinstance(event, yaml.CollectionEndEvent):
            done = self.open.pop()
            if done.anchor is not None:
                self.sizes[done.anchor] = self.budget.nodes_used - done.nodes_before
                self.heights[done.anchor] = done.deepest - done.depth + 1
            if self.open:
                self.open[-1].deepest = max(self.open[-1].deepest, done.deepest)
        elif isinstance(event, yaml.ScalarEvent):
            self._add(1, event)
            if event.anchor is not None:
                self.sizes[event.anchor], self.heights[event.anchor] = 1, 0
        elif isinstance(event, yaml.AliasEvent):
            anchor, self.aliased = str(event.anchor), True
            self._reach(len(self.open) + self.heights.get(anchor, 0), event)
            self._add(self.sizes.get(anchor, 1), event)

    def _reach(self, depth: int, event: yaml.Event) -> None:
        if depth > MAX_DEPTH:
            self._fail(too_deep(), event.start_mark)
        if self.open:
            self.open[-1].deepest = max(self.open[-1].deepest, depth)

    def _add(self, nodes: int, event: yaml.Event) -> None:
        if not self.budget.spend_nodes(nodes):
            counted = " (aliases counted as what they repeat)" if self.aliased else ""
            self._fail(self.budget.limits.too_many_nodes(counted), event.start_mark)

    def _fail(self, message: str, mark: _Mark | None) -> None:
        line, col = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
        raise Failed([Diagnostic(message, Location(self.display, line, col))])


_SURROGATE_PAIR = re.compile(
    r"(?<!\\)((?:\\\\)*)\\u(d[89ab][0-9a-f]{2})\\u(d[c-f][0-9a-f]{2})", re.IGNORECASE
)


def _join_surrogates(text: str) -> str:
    """JSON writes astral characters as escaped surrogate pairs, which YAML does not accept;
    put the character itself in their place (only in a JSON document)."""
    if "\\u" not in text:  # the regular expression takes 0.6 s on 10 MB
        return text

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


def parse(text: str, path: Path, display: str, budget: Budget | None = None) -> Document:
    """Parse text already read from `path`; raises Failed with located diagnostics. The text is
    measured against `budget` (a fresh one if none) before anything is built."""
    json_like = _looks_like_json(text)
    source = _join_surrogates(text) if json_like else text
    _Scan(budget or Budget(), display).run(source)
    if json_like:
        error = _json_error(display, text)
        if error is not None:
            raise Failed([error])
    try:
        root = yaml.compose(source, Loader=_Loader)
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


def load(path: Path, display: str | None = None, budget: Budget | None = None) -> Document:
    """Read and parse a file; unreadable files are reported like any other error. A referenced
    prose file (`TEXT_SUFFIXES`) is one string. Reading stops past what `budget` allows."""
    shown = display if display is not None else str(path)
    budget = budget or Budget()
    try:
        with path.open("rb") as file:
            raw = file.read(budget.bytes_left + 1)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise Failed([Diagnostic(f"cannot read file: {reason}", Location(shown))]) from None
    budget.spend_bytes(len(raw), Location(shown))
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        message = f"file is not UTF-8 text (byte {exc.start})"
        raise Failed([Diagnostic(message, Location(shown))]) from None
    if path.suffix.lower() in TEXT_SUFFIXES:
        return Document(path, shown, text, {"": (1, 1)})
    return parse(text, path, shown, budget)
