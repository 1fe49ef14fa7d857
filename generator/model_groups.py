"""Payload schemas cut into independent groups, the groups into chunks, and the chunks' models
joined into one module.

Every class name is decided by the schema bundle before the library sees a schema, so schemas
that never reference each other, directly or not, can be modelled apart: a change to one
channel's payload costs one chunk, and every other chunk comes from the cache. A chunk holds
about ten groups: one library call costs a fixed ~10 ms besides each schema's own time, and one
call over thousands of schemas grows faster than their number.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import io
import sys
import tokenize
from dataclasses import dataclass
from typing import Any

from generator.schemas_bundle import REF_PREFIX

WIRE = "_asyncapi_pygen_wire"  # the base class's module while modelling: no package name in it


def groups(schemas: dict[str, Any], inline: set[str]) -> list[list[str]]:
    """The names of the schemas in groups that reference only each other, each in bundle
    order, ordered by their first member. A reference to an `inline` schema joins nothing:
    the library writes such a schema into each field that uses it, so each group gets a copy."""
    parent = {name: name for name in schemas if name not in inline}

    def root(name: str) -> str:
        while parent[name] != name:
            parent[name] = parent[parent[name]]
            name = parent[name]
        return name

    for name in parent:
        for target in references(schemas[name]):
            if target in parent:
                parent[root(target)] = root(name)
    found: dict[str, list[str]] = {}
    for name in parent:
        found.setdefault(root(name), []).append(name)
    return list(found.values())


CHUNK = 10  # groups per library call, on average
CHUNK_MAX = 4 * CHUNK


def chunks(groups: list[list[str]]) -> list[list[list[str]]]:
    """The groups, in order, cut where a group's first name hashes to a boundary (one in
    CHUNK): cuts depend on names only, so editing a group changes its own chunk, and adding
    or removing one changes one chunk (or two, at a cut), never those after it."""
    found: list[list[list[str]]] = [[]]
    for group in groups:
        found[-1].append(group)
        digest = hashlib.sha256(group[0].encode()).digest()
        if digest[0] % CHUNK == 0 or len(found[-1]) == CHUNK_MAX:
            found.append([])
    return [chunk for chunk in found if chunk]


def inlined(schemas: dict[str, Any], imported: set[str]) -> set[str]:
    """Schemas of one scalar type that reference nothing (a device id with its pattern): the
    library usually writes them into the fields that use them rather than as a class. Not
    those the project imports (a payload that is a number is a class)."""
    return {
        name
        for name, schema in schemas.items()
        if name not in imported and _scalar(schema) and not references(schema)
    }


def _scalar(schema: Any) -> bool:
    kind = schema.get("type") if isinstance(schema, dict) else None
    kinds = kind if isinstance(kind, list) else [kind]
    scalar = ("string", "integer", "number", "boolean", "null")
    return isinstance(schema, dict) and all(k in scalar for k in kinds) and "enum" not in schema


def with_copies(schemas: dict[str, Any], group: list[str], inline: set[str]) -> dict[str, Any]:
    """A group's schemas and a copy of each inline schema they reference."""
    used = {t for name in group for t in references(schemas[name]) if t in inline}
    return {name: schemas[name] for name in [*group, *sorted(used)]}


def references(node: Any) -> list[str]:
    """Bundle names a schema refers to, at any depth."""
    if isinstance(node, list):
        return [name for item in node for name in references(item)]
    if not isinstance(node, dict):
        return []
    ref = node.get("$ref")
    own = [ref.removeprefix(REF_PREFIX)] if isinstance(ref, str) else []
    return own + [name for value in node.values() for name in references(value)]


@dataclass(frozen=True)
class Part:
    """One group's models: what they import, what they define, and their code."""

    imports: tuple[tuple[str, str, str | None], ...]  # (module, name, alias); module "" = import
    names: tuple[str, ...]
    body: str

    def to_json(self) -> dict[str, Any]:
        return {"imports": self.imports, "names": self.names, "body": self.body}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Part:
        imports = tuple(
            (str(m), str(n), None if a is None else str(a)) for m, n, a in data["imports"]
        )
        return cls(imports, tuple(str(n) for n in data["names"]), str(data["body"]))


@functools.lru_cache(maxsize=2)
def parsed(source: str) -> ast.Module:
    """The library's module for a chunk, parsed once: the models stage checks its names
    (model_names.check), then takes it apart (`part`). Neither changes the tree."""
    return ast.parse(source)


def part(source: str) -> Part:
    """The library's module for one group, taken apart: its imports, the names it defines at the
    top level, and the code after the imports."""
    tree = parsed(source)
    imports: list[tuple[str, str, str | None]] = []
    body_start = None
    names: list[str] = []
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and body_start is None:
            imports += [(node.module or "", a.name, a.asname) for a in node.names]
        elif isinstance(node, ast.Import) and body_start is None:
            imports += [("", a.name, a.asname) for a in node.names]
        else:
            first = min([node.lineno, *(d.lineno for d in getattr(node, "decorator_list", []))])
            body_start = first if body_start is None else body_start
            names += _defined(node)
    lines = io.StringIO(source).readlines()  # as the parser counts them: U+2028 ends none
    body = "".join(lines[body_start - 1 :]) if body_start is not None else ""
    wanted = [i for i in imports if i[0] != "__future__"]
    return Part(tuple(wanted), tuple(names), body.strip("\n"))


def _defined(node: ast.stmt) -> list[str]:
    if isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
        return [node.name]
    if isinstance(node, ast.AnnAssign):
        return [node.target.id] if isinstance(node.target, ast.Name) else []
    if isinstance(node, ast.Assign):
        return [t.id for t in node.targets if isinstance(t, ast.Name)]
    return []


def distinct(parts: list[Part], names: list[list[str]]) -> list[Part]:
    """The groups' parts with every class the library named itself (not in the bundle) renamed
    where another group defines the same name; the bundle's names are kept, as the rest of
    the project imports them. `names` are the bundle names of each group."""
    ours = {name for group in names for name in group}
    taken = ours | {name for found in parts for name in found.names}
    claimed: set[str] = set()
    result = []
    for found, group in zip(parts, names, strict=True):
        renames = {}
        for name in found.names:
            if name not in group and (name in ours or name in claimed):
                renames[name] = fresh = _unique(name, taken)
                taken.add(fresh)
            claimed.add(renames.get(name, name))
        result.append(_renamed(found, renames) if renames else found)
    return result


def _unique(name: str, taken: set[str]) -> str:
    number = 1
    while f"{name}{number}" in taken:
        number += 1
    return f"{name}{number}"


def _renamed(found: Part, renames: dict[str, str]) -> Part:
    """The part with these names changed wherever the code names them (never inside text)."""
    lines = io.StringIO(found.body).readlines()  # lines as the tokenizer counts them
    tokens = tokenize.generate_tokens(io.StringIO(found.body).readline)
    places = [(t.start, t.string) for t in tokens if t.type == tokenize.NAME]
    for (row, col), old in reversed(places):
        if old in renames:
            line = lines[row - 1]
            lines[row - 1] = line[:col] + renames[old] + line[col + len(old) :]
    names = tuple(renames.get(name, name) for name in found.names)
    return Part(found.imports, names, "".join(lines))


def module(parts: list[Part], header: str, package: str) -> str:
    """One module of every group's models: the header and the imports of them all, then each
    group's code in order."""
    return joined(head(parts, header, package), [found.body for found in parts])


def head(parts: list[Part], header: str, package: str) -> str:
    """The header and the imports of every part, merged (the placeholder base module becomes
    the package's own)."""
    wire = f"{package}._runtime.wire"
    merged: dict[str, set[tuple[str, str | None]]] = {}
    for found in parts:
        for module_name, name, alias in found.imports:
            merged.setdefault(wire if module_name == WIRE else module_name, set()).add(
                (name, alias)
            )
    sections: dict[int, list[str]] = {}
    for n, a in sorted(merged.pop("", set()), key=_order):
        sections.setdefault(_import_order(n, wire)[0], []).append(f"import {_imported(n, a)}")
    for module_name in sorted(merged, key=lambda m: _import_order(m, wire)):
        names = ", ".join(_imported(n, a) for n, a in sorted(merged[module_name], key=_order))
        section = sections.setdefault(_import_order(module_name, wire)[0], [])
        section.append(f"from {module_name} import {names}")
    # a blank line between the standard library, the rest and the package's own, as isort has
    imports = "\n\n".join("\n".join(sections[key]) for key in sorted(sections))
    future = f"{header}\n\nfrom __future__ import annotations"
    return "\n\n".join(filter(None, [future, imports])) + "\n"


def joined(head: str, bodies: list[str]) -> str:
    """The head and the bodies, two blank lines apart: what black and ruff put between
    top-level statements after imports or a class, and keep anywhere else. So pieces each
    formatted on their own join into the module formatted whole."""
    pieces = [piece.strip("\n") for piece in [head, *bodies]]
    return "\n\n\n".join(piece for piece in pieces if piece) + "\n"


def _import_order(module_name: str, own: str) -> tuple[int, str]:
    """The standard library, then the rest, then the package's own module."""
    library = module_name.partition(".")[0] in sys.stdlib_module_names
    return (2 if module_name == own else 0 if library else 1, module_name)


def _order(item: tuple[str, str | None]) -> tuple[str, str]:
    return (item[0], item[1] or "")


def _imported(name: str, alias: str | None) -> str:
    return name if alias is None else f"{name} as {alias}"
