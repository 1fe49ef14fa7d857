"""Which model a message on a multi-message channel is: by its discriminator, when declared.

A payload schema (or a part of its `allOf`) may name a `discriminator` property. The value that
selects each message is that property's `const` or `enum` in the message's schema, else the
schema's own name (the OpenAPI convention). Without a discriminator the generated code takes the
first model that validates, in declaration order.
"""

from __future__ import annotations

from typing import Any

from generator.model import Message
from generator.schemas_bundle import REF_PREFIX


def _parts(schemas: dict[str, Any], name: str) -> list[tuple[str, dict[str, Any]]]:
    """The schema and, through `allOf` references, the schemas it builds on."""
    schema = schemas.get(name, {})
    found = [(name, schema)]
    parts = schema.get("allOf") if isinstance(schema, dict) else None
    for part in parts if isinstance(parts, list) else []:
        ref = part.get("$ref") if isinstance(part, dict) else None
        if isinstance(ref, str) and ref.startswith(REF_PREFIX):
            found += _parts(schemas, ref[len(REF_PREFIX) :])
        elif isinstance(part, dict):
            found.append((name, part))
    return found


def _tags(schemas: dict[str, Any], name: str, prop: str) -> list[str]:
    for _, schema in _parts(schemas, name):
        properties = schema.get("properties") if isinstance(schema, dict) else None
        spec = properties.get(prop) if isinstance(properties, dict) else None
        if isinstance(spec, dict) and "const" in spec:
            return [str(spec["const"])]
        if isinstance(spec, dict) and isinstance(spec.get("enum"), list) and spec["enum"]:
            return [str(v) for v in spec["enum"]]
    return [name]


def discriminate(
    schemas: dict[str, Any], discriminators: dict[str, str], messages: tuple[Message, ...]
) -> tuple[str, dict[str, str]] | None:
    """(property, tag value -> class name) for these messages, or None when not declared."""
    classes = [m.class_name for m in messages if m.class_name and m.is_json]
    if len(classes) < 2 or len(classes) != len(messages):
        return None
    declared = {
        discriminators[n] for c in classes for n, _ in _parts(schemas, c) if n in discriminators
    }
    if len(declared) != 1:
        return None
    prop = declared.pop()
    table: dict[str, str] = {}
    for name in classes:
        for tag in _tags(schemas, name, prop):
            table.setdefault(tag, name)
    return prop, table
