"""Load one YAML or JSON file into plain data, remembering where every node came from.

JSON is parsed as YAML (it is a subset in practice) so both get the same source positions; the
format is chosen by content, never by file extension. YAML timestamps stay strings, booleans follow
YAML 1.2 (`yes`/`on` stay strings) and duplicate keys are errors, because each of those silently
changes what an AsyncAPI document means.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import yaml

from generator.budget import MAX_DEPTH, Budget, too_deep
from generator.errors import Diagnostic, Failed, Location

_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_Event = Any  # PyYAML's and libyaml's events alike (their type stubs disagree on marks)
_TIMESTAMP = "tag:yaml.org,2002:timestamp"
_BOOL = "tag:yaml.org,2002:bool"
_MERGE = "tag:yaml.org,2002:merge"
_STR = "tag:yaml.org,2002:str"
_CORE = "tag:yaml.org,2002:"
# The tags a document may write out: those of YAML's JSON schema. Others (`!custom`, `!!set`,
# `!!binary`, `!!python/...`) make data JSON cannot hold, so they are errors.
_SCALAR_TAGS = frozenset(_CORE + name for name in ("str", "int", "float", "bool", "null"))
_MAPPING_TAGS = frozenset({"!", _CORE + "map"})
_SEQUENCE_TAGS = frozenset({"!", _CORE + "seq"})


def _shown(tag: str) -> str:
    """A tag as a document spells it: `!!int`, not `tag:yaml.org,2002:int`."""
    return "!!" + tag.removeprefix(_CORE) if tag.startswith(_CORE) else tag


def escape_token(token: str | int) -> str:
    text = str(token)
    if "~" in text or "/" in text:
        return text.replace("~", "~0").replace("/", "~1")
    return text


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
    """A collection being read: its anchor, the nodes counted before it, its own level, the
    deepest level reached inside it; where it is, its data so far and, for a mapping, the
    state of the entry being read."""

    anchor: str | None
    nodes_before: int
    depth: int
    deepest: int
    pointer: str | None  # None: not kept (a rejected key or its value), no positions
    value: dict[str, Any] | list[Any]
    positions_from: int
    keys_from: int
    key: tuple[str, str] | None = None  # ("key", text), ("merge", ""), ("drop", ""); None: next
    merge_mark: Any = None  # where the `<<` key being read is
    key_marks: dict[str, int] = field(default_factory=dict)  # key -> its line
    merges: list[Any] = field(default_factory=list)


@dataclass(frozen=True)
class _Anchored:
    """What an alias repeats: the data, its scalar text (a key may be an alias), and the
    positions recorded under its pointer, replayed under the alias's."""

    value: Any
    text: str | None
    pointer: str | None
    positions: tuple[int, int]
    keys: tuple[int, int]


class _Load:
    """One pass over the parser's events, which build nothing: each node is counted against the
    budget (an alias as the nodes it repeats, and as deep as they reach) before its data is
    made, so a text beyond the budget is refused at the node that passes it. The data comes
    with the position of every node and key, by JSON pointer; duplicate keys, keys that are
    not plain strings and recursive aliases are errors."""

    def __init__(self, budget: Budget, display: str) -> None:
        self.budget = budget
        self.display = display
        self.open: list[_Open] = []
        self.sizes: dict[str, int] = {}  # anchor -> nodes it stands for, its aliases expanded
        self.heights: dict[str, int] = {}  # anchor -> levels it adds where an alias repeats it
        self.aliased = False
        self.anchors: dict[str, _Anchored] = {}
        self.anchor_marks: dict[str, Any] = {}
        self.positions: list[tuple[str, tuple[int, int]]] = []
        self.keys: list[tuple[str, tuple[int, int]]] = []
        self.errors: list[Diagnostic] = []
        self.root: list[Any] = []  # the document's data, once read
        self.documents: list[Any] = []
        self.resolver: Any = yaml.resolver.Resolver()
        self.tags: dict[str, str] = {}
        self.constructor = yaml.constructor.SafeConstructor()

    def run(self, text: str) -> None:
        """Read the text; raises Failed for the budget, yaml.YAMLError for its syntax."""
        try:
            for event in yaml.parse(text, Loader=_Loader):
                self._event(event)
        except yaml.MarkedYAMLError as exc:
            # libyaml's scanner reads nested brackets ahead, and stops at 1,000 of them
            if "nesting depth" in str(exc.problem) and exc.problem_mark is not None:
                self._fail(too_deep(), exc.problem_mark)
            raise

    def _event(self, event: _Event) -> None:
        if isinstance(event, yaml.ScalarEvent):
            self._add(1, event)
            self._scalar(event)
        elif isinstance(event, yaml.CollectionStartEvent):
            depth = len(self.open) + 1
            self._reach(depth, event)
            self._add(1, event)
            self._start(event, depth)
        elif isinstance(event, yaml.CollectionEndEvent):
            self._end()
        elif isinstance(event, yaml.AliasEvent):
            anchor, self.aliased = str(event.anchor), True
            self._reach(len(self.open) + self.heights.get(anchor, 0), event)
            self._add(self.sizes.get(anchor, 1), event)
            self._alias(anchor, event)
        elif isinstance(event, yaml.DocumentStartEvent):
            mark: Any = event.start_mark
            if self.documents:
                raise yaml.composer.ComposerError(
                    "expected a single document in the stream",
                    self.documents[0],
                    "but found another document",
                    mark,
                )
            self.documents.append(mark)

    def _pointer(self) -> str | None:
        """Where the next node goes; None if it is not kept."""
        if not self.open:
            return ""
        top = self.open[-1]
        if top.pointer is None:
            return None
        if isinstance(top.value, list):
            return join_pointer(top.pointer, len(top.value))
        if top.key is None or top.key[0] == "drop":
            return None  # a key (keys are no nodes of the data) or a dropped entry's value
        return top.pointer if top.key[0] == "merge" else join_pointer(top.pointer, top.key[1])

    def _expects_key(self) -> bool:
        top = self.open[-1] if self.open else None
        return top is not None and isinstance(top.value, dict) and top.key is None

    def _record(self, pointer: str | None, mark: Any) -> None:
        if pointer is not None:
            self.positions.append((pointer, (mark.line + 1, mark.column + 1)))

    def _scalar(self, event: _Event) -> None:
        self._anchor(event)
        tag = event.tag
        if tag is None or tag == "!":
            tag = self._resolve(event.value, event.implicit[0])
        elif tag not in _SCALAR_TAGS:
            self._refuse_tag(event)
            tag = _STR
        if self._expects_key():
            self._key(event.value, tag == _MERGE, event.start_mark)
            self._anchored(event.anchor, event.value, event.value, None, len(self.positions))
            return
        pointer = self._pointer()
        self._record(pointer, event.start_mark)
        value = self._value(event, tag, pointer)
        self._anchored(event.anchor, value, event.value, pointer, len(self.positions) - 1)
        self._place(value)

    def _refuse_tag(self, event: _Event) -> None:
        where = None if self._expects_key() else self._pointer()
        message = f"the YAML tag {_shown(event.tag)} is not allowed: a document holds JSON data"
        self._error(event.start_mark, message, where)

    def _resolve(self, text: str, plain: bool) -> str:
        """A scalar's implicit tag: a quoted one is a string; a plain one is looked up by its
        text once (a document repeats `string`, `object`, `true` thousands of times)."""
        if not plain:
            return _STR
        tag = self.tags.get(text)
        if tag is None:
            tag = self.tags[text] = self.resolver.resolve(yaml.ScalarNode, text, (True, False))
        return tag

    def _value(self, event: _Event, tag: str, pointer: str | None) -> Any:
        """The scalar's data; one that is no JSON value (`!!int abc`, `.nan`, `.inf`) is a
        located error, and None in its place."""
        try:
            value = self._construct(event, tag)
        except (ValueError, TypeError, yaml.YAMLError):
            self._error(event.start_mark, f"{event.value!r} is no {_shown(tag)}", pointer)
            return None
        if isinstance(value, float) and not math.isfinite(value):
            self._error(event.start_mark, f"{event.value} is not a JSON number", pointer)
            return None
        return value

    def _construct(self, event: _Event, tag: str) -> Any:
        if tag in (_STR, _TIMESTAMP):
            return event.value
        if tag == _BOOL and event.value.lower() not in ("true", "false"):
            return event.value
        node = yaml.ScalarNode(tag, event.value, event.start_mark, event.end_mark, event.style)
        return self.constructor.construct_object(node)

    def _key(self, text: str, merge: bool, mark: Any) -> None:
        top = self.open[-1]
        if merge:
            top.key, top.merge_mark = ("merge", ""), mark
            return
        if text in top.key_marks:
            if top.pointer is not None:
                message = f"duplicate key {text!r} (first defined at line {top.key_marks[text]})"
                self._error(mark, message, join_pointer(top.pointer, text))
            top.key = ("drop", "")
            return
        top.key_marks[text] = mark.line + 1
        top.key = ("key", text)
        if top.pointer is not None:
            self.keys.append((join_pointer(top.pointer, text), (mark.line + 1, mark.column + 1)))

    def _start(self, event: _Event, depth: int) -> None:
        self._anchor(event)
        if self._expects_key():
            self._error(
                event.start_mark, "mapping keys must be plain strings", self.open[-1].pointer
            )
            pointer = None
        else:
            pointer = self._pointer()
        self._record(pointer, event.start_mark)
        mapping = isinstance(event, yaml.MappingStartEvent)
        if event.tag is not None and event.tag not in (
            _MAPPING_TAGS if mapping else _SEQUENCE_TAGS
        ):
            self._refuse_tag(event)
        value: dict[str, Any] | list[Any] = {} if mapping else []
        first = len(self.positions) - (pointer is not None)
        nodes_before = self.budget.nodes_used - 1
        frame = _Open(
            event.anchor, nodes_before, depth, depth, pointer, value, first, len(self.keys)
        )
        self.open.append(frame)

    def _end(self) -> None:
        done = self.open.pop()
        if isinstance(done.value, dict):
            for merged in done.merges:
                for source in merged if isinstance(merged, list) else [merged]:
                    if isinstance(source, dict):
                        for key, value in source.items():
                            done.value.setdefault(key, value)
        if done.anchor is not None:
            self.sizes[done.anchor] = self.budget.nodes_used - done.nodes_before
            self.heights[done.anchor] = done.deepest - done.depth + 1
            self.anchors[done.anchor] = _Anchored(
                done.value,
                None,
                done.pointer,
                (done.positions_from, len(self.positions)),
                (done.keys_from, len(self.keys)),
            )
        if self.open:
            self.open[-1].deepest = max(self.open[-1].deepest, done.deepest)
        self._place(done.value)

    def _anchor(self, event: _Event) -> None:
        """A new anchor; the same name twice is an error, as in PyYAML's composer."""
        if event.anchor is None:
            return
        first = self.anchor_marks.get(event.anchor)
        if first is not None:
            raise yaml.composer.ComposerError(
                f"found duplicate anchor {event.anchor!r}; first occurrence",
                first,
                "second occurrence",
                event.start_mark,
            )
        self.anchor_marks[event.anchor] = event.start_mark

    def _anchored(
        self, anchor: str | None, value: Any, text: str, pointer: str | None, at: int
    ) -> None:
        if anchor is not None:
            self.sizes[anchor], self.heights[anchor] = 1, 0
            span = (at, at + 1) if pointer is not None else (at, at)
            self.anchors[anchor] = _Anchored(value, text, pointer, span, (0, 0))

    def _alias(self, anchor: str, event: _Event) -> None:
        found = self.anchors.get(anchor)
        if found is None:
            if anchor not in self.anchor_marks:
                raise yaml.composer.ComposerError(
                    None, None, f"found undefined alias {anchor!r}", event.start_mark
                )
            pointer = None if self._expects_key() else self._pointer()
            if pointer is not None:
                self._error(self.anchor_marks[anchor], "recursive YAML alias", pointer)
            self._place(None)
            return
        if self._expects_key():
            if found.text is None:
                self._error(
                    event.start_mark, "mapping keys must be plain strings", self.open[-1].pointer
                )
                self._place(None)
            else:
                self._key(found.text, False, event.start_mark)
            return
        self._replay(found, self._pointer())
        self._place(_copy(found.value))

    def _replay(self, found: _Anchored, pointer: str | None) -> None:
        """The positions of the repeated nodes, under the alias's pointer."""
        if pointer is None or found.pointer is None:
            return
        cut = len(found.pointer)
        for table, (low, high) in ((self.positions, found.positions), (self.keys, found.keys)):
            table.extend((pointer + where[cut:], at) for where, at in table[low:high])

    def _place(self, value: Any) -> None:
        """A finished node into its collection (or as the document)."""
        if not self.open:
            self.root.append(value)
            return
        top = self.open[-1]
        if isinstance(top.value, list):
            top.value.append(value)
        elif top.key is None:
            top.key = ("drop", "")  # a key that is no plain string: its value is not kept
        else:
            kind, text = top.key
            if kind == "key":
                top.value[text] = value
            elif kind == "merge":
                self._merge(top, value)
            top.key = None

    def _merge(self, top: _Open, value: Any) -> None:
        """`<<: *defaults` (or a list of them) copies keys the mapping lacks; anything else
        under `<<` would be dropped in silence, so it is an error."""
        sources = value if isinstance(value, list) else [value]
        if all(isinstance(source, dict) for source in sources):
            top.merges.append(value)
        else:
            message = "a merge key (<<) takes a mapping or a list of mappings"
            self._error(top.merge_mark, message, top.pointer)

    def _reach(self, depth: int, event: _Event) -> None:
        if depth > MAX_DEPTH:
            self._fail(too_deep(), event.start_mark)
        if self.open:
            self.open[-1].deepest = max(self.open[-1].deepest, depth)

    def _add(self, nodes: int, event: _Event) -> None:
        if not self.budget.spend_nodes(nodes):
            counted = " (aliases counted as what they repeat)" if self.aliased else ""
            self._fail(self.budget.limits.too_many_nodes(counted), event.start_mark)

    def _fail(self, message: str, mark: _Mark | None) -> None:
        line, col = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
        raise Failed([Diagnostic(message, Location(self.display, line, col))])

    def _error(self, mark: Any, message: str, pointer: str | None) -> None:
        location = Location(self.display, mark.line + 1, mark.column + 1)
        self.errors.append(Diagnostic(message, location, pointer))


def _copy(value: Any) -> Any:
    """Data repeated by an alias, as a copy of its own (as if written out again)."""
    if isinstance(value, dict):
        return {key: _copy(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_copy(item) for item in value]
    return value


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
    measured against `budget` (a fresh one if none) as it is read, before each node is built."""
    json_like = _looks_like_json(text)
    source = _join_surrogates(text) if json_like else text
    reader = _Load(budget or Budget(), display)
    try:
        reader.run(source)
    except yaml.YAMLError as exc:
        error = _json_error(display, text) if json_like else None
        raise Failed([error or _syntax_error(display, exc)]) from None
    if json_like:
        error = _json_error(display, text)
        if error is not None:
            raise Failed([error])
    if not reader.root:
        raise Failed([Diagnostic("the document is empty", Location(display))])
    if reader.errors:
        raise Failed(reader.errors)
    positions, keys = dict(reader.positions), dict(reader.keys)
    return Document(path, display, reader.root[0], positions, keys)


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
