"""The drift report: user handlers that no longer fit the spec, found by reading them with `ast`.

User files are never imported (importing runs user code), never rewritten. After a spec change a
handler may take the wrong parameters or message type, belong to a removed channel, or be gone;
each is reported with the file and line to edit. The generated wiring would otherwise fail only at
run time (or under mypy).
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import TYPE_CHECKING, Any

from generator import names
from generator.errors import Diagnostic, Level, Location
from generator.manifest import HandlerShape, Manifest

if TYPE_CHECKING:
    from generator.writer import Plan


def _warn(path: Path, line: int, message: str) -> Diagnostic:
    return Diagnostic(message, Location(str(path), line, 1), None, Level.WARNING)


def _function(tree: ast.Module, name: str) -> ast.AsyncFunctionDef | ast.FunctionDef | None:
    for node in tree.body:
        if isinstance(node, ast.AsyncFunctionDef | ast.FunctionDef) and node.name == name:
            return node
    return None


def _parse(path: Path) -> ast.Module | Diagnostic:
    try:
        return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except SyntaxError as exc:
        return _warn(path, exc.lineno or 1, f"cannot read this handler: {exc.msg}")
    except (OSError, UnicodeDecodeError) as exc:
        return _warn(path, 1, f"cannot read this handler: {exc}")


def _literal_values(annotation: ast.expr) -> tuple[str, ...] | None:
    """The values of `Literal["a", "b"]` (also `typing.Literal`, or the same as a string);
    None for any other annotation."""
    if isinstance(annotation, ast.Constant) and isinstance(annotation.value, str):
        try:
            annotation = ast.parse(annotation.value, mode="eval").body
        except SyntaxError:
            return None
    if not isinstance(annotation, ast.Subscript):
        return None
    base = annotation.value
    named = base.id if isinstance(base, ast.Name) else getattr(base, "attr", None)
    if named != "Literal":
        return None
    items = annotation.slice.elts if isinstance(annotation.slice, ast.Tuple) else [annotation.slice]
    return tuple(str(i.value) if isinstance(i, ast.Constant) else ast.unparse(i) for i in items)


def _from_topics(tree: ast.Module) -> dict[str, str]:
    """Names the handler imports from its package's topics module: as written -> original."""
    return {
        alias.asname or alias.name: alias.name
        for node in tree.body
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[-1] == "topics"
        for alias in node.names
    }


def _annotation_problems(
    path: Path,
    function: ast.AsyncFunctionDef | ast.FunctionDef,
    expected: HandlerShape,
    imported: dict[str, str],
) -> list[Diagnostic]:
    """Parameters annotated with a `Literal` the routes no longer fit (the enum gained a value,
    or is gone), or with a named type from topics.py that is no longer this parameter's (its
    name moved to another enum, or is gone): mypy or the import fails, so each is named with
    the type it needs."""
    enums = {arg: (name, values) for arg, name, values in expected.enums}
    package = path.parts[-3] if len(path.parts) > 2 else "<package>"  # <package>/handlers/x.py
    found = []
    for arg in function.args.kwonlyargs:
        annotation = arg.annotation
        if annotation is None or arg.arg not in expected.params:
            continue
        name, values = enums.get(arg.arg, ("str", ()))
        if isinstance(annotation, ast.Name) and annotation.id in imported:
            if imported[annotation.id] == name:
                continue
        else:
            written = _literal_values(annotation)
            if written is None or (values and set(values) <= set(written)):
                continue
        where = f" (`from {package}.topics import {name}`)" if values else ""
        passes = f"{name} = Literal{list(values)}" if values else "any str"
        found.append(
            _warn(
                path,
                arg.lineno,
                f"{expected.function}() takes {arg.arg}: {ast.unparse(annotation)}, but "
                f"channel {expected.channel} now passes {passes}: annotate it "
                f"`{arg.arg}: {name}`{where}",
            )
        )
    return found


def _check_handler(path: Path, expected: HandlerShape) -> list[Diagnostic]:
    tree = _parse(path)
    if isinstance(tree, Diagnostic):
        return [tree]
    name, channel = expected.function, expected.channel
    function = _function(tree, name)
    if function is None:
        return [_warn(path, 1, f"no function {name}() for channel {channel}: messages will fail")]
    found: list[Diagnostic] = []
    line = function.lineno
    if not isinstance(function, ast.AsyncFunctionDef):
        found.append(_warn(path, line, f"{name}() must be `async def`"))
    positional = function.args.posonlyargs + function.args.args
    if len(positional) != 2:
        found.append(_warn(path, line, f"{name}() must take (message, ctx) positionally"))
    else:
        annotation = positional[0].annotation
        written = ast.unparse(annotation) if annotation is not None else None
        wanted = expected.message
        if written is not None and wanted and written.replace(" ", "") != wanted.replace(" ", ""):
            found.append(
                _warn(
                    path,
                    line,
                    f"{name}() takes message: {written}, but channel "
                    f"{channel} now delivers {wanted}",
                )
            )
    have = [a.arg for a in function.args.kwonlyargs]
    required = [
        a.arg
        for a, d in zip(function.args.kwonlyargs, function.args.kw_defaults, strict=True)
        if d is None
    ]
    wanted_params = list(expected.params)
    missing = [p for p in wanted_params if p not in have and function.args.kwarg is None]
    unknown = [p for p in required if p not in wanted_params]
    if missing or unknown:
        shown = ", ".join(wanted_params) or "none"
        found.append(
            _warn(
                path,
                line,
                f"{name}() parameters ({', '.join(have) or 'none'}) no "
                f"longer match channel {channel}, which passes: {shown}",
            )
        )
    return (
        found
        + _annotation_problems(path, function, expected, _from_topics(tree))
        + _context_problems(path, function)
    )


def _context_problems(
    path: Path, function: ast.AsyncFunctionDef | ast.FunctionDef
) -> list[Diagnostic]:
    """`ctx.<name>` that Context does not carry: a handler written when Context was the
    publisher (`ctx.send_x(...)`) fails at run time; sending is `ctx.publisher.send_x(...)`."""
    positional = function.args.posonlyargs + function.args.args
    if len(positional) != 2:
        return []
    ctx, carried = positional[1].arg, names.runtime_attributes("context", "Context")
    found = []
    for node in ast.walk(function):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id == ctx
            and node.attr not in carried
            and not node.attr.startswith("__")
        ):
            text = (
                f"{ctx}.{node.attr}: the handler context has no {node.attr!r}; "
                f"send methods are on {ctx}.publisher ({ctx}.publisher.{node.attr}(...))"
            )
            found.append(_warn(path, node.lineno, text))
    return found


LIFECYCLE_NEEDS = ("State", "lifespan")  # what the generated service imports from lifecycle.py


def top_level_names(tree: ast.Module) -> set[str]:
    """The names a module binds at its top level: imports, definitions, assignments."""
    found: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            found.add(node.name)
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            found |= {t.id for t in targets if isinstance(t, ast.Name)}
        elif isinstance(node, ast.ImportFrom | ast.Import):
            found |= {(a.asname or a.name).partition(".")[0] for a in node.names}
    return found


def _check_lifecycle(path: Path) -> list[Diagnostic]:
    """The user's lifecycle.py must still define what the generated service imports; one
    written for an older generator has no `State`."""
    tree = _parse(path)
    if isinstance(tree, Diagnostic):
        return [tree]
    defined = top_level_names(tree)
    missing = [name for name in LIFECYCLE_NEEDS if name not in defined]
    if not missing:
        return []
    text = (
        f"defines no {' and no '.join(missing)}: the service imports them; `lifespan(service)` "
        "yields a `State` (a dataclass of what handlers share, `ctx.state`), e.g. "
        "`@dataclass class State: ...` and `yield State()`"
    )
    return [_warn(path, 1, text)]


def report(output: Path, plan: Plan, previous: Manifest | None) -> list[Diagnostic]:
    """Warnings for every handler that drifted from the spec, is orphaned or went missing, and
    for a lifecycle.py that lacks what the service imports."""
    found: list[Diagnostic] = []
    for relative in plan.manifest.lifecycles:
        if relative not in plan.created:
            found += _check_lifecycle(output / relative)
    for relative, expected in sorted(plan.manifest.handlers.items()):
        path = output / relative
        if relative in plan.created:
            if previous is not None and relative in previous.files:
                found.append(_warn(path, 1, "this handler was missing; a new stub was created"))
            continue
        found += _check_handler(path, expected)
    for relative in plan.orphaned:
        path = output / relative
        old = previous.handlers.get(relative) if previous is not None else None
        what = f"channel {old.channel}" if old is not None else "this file's channel"
        tree = _parse(path)
        function = _function(tree, "handle") if isinstance(tree, ast.Module) else None
        line = function.lineno if function is not None else 1
        found.append(
            _warn(
                path,
                line,
                f"orphaned: {what} is no longer in the spec; the file is kept but nothing calls it",
            )
        )
    return found


def check_dependencies(output: Path, required: tuple[str, ...]) -> list[Diagnostic]:
    """The user owns pyproject.toml: each dependency the generated code needs must still be
    listed there with a version range that allows what the code was generated for."""
    import tomllib

    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.utils import canonicalize_name

    path = output / "pyproject.toml"
    try:
        text = path.read_text(encoding="utf-8")
        listed = tomllib.loads(text).get("project", {}).get("dependencies", [])
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        return [_warn(path, 1, f"cannot check the dependencies: {exc}")]
    have: dict[str, Requirement] = {}
    for item in listed if isinstance(listed, list) else []:
        try:
            requirement = Requirement(str(item))
        except InvalidRequirement:
            continue
        have[canonicalize_name(requirement.name)] = requirement
    found = []
    for wanted in map(Requirement, required):
        name = canonicalize_name(wanted.name)
        line = _line_of(text, wanted.name)
        if name not in have:
            found.append(
                _warn(path, line, f"dependency {wanted} is missing: the generated code needs it")
            )
        elif not _compatible(have[name], wanted):
            found.append(
                _warn(
                    path,
                    line,
                    f"dependency {have[name]} does not allow {wanted},"
                    " which the generated code needs",
                )
            )
    return found


def _compatible(have: Any, wanted: Any) -> bool:
    """Whether some version satisfies both ranges (tried at each range's lower bounds)."""
    bounds = [
        s.version
        for s in [*have.specifier, *wanted.specifier]
        if s.operator in (">=", "==", "~=", ">")
    ]
    candidates = bounds or ["0"]
    for candidate in candidates:
        for version in (candidate, candidate + ".post0", candidate + ".1", candidate + ".99"):
            if have.specifier.contains(version, prereleases=True) and wanted.specifier.contains(
                version, prereleases=True
            ):
                return True
    return not have.specifier


def _line_of(text: str, name: str) -> int:
    for number, line in enumerate(text.splitlines(), start=1):
        if name in line:
            return number
    return 1
