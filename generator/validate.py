"""Validate a document against the official AsyncAPI JSON Schema of its own version.

The schema sees the document with its references inlined (a bare-`$ref` parameter in 2.0-2.4 only
passes that way), circular references left in place. Each schema error is traced back through the
references to the file, line and column the user must edit.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable
from importlib import resources
from typing import TYPE_CHECKING, Any

from generator.budget import MAX_DEPTH, too_deep
from generator.errors import Diagnostic, Failed
from generator.loader import join_pointer
from generator.refs import REF, Node, Workspace, is_ref

if TYPE_CHECKING:
    from jsonschema.exceptions import ValidationError

SCHEMA_PACKAGE_VERSION = "6.11.1"
SUPPORTED_VERSIONS = (
    "2.0.0",
    "2.1.0",
    "2.2.0",
    "2.3.0",
    "2.4.0",
    "2.5.0",
    "2.6.0",
    "3.0.0",
    "3.1.0",
)


@functools.cache
def _schema(version: str) -> Any:
    text = resources.files("generator.schemas").joinpath(f"{version}.json").read_text("utf-8")
    return json.loads(text)


@functools.cache
def _fast_validator(version: str) -> Any:
    """The compiled validator (jsonschema-rs): a yes/no answer in milliseconds, where the Python
    validator takes seconds on a large document. Formats are not asserted, as in `_validator`."""
    import jsonschema_rs

    return jsonschema_rs.validator_for(_schema(version), validate_formats=False)


@functools.cache
def _validator(version: str) -> Any:
    """The Python validator: slow, but its errors carry the paths that locate them."""
    import jsonschema

    schema = _schema(version)
    return jsonschema.validators.validator_for(schema)(schema)


def check_version(ws: Workspace) -> str:
    root = ws.root_node()
    if not isinstance(root.value, dict):
        message = "an AsyncAPI document must be a mapping at the top level"
        raise Failed([Diagnostic(message, root.location, "")])
    version = root.value.get("asyncapi")
    if version is None:
        message = "missing required property 'asyncapi' (the specification version)"
        raise Failed([Diagnostic(message, root.location, "")])
    if not isinstance(version, str) or version not in SUPPORTED_VERSIONS:
        supported = ", ".join(SUPPORTED_VERSIONS)
        message = f"unsupported AsyncAPI version {version!r} (supported: {supported})"
        raise Failed([Diagnostic(message, root.child("asyncapi").location, "/asyncapi")])
    return version


# In 3.x these fields must BE Reference Objects (their identity is the point); they stay references.
_POINTER_FIELDS = (
    ("operations", "*", "channel"),
    ("operations", "*", "messages", "*"),
    ("operations", "*", "reply", "channel"),
    ("operations", "*", "reply", "messages", "*"),
    ("channels", "*", "servers", "*"),
    ("components", "operations", "*", "channel"),
    ("components", "operations", "*", "messages", "*"),
    ("components", "operations", "*", "reply", "channel"),
    ("components", "operations", "*", "reply", "messages", "*"),
    ("components", "replies", "*", "channel"),
    ("components", "replies", "*", "messages", "*"),
    ("components", "channels", "*", "servers", "*"),
)


def _is_pointer_field(path: tuple[str | int, ...]) -> bool:
    return any(
        len(path) == len(p) and all(want in ("*", got) for want, got in zip(p, path, strict=True))
        for p in _POINTER_FIELDS
    )


Stack = frozenset[tuple[str, str]]


class _Exceeded(Exception):
    """The view grew past a limit: inlining stops, and the innermost `$ref` on the way to the
    node that crossed it is blamed (that node itself if no reference led there)."""

    def __init__(self, message: str, node: Node) -> None:
        super().__init__(message)
        self.message = message
        self.diagnostic = Diagnostic(message, node.location, node.pointer)
        self.blamed = False

    def blame(self, ref: Node) -> None:
        if not self.blamed:
            where = ref.doc.location(join_pointer(ref.pointer, REF))
            text = f"$ref {ref.value[REF]!r}: {self.message}"
            self.diagnostic = Diagnostic(text, where, ref.pointer)
            self.blamed = True


_FOLLOWED = " once references are followed"


class _Inliner:
    """Builds the reference-free view the schema validates; collects every broken reference.
    A subtree referenced twice is shared, not copied, but counted each time: validators walk
    it each time, so ten references at each of eight levels cost 10**8 nodes."""

    def __init__(self, ws: Workspace, keep_pointer_fields: bool) -> None:
        self.ws = ws
        self.keep_pointer_fields = keep_pointer_fields
        self.errors: list[Diagnostic] = []
        self.cache: dict[tuple[str, str], tuple[Any, int]] = {}  # value and its node count
        self.nodes = 0
        self.broken: set[tuple[str, str]] = set()  # (file, pointer) of each unresolved $ref

    def inline(self, node: Node, path: tuple[str | int, ...], stack: Stack) -> tuple[Any, bool]:
        """Return (value, whether a circular reference was left in it)."""
        value = node.value
        if is_ref(value):
            return self._follow(node, path, stack)
        self._count(1, node)
        if isinstance(value, dict | list):
            if len(path) >= MAX_DEPTH:
                raise _Exceeded(too_deep(_FOLLOWED), node)
            keys: list[Any] = list(value) if isinstance(value, dict) else list(range(len(value)))
            results: list[Any] = []
            cut = False
            for key in keys:
                sub = Node(node.ws, node.doc, join_pointer(node.pointer, key), value[key])
                item, child_cut = self.inline(sub, (*path, key), stack)
                results.append(item)
                cut = cut or child_cut
            if isinstance(value, dict):
                return dict(zip(keys, results, strict=True)), cut
            return results, cut
        return value, False

    def _count(self, nodes: int, node: Node) -> None:
        self.nodes += nodes
        limits = self.ws.budget.limits
        if self.nodes > limits.max_nodes:
            raise _Exceeded(limits.too_many_nodes(_FOLLOWED), node)

    def _follow(self, node: Node, path: tuple[str | int, ...], stack: Stack) -> tuple[Any, bool]:
        try:
            target = self.ws.resolve(node.value[REF], node.doc, node.pointer)
        except Failed as exc:
            self.errors.extend(exc.diagnostics)
            self.broken.add((node.doc.display, node.pointer))
            return node.value, False
        if target.key in stack or (self.keep_pointer_fields and _is_pointer_field(path)):
            return node.value, target.key in stack
        try:
            if len(stack) > MAX_DEPTH:  # references to references, without nesting
                raise _Exceeded(too_deep(_FOLLOWED), node)
            if target.key in self.cache:
                result, size = self.cache[target.key]
                self._count(size, node)
                return result, False
            before = self.nodes
            result, cut = self.inline(self.ws.node(target), path, stack | {target.key})
        except _Exceeded as exc:
            exc.blame(node)
            raise
        if not cut:
            self.cache[target.key] = (result, self.nodes - before)
        return result, cut


def _locate(root: Node, path: Iterable[str | int], *, key: str | None = None) -> Diagnostic:
    """Follow an instance path through references to the node's own file and pointer; a
    reference that cannot be followed is where the path ends."""
    node = root
    for token in path:
        try:
            node = Node(node.ws, node.doc, join_pointer(node.pointer, token), node.value[token])
            node = node.deref()
        except (Failed, KeyError, IndexError, TypeError):
            break
    pointer = node.pointer if key is None else join_pointer(node.pointer, key)
    return Diagnostic("", node.doc.location(pointer, key=key is not None), pointer)


def _short(value: Any, limit: int = 60) -> str:
    text = (
        json.dumps(value, ensure_ascii=False, default=str)
        if not isinstance(value, str)
        else repr(value)
    )
    return text if len(text) <= limit else text[: limit - 3] + "..."


_JSON_TYPES = {
    dict: "object",
    list: "array",
    str: "string",
    bool: "boolean",
    int: "integer",
    float: "number",
}


def _json_type(value: Any) -> str:
    return "null" if value is None else _JSON_TYPES.get(type(value), type(value).__name__)


def _describe(error: ValidationError) -> tuple[str, str | None]:
    """A short message for a schema error, and the key it is about (to point at that key)."""
    kind, instance, expected = error.validator, error.instance, error.validator_value
    if kind == "required":
        missing = error.message.split("'")[1] if "'" in error.message else error.message
        return f"missing required property {missing!r}", None
    if kind in ("additionalProperties", "unevaluatedProperties") and isinstance(instance, dict):
        schema = error.schema if isinstance(error.schema, dict) else {}
        allowed = set(schema.get("properties", {}))
        patterns = schema.get("patternProperties", {})
        extra = sorted(k for k in instance if k not in allowed and not _matches_any(k, patterns))
        if extra:
            return f"unexpected property {extra[0]!r}", extra[0]
    if kind == "type":
        wanted = " or ".join(expected) if isinstance(expected, list) else expected
        return f"expected {wanted}, got {_json_type(instance)} {_short(instance)}", None
    if kind == "enum":
        return f"{_short(instance)} is not one of {_short(expected, 120)}", None
    if kind == "const":
        return f"expected {_short(expected)}, got {_short(instance)}", None
    if kind in ("oneOf", "anyOf"):
        return f"{_json_type(instance)} does not match any of the allowed forms here", None
    return error.message if len(error.message) < 200 else error.message[:197] + "...", None


def _matches_any(key: str, patterns: dict[str, Any]) -> bool:
    return any(re.search(pattern, key) for pattern in patterns)


def _deepest(error: ValidationError) -> ValidationError:
    """The most specific cause of an error: for `oneOf`/`anyOf`, the branch that got furthest.

    A branch that only failed for want of `$ref` (the Reference Object alternative) is the least
    interesting: the user wrote a value, not a reference.
    """
    if not error.context:
        return error

    def rank(candidate: ValidationError) -> tuple[bool, int, bool]:
        wants_ref = candidate.validator == "required" and "'$ref'" in candidate.message
        weak = candidate.validator in ("oneOf", "anyOf", "if", "then", "else")
        return (not wants_ref, len(candidate.absolute_path), not weak)

    return max((_deepest(child) for child in error.context), key=rank)


def _inline(ws: Workspace, version: str) -> tuple[Any, _Inliner]:
    inliner = _Inliner(ws, keep_pointer_fields=version.startswith("3."))
    try:
        instance, _ = inliner.inline(ws.root_node(), (), frozenset({(ws.root.key, "")}))
    except _Exceeded as exc:
        inliner.errors.append(exc.diagnostic)
        return None, inliner
    return instance, inliner


def inlined(ws: Workspace, version: str) -> tuple[Any, list[Diagnostic]]:
    """The document as the schema sees it (None past a limit), and every broken reference met
    on the way."""
    instance, inliner = _inline(ws, version)
    return instance, inliner.errors


def validate_schema(ws: Workspace, version: str) -> list[Diagnostic]:
    """All schema and reference errors, each at the place the user must edit. A reference that
    could not be followed is reported once, not again as the wrong type of value. Past a limit
    (depth, nodes) the document is refused: Failed."""
    root = ws.root_node()
    instance, inliner = _inline(ws, version)
    errors = inliner.errors
    if instance is None:
        raise Failed(errors)
    if _fast_validator(version).is_valid(instance):
        return errors
    # Only an invalid document pays for the Python validator, which says where and why.
    for error in _validator(version).iter_errors(instance):
        best = _deepest(error)
        message, key = _describe(best)
        located = _locate(root, best.absolute_path, key=key)
        if not _under(located, inliner.broken):
            errors.append(Diagnostic(message, located.location, located.pointer))
    return errors


def _under(located: Diagnostic, broken: set[tuple[str, str]]) -> bool:
    pointer = located.pointer or ""
    return any(
        located.location.file == file and (pointer == at or pointer.startswith(f"{at}/"))
        for file, at in broken
    )
