"""`$ref` resolution across files, and a cursor that walks a document through its references.

References are never inlined into the source data: later stages need a reference's identity (which
component a message is, which channel an operation points at), and circular schemas must stay
circular. `Node` follows references transparently and always knows where its value came from.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from generator.errors import Diagnostic, Failed, Location
from generator.loader import Document, escape_token, join_pointer, load, split_pointer

REF = "$ref"


def is_ref(value: Any) -> bool:
    return isinstance(value, dict) and isinstance(value.get(REF), str)


@dataclass(frozen=True)
class Target:
    """Where a reference lands: a document and a JSON pointer inside it."""

    doc: Document
    pointer: str

    @property
    def key(self) -> tuple[str, str]:
        return (str(self.doc.path), self.pointer)


class Workspace:
    """Every document loaded for one run, keyed by absolute path, each loaded once."""

    def __init__(self, root_path: Path, root_display: str | None = None) -> None:
        self.root_dir = root_path.resolve().parent
        self.docs: dict[Path, Document] = {}
        self.root = self._load(root_path.resolve(), root_display or str(root_path))

    def _load(self, path: Path, display: str) -> Document:
        if path not in self.docs:
            self.docs[path] = load(path, display)
        return self.docs[path]

    def _display(self, path: Path) -> str:
        """Paths as the user would type them: relative to the working directory when possible."""
        try:
            return os.path.relpath(path)
        except ValueError:
            return str(path)

    def resolve(self, ref: str, origin: Document, at: str) -> Target:
        """Resolve `ref` written in `origin` at pointer `at`; raises Failed naming both ends."""
        parts = urlsplit(ref)
        where = origin.location(at)
        if parts.scheme in ("http", "https"):
            message = (
                f"remote reference {ref!r} is not supported: save the file and $ref it locally"
            )
            raise Failed([Diagnostic(message, where, at)])
        if parts.scheme and parts.scheme != "file":
            raise Failed([Diagnostic(f"unsupported reference {ref!r}", where, at)])
        doc = origin
        if parts.path:
            path = (origin.path.parent / unquote(parts.path)).resolve()
            try:
                doc = self._load(path, self._display(path))
            except Failed as exc:
                cause = exc.diagnostics[0]
                if cause.location.file == self._display(path) and "cannot read" in cause.message:
                    message = f"$ref {ref!r}: file not found ({self._display(path)})"
                    raise Failed([Diagnostic(message, where, at)]) from None
                raise
        pointer = unquote(parts.fragment)
        if pointer and not pointer.startswith("/"):
            message = f"$ref {ref!r}: only JSON-pointer fragments (#/...) are supported"
            raise Failed([Diagnostic(message, where, at)])
        if not _exists(doc.data, pointer):
            message = f"$ref {ref!r} points at nothing"
            raise Failed([Diagnostic(message, where, join_pointer(at, REF))])
        return Target(doc, pointer.rstrip("/") if pointer != "/" else pointer)

    def node(self, target: Target) -> Node:
        return Node(self, target.doc, target.pointer, _get(target.doc.data, target.pointer))

    def root_node(self) -> Node:
        return Node(self, self.root, "", self.root.data)


def _get(data: Any, pointer: str) -> Any:
    for token in split_pointer(pointer):
        data = data[int(token)] if isinstance(data, list) else data[token]
    return data


def _exists(data: Any, pointer: str) -> bool:
    try:
        _get(data, pointer)
    except (KeyError, IndexError, ValueError, TypeError):
        return False
    return True


@dataclass(frozen=True)
class Node:
    """A value in a document, with references already followed (up to a limit, for safety)."""

    ws: Workspace
    doc: Document
    pointer: str
    value: Any

    @property
    def target(self) -> Target:
        return Target(self.doc, self.pointer)

    @property
    def location(self) -> Location:
        return self.doc.location(self.pointer)

    def deref(self) -> Node:
        node = self
        seen: set[tuple[str, str]] = set()
        while is_ref(node.value):
            if node.target.key in seen:
                message = f"$ref {node.value[REF]!r} is a reference loop that never reaches a value"
                raise Failed([Diagnostic(message, node.location, node.pointer)])
            seen.add(node.target.key)
            node = node.ws.node(node.ws.resolve(node.value[REF], node.doc, node.pointer))
        return node

    def child(self, key: str | int) -> Node:
        """The child at `key`, following a reference in it; the child must exist."""
        base = self.deref()
        raw = base.value[key]
        return Node(base.ws, base.doc, join_pointer(base.pointer, key), raw).deref()

    def get(self, key: str) -> Node | None:
        base = self.deref()
        if not isinstance(base.value, dict) or key not in base.value:
            return None
        return base.child(key)

    def items(self) -> Iterator[tuple[str, Node]]:
        base = self.deref()
        if isinstance(base.value, dict):
            for key in base.value:
                yield key, base.child(key)

    def elements(self) -> Iterator[Node]:
        base = self.deref()
        if isinstance(base.value, list):
            for index in range(len(base.value)):
                yield base.child(index)

    def raw_child(self, key: str) -> Any:
        """The child's literal value, a `$ref` object left as it is."""
        base = self.deref()
        return base.value.get(key) if isinstance(base.value, dict) else None


def ref_pointer(node_value: Any) -> str | None:
    """The local pointer of a same-document reference (`#/a/b` gives `/a/b`)."""
    if not is_ref(node_value):
        return None
    ref: str = node_value[REF]
    return unquote(ref[1:]) if ref.startswith("#") else None


def pointer_of(*tokens: str | int) -> str:
    return "".join(f"/{escape_token(t)}" for t in tokens)
