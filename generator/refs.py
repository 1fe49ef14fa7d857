"""`$ref` resolution across files, and a cursor that walks a document through its references.

References are never inlined into the source data: later stages need a reference's identity (which
component a message is, which channel an operation points at), and circular schemas must stay
circular. `Node` follows references transparently and always knows where its value came from.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urljoin, urlsplit

from generator.budget import Budget, Limits
from generator.errors import Diagnostic, Failed, Location
from generator.loader import Document, join_pointer, load, parse, split_pointer

REF = "$ref"
_REMOTE = re.compile(r"^https?://", re.IGNORECASE)
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


def is_ref(value: Any) -> bool:
    return isinstance(value, dict) and isinstance(value.get(REF), str)


@dataclass(frozen=True)
class Target:
    """Where a reference lands: a document and a JSON pointer inside it."""

    doc: Document
    pointer: str

    @property
    def key(self) -> tuple[str, str]:
        return (self.doc.key, self.pointer)


@dataclass(frozen=True)
class Access:
    """What a run may read: the document's own folder tree, the extra `roots` the user named,
    http(s) URLs if `remote`; and how much of it (`limits`)."""

    remote: bool = False
    roots: tuple[Path, ...] = ()
    limits: Limits = field(default_factory=Limits)


DEFAULT_ACCESS = Access()


class Workspace:
    """Every document loaded for one run, each loaded once: by absolute path, or by URL when
    remote references are allowed."""

    def __init__(
        self, root_path: Path, root_display: str | None = None, *, access: Access = DEFAULT_ACCESS
    ) -> None:
        self.access = access
        self.budget = Budget(access.limits)
        self.docs: dict[str, Document] = {}
        # What could not be had, never tried twice: a file's errors, why a URL's fetch failed
        self.unloadable: dict[str, Failed] = {}
        self.unreachable: dict[str, str] = {}
        path = root_path.resolve()
        self.roots = (path.parent, *(root.resolve() for root in access.roots))
        self.root = self.docs[str(path)] = load(path, root_display or str(root_path), self.budget)

    def _display(self, path: Path) -> str:
        """Paths as the user would type them: relative to the working directory when possible."""
        try:
            return os.path.relpath(path)
        except ValueError:
            return str(path)

    def resolve(self, ref: str, origin: Document, at: str) -> Target:
        """Resolve `ref` written in `origin` at pointer `at`; raises Failed naming both ends."""
        where = origin.location(at)
        file_part, _, fragment = ref.removeprefix("file://").partition("#")
        if _REMOTE.match(ref) or (origin.url is not None and file_part):
            doc = self._remote(urljoin(origin.url or "", file_part), ref, where, at)
        elif _SCHEME.match(ref) and not ref.startswith("file:"):
            raise Failed([Diagnostic(f"unsupported reference {ref!r}", where, at)])
        else:
            doc = origin if not file_part else self._local(file_part, origin, ref, where, at)
        pointer = _pointer(doc.data, fragment)
        if pointer and not pointer.startswith("/"):
            message = f"$ref {ref!r}: only JSON-pointer fragments (#/...) are supported"
            raise Failed([Diagnostic(message, where, at)])
        if not _exists(doc.data, pointer):
            message = f"$ref {ref!r} points at nothing"
            raise Failed([Diagnostic(message, where, join_pointer(at, REF))])
        return Target(doc, pointer)

    def _remote(self, url: str, ref: str, where: Location, at: str) -> Document:
        if url in self.docs:
            return self.docs[url]
        if not self.access.remote:
            message = (
                f"remote reference {url!r} is not fetched: pass --allow-remote-refs to fetch it"
            )
            raise Failed([Diagnostic(message, where, at)])
        from generator.remote import FetchError, fetch  # only when remote refs are used

        reason = self.unreachable.get(url)
        if reason is None:
            try:
                text = fetch(url, self.budget.bytes_left)
            except FetchError as exc:
                reason = self.unreachable[url] = str(exc)
        if reason is not None:
            raise Failed([Diagnostic(f"$ref {ref!r}: {url}: {reason}", where, at)])
        self.budget.spend_bytes(len(text.encode()), where)
        doc = parse(text, Path(urlsplit(url).path or "remote"), url, self.budget)
        doc.url = url
        self.docs[url] = doc
        return doc

    def _local(
        self, file_part: str, origin: Document, ref: str, where: Location, at: str
    ) -> Document:
        path = (origin.path.parent / unquote(file_part)).resolve()
        if str(path) in self.docs:
            return self.docs[str(path)]
        if not any(path.is_relative_to(root) for root in self.roots):
            message = (
                f"$ref {ref!r} points outside the document's folder ({self._display(path)}):"
                " --allow-ref-root DIR allows another folder"
            )
            raise Failed([Diagnostic(message, origin.location(join_pointer(at, REF)), at)])
        failed = self.unloadable.get(str(path))
        if failed is None:
            try:
                doc = load(path, self._display(path), self.budget)
            except Failed as exc:
                failed = self.unloadable[str(path)] = exc
            else:
                self.docs[str(path)] = doc
                return doc
        cause = failed.diagnostics[0]
        if cause.location.file == self._display(path) and "cannot read" in cause.message:
            message = f"$ref {ref!r}: file not found ({self._display(path)})"
            raise Failed([Diagnostic(message, where, at)])
        raise failed

    def node(self, target: Target) -> Node:
        return Node(self, target.doc, target.pointer, _get(target.doc.data, target.pointer))

    def root_node(self) -> Node:
        return Node(self, self.root, "", self.root.data)


def _get(data: Any, pointer: str) -> Any:
    for token in split_pointer(pointer):
        data = data[int(token)] if isinstance(data, list) else data[token]
    return data


def _pointer(data: Any, fragment: str) -> str:
    """The fragment as a JSON pointer: taken literally when that names a value (keys may hold
    any character), else percent-decoded as a URI fragment should be."""
    if _exists(data, fragment):
        return fragment
    return unquote(fragment)


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
