"""The command line: the only place that prints diagnostics and chooses exit codes."""

from __future__ import annotations

import sys
import time
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer.core import TyperArgument, TyperCommand, TyperOption

from generator import __version__
from generator.budget import MIB, Limits
from generator.errors import Diagnostic, Failed, Level, Location

if TYPE_CHECKING:
    from generator.manifest import Manifest
    from generator.pipeline import Build
    from generator.refs import Access
    from generator.replay import Inputs, Outcome
    from generator.writer import Plan

app = typer.Typer(
    pretty_exceptions_enable=False,
    add_completion=False,
    no_args_is_help=True,
    help="Generate typed asyncio MQTT services from AsyncAPI documents.",
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"asyncapi-pygen {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool | None,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Show the version and exit."
        ),
    ] = None,
) -> None:
    """asyncapi-pygen: AsyncAPI 2.0-3.1 in, a typed asyncio MQTT service out."""


def _print(diagnostics: list[Diagnostic]) -> None:
    for diagnostic in sorted(set(diagnostics), key=Diagnostic.sort_key):
        typer.echo(diagnostic.render(), err=True)


def _fail(exc: Exception, debug: bool, outcome: str = "nothing was generated") -> None:
    """Print what went wrong and exit 1; a traceback only with --debug."""
    if debug:
        raise exc
    if isinstance(exc, Failed):
        _print(exc.diagnostics)
        errors = len({d for d in exc.diagnostics if d.level is Level.ERROR})
        typer.echo(f"{errors} error(s); {outcome}", err=True)
    elif isinstance(exc, OSError):
        where = f" ({exc.filename})" if exc.filename else ""
        typer.echo(f"cannot write the project: {exc.strerror or exc}{where}", err=True)
    else:
        typer.echo(f"internal error: {type(exc).__name__}: {exc} (--debug shows where)", err=True)
    raise typer.Exit(1)


Spec = Annotated[
    Path,
    typer.Argument(
        metavar="SPEC", help="The AsyncAPI document (YAML or JSON).", show_default=False
    ),
]
Debug = Annotated[bool, typer.Option("--debug", help="Show tracebacks for internal errors.")]
Remote = Annotated[
    bool,
    typer.Option("--allow-remote-refs", help="Fetch http(s) $refs (10 s each, once per run)."),
]
RefRoots = Annotated[
    list[Path] | None,
    typer.Option(
        "--allow-ref-root",
        metavar="DIR",
        exists=True,
        file_okay=False,
        show_default=False,
        help="Follow local $refs into DIR too (repeatable); else only the document's folder.",
    ),
]
_LIMITS = Limits()
MaxSize = Annotated[
    int,
    typer.Option(
        "--max-size", metavar="MIB", min=1, help="Size limit of the document and its files."
    ),
]
MaxNodes = Annotated[
    int,
    typer.Option(
        "--max-nodes", metavar="N", min=1, help="Node limit (aliases and $refs expanded)."
    ),
]


class _Usage(TyperCommand):
    """The usage line as one types the command: `generate --output DIR [OPTIONS] SPEC` (typer
    leaves out required options and writes a required argument as `{SPEC}`)."""

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        params = self.params
        required = [
            f"{p.opts[0]} {p.make_metavar(ctx)}"
            for p in params
            if isinstance(p, TyperOption) and p.required
        ]
        arguments = [p.metavar or p.name or "" for p in params if isinstance(p, TyperArgument)]
        return [*required, self.options_metavar or "[OPTIONS]", *arguments]


def _access(remote: bool, roots: list[Path] | None, max_size: int, max_nodes: int) -> Access:
    from generator.refs import Access

    return Access(remote, tuple(roots or ()), Limits(max_size * MIB, max_nodes))


@app.command(cls=_Usage)
def validate(
    spec: Spec,
    allow_remote_refs: Remote = False,
    allow_ref_root: RefRoots = None,
    max_size: MaxSize = _LIMITS.max_bytes // MIB,
    max_nodes: MaxNodes = _LIMITS.max_nodes,
    debug: Debug = False,
) -> None:
    """Check a document against its version's official schema and the semantic rules."""
    from generator.pipeline import analyse

    access = _access(allow_remote_refs, allow_ref_root, max_size, max_nodes)
    try:
        api, diagnostics = analyse(spec, None, str(spec), access)
    except Exception as exc:
        _fail(exc, debug, "the document is not valid")
        return
    _print(diagnostics)
    counts = f"{len(api.channels)} channels, {len(api.operations)} operations"
    typer.echo(f"{spec}: valid AsyncAPI {api.asyncapi_version} ({counts})")


def _flag(help_text: str) -> Any:
    return typer.Option(help=help_text)


class Formatter(StrEnum):
    RUFF = "ruff"
    BLACK = "black"


@app.command(cls=_Usage)
def generate(
    spec: Spec,
    output: Annotated[
        Path,
        typer.Option("--output", "-o", metavar="DIR", help="The folder to generate into."),
    ],
    package: Annotated[
        str | None, typer.Option(help="The Python package name (default: from info.title).")
    ] = None,
    force: Annotated[
        bool, _flag("Overwrite hand-edited generated files (saved as *.bak first).")
    ] = False,
    check: Annotated[bool, _flag("Write nothing; exit 1 if any file would change.")] = False,
    diff: Annotated[
        bool, _flag("Write nothing; print a unified diff of what would change.")
    ] = False,
    strict: Annotated[bool, _flag("Exit 1 when handlers drifted from the spec.")] = False,
    formatter: Annotated[
        Formatter, _flag("ruff (the default) or black: the same bytes, black is slower.")
    ] = Formatter.RUFF,
    allow_remote_refs: Remote = False,
    allow_ref_root: RefRoots = None,
    max_size: MaxSize = _LIMITS.max_bytes // MIB,
    max_nodes: MaxNodes = _LIMITS.max_nodes,
    debug: Debug = False,
) -> None:
    """Generate models and the MQTT service project into DIR, keeping your handlers."""
    from generator import manifest, replay
    from generator.refs import DEFAULT_ACCESS

    started = time.perf_counter()
    _check_package(package)
    access = _access(allow_remote_refs, allow_ref_root, max_size, max_nodes)
    inputs = replay.Inputs(spec, package, str(spec), output, formatter.value)
    try:
        previous = manifest.load(output)
        fresh = force or check or diff or access != DEFAULT_ACCESS  # the limits are checked
        again = None if fresh else replay.recall(inputs, previous)
        if again is not None and previous is not None:
            _replay(inputs, replay.plan(output, previous, again), again, started, strict)
            return
        from generator import writer
        from generator.pipeline import build

        kept = writer.kept_user_files(output, previous)
        result = build(spec, package, str(spec), access, output, formatter.value, kept)
        plan = writer.plan(result, output, previous, force or check or diff)
        _print(result.diagnostics)
        if check or diff:
            drifted = _checks(plan, previous, result.requirements)
            _print(drifted)
            _preview(plan, writer.unified_diff(plan) if diff else None, drifted, strict)
            return
        backups = writer.apply(plan)
        drifted = _checks(plan, previous, result.requirements)
        if access == DEFAULT_ACCESS:  # a run that needed more than the defaults is not replayed
            _remember(inputs, result, plan, drifted)
    except (typer.Exit, KeyboardInterrupt):
        raise
    except Exception as exc:  # an unwritable folder, a full disk: reported, not a traceback
        _fail(exc, debug)
        return
    _finish(plan, drifted, _kept_notes(output, plan, backups), started, strict)


def _check_package(package: str | None) -> None:
    """An explicit --package that the project could not import is an error before any work."""
    from generator.names import package_problem

    problem = package_problem(package) if package is not None else None
    if problem is not None:
        typer.echo(f"--package {package!r} cannot be used: {problem}", err=True)
        raise typer.Exit(1)


def _replay(inputs: Inputs, plan: Plan, again: Outcome, started: float, strict: bool) -> None:
    """Nothing changed since the last run: its report again, with today's handler checks
    (the last run's findings while the files they read are as they were)."""
    from generator import replay

    _print(again.diagnostics)
    checked = replay.checked(plan.output, plan.manifest, plan.orphaned)
    if checked != again.checked:
        again.checks, again.checked = _checks(plan, plan.manifest, again.requirements), checked
        replay.remember(inputs, again, plan.manifest_text)
    _finish(plan, again.checks, _kept_notes(plan.output, plan, []), started, strict)


def _checks(
    plan: Plan, previous: Manifest | None, requirements: tuple[str, ...]
) -> list[Diagnostic]:
    """What the user's files say against the spec: handlers that drifted, dependencies."""
    from generator import drift

    return drift.report(plan.output, plan, previous) + _dependencies(plan.output, requirements)


def _finish(
    plan: Plan, drifted: list[Diagnostic], notes: list[Diagnostic], started: float, strict: bool
) -> None:
    _print(drifted + notes)
    elapsed = time.perf_counter() - started
    typer.echo(f"{plan.output}: {plan.summary()} in {elapsed:.2f} s")
    if strict and drifted:
        typer.echo(f"{len(drifted)} handler problem(s) and --strict: exit 1", err=True)
        raise typer.Exit(1)


def _remember(inputs: Inputs, result: Build, applied: Plan, checks: list[Diagnostic]) -> None:
    """What a re-run would report, kept for `replay`: once `applied` is written, every built
    file is on disk as built; what the plan left alone stays as it was."""
    from generator import replay

    outcome = replay.Outcome(
        package=result.api.package,
        sources=[str(path.resolve()) for path in result.api.sources],
        diagnostics=result.diagnostics,
        requirements=result.requirements,
        unchanged=sorted(set(result.files) - result.user_files),
        kept=sorted(result.user_files),
        orphaned=applied.orphaned,
        stale_edited=applied.stale_edited,
        checks=checks,
        checked=replay.checked(applied.output, applied.manifest, applied.orphaned),
    )
    replay.remember(inputs, outcome, applied.manifest_text)


def _dependencies(output: Path, requirements: tuple[str, ...]) -> list[Diagnostic]:
    from generator import drift

    if not (output / "pyproject.toml").is_file():
        return []
    return drift.check_dependencies(output, requirements)


def _preview(plan: Plan, diff_text: str | None, drifted: list[Diagnostic], strict: bool) -> None:
    """--check and --diff: list or show the changes, exit 1 if there are any (or, with
    --strict, if handlers drifted from the spec)."""
    if diff_text is not None:
        typer.echo(diff_text, nl=False)
    for relative in plan.changes:
        typer.echo(f"would {plan.verb(relative)} {plan.output / relative}", err=True)
    if plan.changes:
        raise typer.Exit(1)
    problems = f" but {len(drifted)} handler problem(s)" if drifted else ""
    typer.echo(f"{plan.output}: up to date{problems}")
    if strict and drifted:
        typer.echo(f"{len(drifted)} handler problem(s) and --strict: exit 1", err=True)
        raise typer.Exit(1)


def _kept_notes(output: Path, plan: Plan, backups: list[Path]) -> list[Diagnostic]:
    notes = [
        Diagnostic(
            f"hand-edited generated file saved as {backup.name} and regenerated",
            Location(str(backup)),
            None,
            Level.WARNING,
        )
        for backup in backups
    ]
    notes += [
        Diagnostic(
            "no longer generated, but edited by hand: kept; delete it when done",
            Location(str(output / relative)),
            None,
            Level.WARNING,
        )
        for relative in plan.stale_edited
    ]
    return notes


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
