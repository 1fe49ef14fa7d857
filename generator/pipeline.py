"""One pipeline: load -> validate -> normalize -> models -> render -> format -> write.

Each stage is its own module; this one only sequences them and gathers their diagnostics. A stage
that cannot go on raises `Failed`, which carries located diagnostics up to the CLI.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from generator import validate
from generator.checks import check_ambiguous_addresses, check_examples, check_servers
from generator.errors import Diagnostic, Failed, Level
from generator.manifest import HandlerShape
from generator.model import Api
from generator.normalize import normalize
from generator.refs import DEFAULT_ACCESS, Access, Workspace


@dataclass
class Build:
    """What the generator decided to produce, before anything is written."""

    api: Api
    files: dict[str, str] = field(default_factory=dict)  # relative path -> content
    user_files: frozenset[str] = frozenset()  # the paths of `files` that belong to the user
    handlers: dict[str, HandlerShape] = field(default_factory=dict)  # path -> expected shape
    diagnostics: list[Diagnostic] = field(default_factory=list)
    requirements: tuple[str, ...] = ()  # what the generated code needs installed


def load_and_validate(
    spec: Path, display: str | None = None, access: Access = DEFAULT_ACCESS
) -> tuple[Workspace, str, list[Diagnostic]]:
    """Parse and validate: the workspace, the version and every schema and reference error.
    A document beyond the limits raises Failed: nothing more is read from it."""
    ws = Workspace(spec, display, access=access)
    version = validate.check_version(ws)
    return ws, version, validate.validate_schema(ws, version)


def analyse(
    spec: Path,
    package: str | None = None,
    display: str | None = None,
    access: Access = DEFAULT_ACCESS,
) -> tuple[Api, list[Diagnostic]]:
    """Everything up to the intermediate model; schema and semantic errors raise Failed, all of
    them at once."""
    ws, version, errors = load_and_validate(spec, display, access)
    api, diagnostics = _semantics(ws, version, package, errors)
    if api is None or any(d.level is Level.ERROR for d in diagnostics):
        raise Failed(diagnostics)
    display = ws.root.display
    examples, valid = check_examples(api, display)
    diagnostics += check_servers(api, display) + examples + check_ambiguous_addresses(api, display)
    sources = tuple(doc.path for doc in ws.docs.values() if doc.url is None)
    return replace(api, sources=sources, valid_examples=valid), diagnostics


def _semantics(
    ws: Workspace, version: str, package: str | None, errors: list[Diagnostic]
) -> tuple[Api | None, list[Diagnostic]]:
    """The model and its semantic diagnostics after the schema's `errors`. The semantic rules
    run on a document the schema rejected too, so that one run reports every error; there a
    shape they cannot read must not hide the schema's errors (on a valid document it is a bug)."""
    try:
        api, diagnostics = normalize(ws, version, package)
    except Failed as exc:
        if not errors:
            raise
        return None, errors + exc.diagnostics
    except Exception:
        if not errors:
            raise
        return None, errors
    return api, errors + diagnostics


def build(
    spec: Path,
    package: str | None = None,
    display: str | None = None,
    access: Access = DEFAULT_ACCESS,
    output: Path | None = None,
    formatter: str = "ruff",
    kept: frozenset[str] = frozenset(),
) -> Build:
    """The whole project in memory: rendered, formatted, not yet written. With `output`, the
    user's own settings there (`app_settings.py`) are listed in README.md and .env.example.
    `kept` are user files the writer will keep as they are on disk (writer.kept_user_files):
    their rendered text is never used, so it is not formatted."""
    from generator import payload_models, settings_table
    from generator.format import format_files
    from generator.render import Renderer, printable, requirements

    api, diagnostics = analyse(spec, package, display, access)
    source = printable(spec.name)  # a file name with a newline must not end a header comment
    header = payload_models.HEADER.format(source=source)
    made = payload_models.generate_models(api.schemas, payload_models.imported(api), source)
    parts, notes = payload_models.complete(api, made, source)
    models = payload_models.module(parts, header, api.package, formatter)  # formatted
    needs = requirements({name for part in parts for _, name, _ in part.imports})
    own = settings_table.read(output / api.package / "app_settings.py") if output else ()
    renderer = Renderer(api, source, header, settings_table.table(api.defaults, own))
    files, user_files, handlers = renderer.project()
    kept &= user_files  # a path the user had that is generated now is written: formatted
    done = format_files({p: t for p, t in files.items() if p not in kept}, formatter)
    files = {p: done.get(p, t) for p, t in files.items()} | renderer.with_models(models, needs)
    return Build(api, files, user_files, handlers, diagnostics + notes, needs)
