"""Regenerate, nothing changed: the daily loop's run, decided from hashes instead of a rebuild.

After a run, the cache keeps (per output folder, one record: the last run's) a digest of everything
that shaped the project, the digest of the manifest that run wrote, and what a re-run would report.
The next run with the same inputs, finding that very manifest on disk, only verifies the files
against it and reports as before. A record is tied to the manifest it wrote because any other run
into the folder (another document, a run that kept no record) rewrites the manifest. Anything
unsure (a changed input, an edited or missing file, remote references, no cache) means a full
run: this only ever saves time.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from generator import __version__, cache
from generator.errors import Diagnostic, Level, Location
from generator.manifest import MANIFEST_NAME, Manifest, digest

if TYPE_CHECKING:
    from generator.writer import Plan

# What the generated code depends on besides this package's own files.
LIBRARIES = ("ruff", "black", "datamodel_code_generator", "jinja2", "pydantic", "jsonschema_rs")


@dataclass(frozen=True)
class Inputs:
    spec: Path
    package: str | None
    display: str
    output: Path
    formatter: str


@dataclass
class Outcome:
    """What the last run left for a re-run to report: the same diagnostics and file counts."""

    package: str
    sources: list[str]
    diagnostics: list[Diagnostic]
    requirements: tuple[str, ...]
    unchanged: list[str]
    kept: list[str]
    orphaned: list[str]
    stale_edited: list[str]
    checks: list[Diagnostic]  # what the handler and dependency checks found
    checked: str  # the digest of the files those checks read, as they were


def checked(output: Path, manifest: Manifest, orphaned: list[str]) -> str:
    """A digest of the user's files the handler and dependency checks read: while it holds,
    their findings hold too, and a replay repeats them instead of parsing every handler."""
    h, folder = hashlib.sha256(), str(output)
    for relative in [*sorted(manifest.handlers), *orphaned, *manifest.lifecycles, "pyproject.toml"]:
        try:
            with open(os.path.join(folder, relative), "rb") as handle:
                content = handle.read()
        except OSError:
            content = b"-"
        h.update(relative.encode("utf-8", "surrogateescape") + b"\0" + digest(content).encode())
    return h.hexdigest()


def _generator_files() -> list[Path]:
    root = Path(__file__).parent
    templates = Path(str(resources.files("generator.templates")))
    return sorted(p for folder in (root, templates) for p in folder.rglob("*") if p.is_file())


def _digest(inputs: Inputs, package: str, sources: list[str]) -> str | None:
    """Everything that shapes the project, hashed; None if a source cannot be read."""
    h = hashlib.sha256()
    parts = [__version__, str(inputs.package), inputs.display, package, inputs.formatter]
    parts.append(str(inputs.spec.resolve()))
    parts += [cache.fingerprint(name) for name in LIBRARIES]
    for path in _generator_files():
        stat = path.stat()
        parts.append(f"{path}:{stat.st_size}:{stat.st_mtime_ns}")
    h.update("\0".join(parts).encode("utf-8"))
    for name in [*sources, str(inputs.output / package / "app_settings.py")]:
        try:
            content = hashlib.sha256(Path(name).read_bytes()).digest()
            h.update(b"\0" + name.encode("utf-8", "surrogateescape") + b"\0" + content)
        except FileNotFoundError:
            h.update(b"\0-")
        except OSError:
            return None
    return h.hexdigest()


def _key(inputs: Inputs) -> tuple[str, ...]:
    return (str(inputs.output.resolve()),)


def remember(inputs: Inputs, outcome: Outcome, manifest_text: bytes) -> None:
    """Keep the outcome of a run that wrote `inputs.output` as `outcome` says, and
    `manifest_text` as its manifest."""
    state = _digest(inputs, outcome.package, outcome.sources)
    if state is None:
        return
    data = {
        "inputs": state,
        "manifest": digest(manifest_text),
        "package": outcome.package,
        "sources": outcome.sources,
        "diagnostics": [_diagnostic_json(d) for d in outcome.diagnostics],
        "requirements": list(outcome.requirements),
        "unchanged": outcome.unchanged,
        "kept": outcome.kept,
        "orphaned": outcome.orphaned,
        "stale_edited": outcome.stale_edited,
        "checks": [_diagnostic_json(d) for d in outcome.checks],
        "checked": outcome.checked,
    }
    cache.store("runs", _key(inputs), json.dumps(data))


def recall(inputs: Inputs, manifest: Manifest | None) -> Outcome | None:
    """The last run's outcome if nothing that shapes the project changed and every file is as
    that run left it; else None."""
    text = cache.lookup("runs", _key(inputs))
    if text is None or manifest is None:
        return None
    try:
        data = json.loads(text)
        outcome = Outcome(
            package=str(data["package"]),
            sources=[str(s) for s in data["sources"]],
            diagnostics=[_diagnostic(d) for d in data["diagnostics"]],
            requirements=tuple(str(r) for r in data["requirements"]),
            **{
                k: [str(p) for p in data[k]]
                for k in ("unchanged", "kept", "orphaned", "stale_edited")
            },
            checks=[_diagnostic(d) for d in data["checks"]],
            checked=str(data["checked"]),
        )
    except (ValueError, KeyError, TypeError):
        return None
    if data["inputs"] != _digest(inputs, outcome.package, outcome.sources):
        return None
    try:
        written = digest((inputs.output / MANIFEST_NAME).read_bytes())
    except OSError:
        return None
    if data["manifest"] != written:
        return None  # another run wrote the folder since
    return outcome if _as_left(inputs.output, manifest, outcome) else None


def _as_left(output: Path, manifest: Manifest, outcome: Outcome) -> bool:
    """Generated files hold what the manifest says; the user's files are all still there."""
    listed = set(outcome.unchanged) | set(outcome.kept) | set(outcome.orphaned)
    if listed | set(outcome.stale_edited) != set(manifest.files):
        return False
    folder, stale = str(output), set(outcome.stale_edited)
    for relative, entry in manifest.files.items():
        path = os.path.join(folder, relative)  # thousands of handlers: no Path objects
        if entry.zone == "user" or relative in stale:
            if not os.path.isfile(path):
                return False
            continue
        try:
            with open(path, "rb") as handle:
                if digest(handle.read()) != entry.sha256:
                    return False
        except OSError:
            return False
    return True


def _diagnostic_json(d: Diagnostic) -> list[Any]:
    loc = d.location
    return [d.message, loc.file, loc.line, loc.col, d.pointer, d.level.value]


def _diagnostic(data: list[Any]) -> Diagnostic:
    message, file, line, col, pointer, level = data
    return Diagnostic(str(message), Location(str(file), int(line), int(col)), pointer, Level(level))


def plan(output: Path, manifest: Manifest, outcome: Outcome) -> Plan:
    """The plan a full run would make: nothing to write, every file where it was."""
    from generator.writer import Plan

    text = (output / MANIFEST_NAME).read_bytes()
    return Plan(
        output,
        manifest,
        unchanged=list(outcome.unchanged),
        kept=list(outcome.kept),
        orphaned=list(outcome.orphaned),
        stale_edited=list(outcome.stale_edited),
        manifest_text=text,
        manifest_on_disk=text,
    )
