"""The field and enum member names of the payload models: names.py decides them, the models stage
hands them to datamodel-code-generator (scoped `aliases`, `x-enum-varnames`), and `check` proves
it emitted exactly those, so no name in `models.py` is the library's own choice, and that no
model has two fields (own or inherited) of one name, which would lose a property.
"""

from __future__ import annotations

import ast
import json
from typing import Any

from generator import names
from generator.model_groups import parsed
from generator.schemas_bundle import REF_PREFIX

ENUM_NAMES = "x-enum-varnames"


def fields(schemas: dict[str, Any]) -> dict[str, dict[str, str]]:
    """Each model's fields, wire name -> Python name: its own properties, then those it inherits
    (`allOf` or `$ref` to a bundle schema) under the names the parent gives them (the library
    may declare an inherited field again, to make it required). An own property is named
    clear of the inherited fields, so it never replaces one of them."""
    decided: dict[str, dict[str, str]] = {}
    for name in schemas:
        _decide(name, schemas, decided, set())
    return decided


def _properties(schema: Any) -> list[str]:
    found = schema.get("properties") if isinstance(schema, dict) else None
    return [str(prop) for prop in found] if isinstance(found, dict) else []


def _decide(
    name: str, schemas: dict[str, Any], decided: dict[str, dict[str, str]], seen: set[str]
) -> dict[str, str]:
    if name in decided:
        return decided[name]
    seen.add(name)  # a cycle of allOf references inherits nothing around the cycle
    inherited: dict[str, str] = {}
    for parent in _parents(schemas[name]):
        if parent in schemas and parent not in seen:
            for wire, py in _decide(parent, schemas, decided, seen).items():
                inherited.setdefault(wire, py)
    props = _properties(schemas[name])
    mine = names.field_names(
        [prop for prop in props if prop not in inherited], frozenset(inherited.values())
    )
    own = {prop: inherited.get(prop) or mine[prop] for prop in props}
    decided[name] = own | {wire: py for wire, py in inherited.items() if wire not in own}
    return decided[name]


def _parents(schema: Any) -> list[str]:
    if not isinstance(schema, dict):
        return []
    refs = [schema, *(schema.get("allOf") or [])]
    found = [ref.get("$ref") for ref in refs if isinstance(ref, dict)]
    return [ref.removeprefix(REF_PREFIX) for ref in found if isinstance(ref, str)]


def aliases(schemas: dict[str, Any]) -> dict[str, str]:
    """The library's `aliases` option: `Class.property` -> the field's Python name, where that
    is not the property's own (the library writes `Field(alias=...)` for every entry; where it
    keeps the name itself, `check` proves it did)."""
    return {
        f"{model}.{wire}": py
        for model, decided in fields(schemas).items()
        for wire, py in decided.items()
        if py != wire
    }


def with_members(node: dict[str, Any]) -> dict[str, Any]:
    """An enum schema with its member names (any the document gave are replaced)."""
    values = node.get("enum")
    return {**node, ENUM_NAMES: names.enum_members(values)} if isinstance(values, list) else node


def equal_in_python(schemas: dict[str, Any]) -> list[str]:
    """Enums with two values JSON tells apart and Python does not (`1` and `true`, `0` and
    `false`, `1` and `1.0`): an Enum keeps the first and makes the other an alias of it, so
    `true` would be read and sent back as `1`."""
    problems = []
    for values in _enums(schemas):
        for i, first in enumerate(values):
            for second in values[i + 1 :]:
                same = first == second and type(first) is not type(second)
                if same and first is not None:
                    shown = f"{json.dumps(first)} and {json.dumps(second)}"
                    problems.append(
                        f"enum {json.dumps(values)}: {shown} are one value to Python, so its "
                        "Enum would keep one; write them as strings, or in two enums"
                    )
    return problems


def check(source: str, schemas: dict[str, Any]) -> list[str]:
    """What in the library's module for `schemas` is not named as names.py decided, and any
    two fields of one model (its own or inherited) with one name."""
    decided = fields(schemas)
    enums = _enums(schemas)
    problems: list[str] = []
    models: dict[str, tuple[list[str], dict[str, str]]] = {}
    for node in parsed(source).body:
        if not isinstance(node, ast.ClassDef):
            continue
        bases = [_base(base) for base in node.bases]
        if any(base.endswith("Enum") for base in bases):
            problems += _check_enum(node, schemas.get(node.name), enums)
        elif "RootModel" not in bases:
            models[node.name] = (bases, _fields_of(node))
            problems += _check_fields(node.name, models[node.name][1], decided.get(node.name))
    return problems + _clashes(models)


def _base(node: ast.expr) -> str:
    node = node.value if isinstance(node, ast.Subscript) else node
    return node.attr if isinstance(node, ast.Attribute) else getattr(node, "id", "")


def _fields_of(node: ast.ClassDef) -> dict[str, str]:
    """A model class's fields: wire name -> Python name."""
    return {
        _wire(statement, statement.target.id): statement.target.id
        for statement in node.body
        if isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name)
    }


def _check_fields(model: str, emitted: dict[str, str], decided: dict[str, str] | None) -> list[str]:
    """The fields are named as decided for their class, or (a class the library named itself,
    such as a bundle class it renumbered in a chunk that is then modelled again) as names.py
    names the fields of a model with these properties."""
    wanted = names.field_names(list(emitted)) if decided is None else decided
    return [
        f"the library named field {model}.{name} (property {wire!r}) itself, not "
        f"{wanted.get(wire)!r}"
        for wire, name in emitted.items()
        if wanted.get(wire) != name
    ]


def _clashes(models: dict[str, tuple[list[str], dict[str, str]]]) -> list[str]:
    """Fields of one model, own or inherited, that share a name: pydantic keeps one of them, so
    a property would be lost (`allOf` of two schemas with `deviceId` and `device_id`)."""
    problems = []
    for model in models:
        found: dict[str, set[str]] = {}
        for ancestor in _lineage(model, models):
            for wire, py in models[ancestor][1].items():
                found.setdefault(py, set()).add(wire)
        problems += [
            f"model {model}: field {py} would be each of the properties {sorted(wires)}, "
            "so one would be lost"
            for py, wires in found.items()
            if len(wires) > 1
        ]
    return problems


def _lineage(model: str, models: dict[str, tuple[list[str], dict[str, str]]]) -> list[str]:
    """The model and every model class it inherits from, each once."""
    order = [model]
    for current in order:
        order += [base for base in models[current][0] if base in models and base not in order]
    return order


def _wire(statement: ast.AnnAssign, name: str) -> str:
    """The field's property: its alias (`Field(alias=...)` in `Annotated[...]` or as the
    default, `""` included), else its name."""
    annotation = statement.annotation
    inside = annotation.slice if isinstance(annotation, ast.Subscript) else None
    metadata = inside.elts[1:] if isinstance(inside, ast.Tuple) else []
    for call in [*metadata, statement.value]:
        if isinstance(call, ast.Call) and getattr(call.func, "id", None) == "Field":
            for keyword in call.keywords:
                if keyword.arg == "alias" and isinstance(keyword.value, ast.Constant):
                    return str(keyword.value.value)
    return name


def _enums(node: Any) -> list[list[Any]]:
    """Every enum's values anywhere in the schemas."""
    if isinstance(node, list):
        return [found for item in node for found in _enums(item)]
    if not isinstance(node, dict):
        return []
    own = [node["enum"]] if isinstance(node.get("enum"), list) else []
    return own + [found for value in node.values() for found in _enums(value)]


def _check_enum(node: ast.ClassDef, schema: Any, enums: list[list[Any]]) -> list[str]:
    """The members equal those names.py gives the enum of the same name, or (for an enum the
    library named itself) those of an enum with these values."""
    emitted = [
        (statement.targets[0].id, _value(statement.value))
        for statement in node.body
        if isinstance(statement, ast.Assign) and isinstance(statement.targets[0], ast.Name)
    ]
    own = schema.get("enum") if isinstance(schema, dict) else None
    for values in [own] if isinstance(own, list) else enums:
        members = set(zip(names.enum_members(values), map(json.dumps, values), strict=True))
        if emitted and set(emitted) <= members:
            return []
    decided = names.enum_members(own) if isinstance(own, list) else "others"
    emitted_names = [name for name, _ in emitted]
    return [f"the library named enum {node.name}'s members {emitted_names}, not {decided}"]


def _value(node: ast.expr) -> str:
    """A member's value as JSON (as the schema gives it), or its code when not a literal."""
    try:
        return json.dumps(ast.literal_eval(node))
    except ValueError:
        return ast.unparse(node)
