"""The command line: the only place that prints diagnostics and chooses exit codes."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from generator import __version__
from generator.errors import Diagnostic, Failed, Level

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


def _fail(exc: Exception, debug: bool) -> None:
    """Print what went wrong and exit 1; a traceback only with --debug."""
    if debug:
        raise exc
    if isinstance(exc, Failed):
        _print(exc.diagnostics)
        errors = len({d for d in exc.diagnostics if d.level is Level.ERROR})
        typer.echo(f"{errors} error(s); nothing was generated", err=True)
    else:
        typer.echo(f"internal error: {type(exc).__name__}: {exc} (--debug shows where)", err=True)
    raise typer.Exit(1)


Spec = Annotated[
    Path, typer.Argument(help="The AsyncAPI document (YAML or JSON).", show_default=False)
]
Debug = Annotated[bool, typer.Option("--debug", help="Show tracebacks for internal errors.")]


@app.command()
def validate(spec: Spec, debug: Debug = False) -> None:
    """Check a document against its version's official schema and the semantic rules."""
    from generator.pipeline import analyse

    try:
        api, diagnostics = analyse(spec, None, str(spec))
    except Exception as exc:
        _fail(exc, debug)
        return
    _print(diagnostics)
    counts = f"{len(api.channels)} channels, {len(api.operations)} operations"
    typer.echo(f"{spec}: valid AsyncAPI {api.asyncapi_version} ({counts})")


@app.command()
def generate(
    spec: Spec,
    output: Annotated[Path, typer.Option("--output", "-o", help="The folder to generate into.")],
    package: Annotated[
        str | None, typer.Option(help="The Python package name (default: from info.title).")
    ] = None,
    debug: Debug = False,
) -> None:
    """Generate models and the MQTT service project into OUTPUT."""
    from generator.pipeline import build
    from generator.writer import write_project

    try:
        result = build(spec, package, str(spec))
        write_project(result, output)
    except Exception as exc:
        _fail(exc, debug)
        return
    _print(result.diagnostics)
    typer.echo(f"generated {len(result.files)} files into {output}")


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
