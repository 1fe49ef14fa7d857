"""Collect every payload schema into one bundle of named schemas, ready for the model stage.

Names are decided here, not by the model generator: a referenced component keeps its own name, an
inline object or enum is named after its place (`TelemetryPayload.sensors` becomes
`TelemetryPayloadSensors`), so the same document always gives the same, meaningful class names.
"""

from __future__ import annotations

import copy
import json
from pathlib import PurePosixPath
from typing import Any

from generator import names
from generator.loader import join_pointer, split_pointer
from generator.names import pascal, unique
from generator.refs import REF, Node, Target, is_ref

REF_PREFIX = "#/components/schemas/"
_NAMED_CONTAINERS = ("schemas", "definitions", "$defs")
_DROPPED = frozenset({"definitions", "$defs", "$id", "$schema", "$comment", "id"})
_SCHEMA_MAPS = ("properties", "patternProperties", "dependentSchemas")
_SCHEMA_LISTS = ("allOf", "oneOf", "anyOf", "prefixItems")
_SCHEMA_SINGLE = (
    "items",
    "additionalProperties",
    "not",
    "if",
    "then",
    "else",
    "contains",
    "propertyNames",
    "additionalItems",
    "unevaluatedProperties",
)
_STRUCTURAL = frozenset(_SCHEMA_MAPS + _SCHEMA_LISTS + _SCHEMA_SINGLE + ("payload", "headers"))
_LIST_HINTS = {"allOf": "Part", "oneOf": "Option", "anyOf": "Option", "prefixItems": "Item"}


_PRIMITIVES: dict[str, tuple[type, ...]] = {
    "boolean": (bool,),
    "integer": (int,),
    "number": (int, float),
    "string": (str,),
    "array": (list,),
    "object": (dict,),
}


def _fits(value: Any, types: tuple[type, ...]) -> bool:
    return isinstance(value, types) and not (isinstance(value, bool) and bool not in types)


def _copied(value: Any) -> Any:
    """A copy the bundle may own; a scalar is its own."""
    return copy.deepcopy(value) if isinstance(value, dict | list) else value


def _worth_a_class(schema: Any) -> bool:
    """Inline objects with properties and enums get their own, path-named class."""
    if not isinstance(schema, dict):
        return False
    enum = schema.get("enum")
    return bool(schema.get("properties")) or (isinstance(enum, list) and len(enum) > 0)


class SchemaBundle:
    """Named schemas (name -> schema with references rewritten to the bundle's own names)."""

    def __init__(self) -> None:
        self.schemas: dict[str, Any] = {}
        self.notes: list[tuple[Node, str]] = []  # (where, what was adjusted): become warnings
        self.discriminators: dict[str, str] = {}  # class name -> its discriminator property
        self._by_target: dict[tuple[str, str], str] = {}
        self._taken: set[str] = set()

    def add_payload(self, node: Node, hint: str) -> str:
        """Register a message payload (possibly a `$ref`); return its model class name."""
        if is_ref(node.value):
            return self._named(node.deref(), hint)
        name = self._claim(hint, node)
        self.schemas[name] = {}
        self.schemas[name] = self._convert(node, name)
        return name

    def _named(self, node: Node, hint: str) -> str:
        target = node.target
        if target.key in self._by_target:
            return self._by_target[target.key]
        name = self._claim(self._target_name(target, hint), node)
        self._by_target[target.key] = name
        self.schemas[name] = {}
        self.schemas[name] = self._convert(node, name)
        return name

    def _claim(self, wanted: str, node: Node) -> str:
        """A class name nobody has yet; a clash is resolved with a number and reported."""
        name = unique(wanted, self._taken)
        if name != wanted:
            self.notes.append((node, f"class name {wanted} is already used: this schema is {name}"))
        return name

    @staticmethod
    def _target_name(target: Target, hint: str) -> str:
        tokens = split_pointer(target.pointer)
        if not tokens:
            return pascal(PurePosixPath(target.doc.path.name).stem, fallback=hint)
        if len(tokens) >= 2 and tokens[-2] in _NAMED_CONTAINERS:
            return pascal(tokens[-1], fallback=hint)
        structural = tokens[-1] in _STRUCTURAL or tokens[-1].isdigit()
        return hint if structural or len(tokens) > 1 else pascal(tokens[-1], fallback=hint)

    def _sub(self, node: Node, hint: str) -> Any:
        """A subschema: referenced or class-worthy ones become `$ref`s into the bundle."""
        if is_ref(node.value):
            target = node.deref()
            if not isinstance(target.value, dict):
                return copy.deepcopy(target.value)
            siblings = {k: copy.deepcopy(v) for k, v in node.value.items() if k != REF}
            return {REF: REF_PREFIX + self._named(target, hint), **siblings}
        if _worth_a_class(node.value):
            name = self._claim(hint, node)
            self.schemas[name] = {}
            self.schemas[name] = self._convert(node, name)
            return {REF: REF_PREFIX + name}
        return self._convert(node, hint)

    def _convert(self, node: Node, name: str) -> Any:
        value = node.value
        if not isinstance(value, dict):
            return _copied(value)
        out: dict[str, Any] = {}
        for key, raw in value.items():
            if key not in _STRUCTURAL and key not in ("discriminator", "default"):
                if key not in _DROPPED:
                    out[key] = _copied(raw)
                continue
            here = Node(node.ws, node.doc, join_pointer(node.pointer, key), raw)
            if key == "discriminator":
                prop = raw.get("propertyName") if isinstance(raw, dict) else raw
                if isinstance(prop, str):
                    self.discriminators[name] = prop
                continue
            if key in _DROPPED:
                continue
            if key in _SCHEMA_MAPS and isinstance(raw, dict):
                out[key] = {
                    prop: self._sub(
                        Node(node.ws, node.doc, join_pointer(here.pointer, prop), sub),
                        names.nested_class(name, prop),
                    )
                    for prop, sub in raw.items()
                }
            elif key in _SCHEMA_LISTS and isinstance(raw, list):
                out[key] = [
                    self._sub(
                        Node(node.ws, node.doc, join_pointer(here.pointer, i), sub),
                        names.nested_class(name, f"{_LIST_HINTS[key]}{i + 1}", fixed=True),
                    )
                    for i, sub in enumerate(raw)
                ]
            elif key in _SCHEMA_SINGLE and isinstance(raw, dict):
                part = "Item" if key == "items" else pascal(key)
                out[key] = self._sub(here, names.nested_class(name, part, fixed=True))
            elif key == "default":
                self._default(here, value.get("type"), out)
            else:
                out[key] = _copied(raw)
        return out

    def _default(self, node: Node, declared: Any, out: dict[str, Any]) -> None:
        """Keep a default that fits the declared type; `'false'` for a boolean is read as JSON."""
        value = node.value
        wanted = _PRIMITIVES.get(declared) if isinstance(declared, str) else None
        if wanted is None or _fits(value, wanted):
            out["default"] = copy.deepcopy(value)
            return
        if isinstance(value, str):
            try:
                parsed = json.loads(value)
            except ValueError:
                parsed = None
            if parsed is not None and _fits(parsed, wanted):
                out["default"] = parsed
                self.notes.append(
                    (node, f"default {value!r} is a string; used as {declared} {parsed!r}")
                )
                return
        self.notes.append((node, f"default {value!r} does not fit type {declared!r}; ignored"))
