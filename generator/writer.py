"""The write stage: compare what was built with what is on disk and in the manifest, then write.

The rules, in one place: a generated file is written when new, rewritten only while it still holds
what the generator last wrote, and deleted when no longer produced and unchanged; a user file is
created once and never rewritten or deleted; nothing the manifest does not list is ever touched.
Planning writes nothing, so `--check` and `--diff` are the same plan, not applied.
"""

from __future__ import annotations

import difflib
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from generator.errors import Diagnostic, Failed, Location
from generator.manifest import MANIFEST_NAME, Entry, Manifest, digest

if TYPE_CHECKING:
    from generator.pipeline import Build


@dataclass
class Plan:
    output: Path
    manifest: Manifest
    contents: dict[str, bytes] = field(default_factory=dict)  # what creates and updates write
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)  # existing user files, left alone
    orphaned: list[str] = field(default_factory=list)  # user files the spec no longer produces
    edited: list[str] = field(default_factory=list)  # generated files a person changed
    stale_edited: list[str] = field(default_factory=list)  # no longer produced, but changed
    manifest_text: bytes = b""  # the manifest to write, set once the plan is complete
    manifest_on_disk: bytes | None = None  # the manifest found, read once

    @property
    def manifest_changed(self) -> bool:
        return self.manifest_on_disk != self.manifest_text

    @property
    def changes(self) -> list[str]:
        """Every path that applying the plan would write or delete, the manifest included."""
        paths = self.created + self.updated + self.deleted + self.edited
        return sorted(paths + ([MANIFEST_NAME] if self.manifest_changed else []))

    def verb(self, relative: str) -> str:
        if relative == MANIFEST_NAME:
            return "create" if self.manifest_on_disk is None else "update"
        kinds = (("create", self.created), ("update", self.updated), ("delete", self.deleted))
        return next((verb for verb, paths in kinds if relative in paths), "overwrite edited")

    def summary(self) -> str:
        """The counts a run reports; an edited file that --force rewrote was updated."""
        counts = [
            ("created", self.created),
            ("updated", self.updated + self.edited),
            ("unchanged", self.unchanged),
            ("deleted", self.deleted),
            ("kept (user)", self.kept),
            ("orphaned", self.orphaned),
        ]
        return ", ".join(f"{len(items)} {label}" for label, items in counts)


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except (FileNotFoundError, IsADirectoryError):
        return None


def _refuse_unmanaged(output: Path, sources: tuple[Path, ...]) -> None:
    """An existing folder with anything but the spec itself (and .git) needs --force."""
    if not output.exists():
        return
    mine = {source.resolve() for source in sources}
    others = [p for p in output.iterdir() if p.name != ".git" and p.resolve() not in mine]
    if others:
        message = (
            f"the output folder is not empty and has no {MANIFEST_NAME}: refusing to write into "
            "files asyncapi-pygen did not create. Use an empty folder, or --force to adopt this "
            "one (generated files in the way are saved as *.bak; existing handlers are kept)"
        )
        shown = output.resolve() if output.name in ("", "..") else output  # `.` says little
        raise Failed([Diagnostic(message, Location(str(shown), 0, 0))])


def plan(build: Build, output: Path, previous: Manifest | None, force: bool) -> Plan:
    """Decide every file's fate; raises Failed when a person's edit would be lost."""
    if previous is None and not force:
        _refuse_unmanaged(output, build.api.sources)
    old = previous or Manifest()
    result = Plan(output, Manifest(handlers=dict(build.handlers)))
    for relative, text in sorted(build.files.items()):
        _plan_file(result, old, relative, text.encode("utf-8"), relative in build.user_files)
    for relative, entry in sorted(old.files.items()):
        if relative not in build.files:
            _plan_stale(result, relative, entry)
    if result.edited and not force:
        raise Failed([_edited_error(output, path) for path in result.edited])
    result.manifest_text = result.manifest.to_json().encode("utf-8")
    result.manifest_on_disk = _read(output / MANIFEST_NAME)
    return result


def kept_user_files(output: Path, previous: Manifest | None) -> frozenset[str]:
    """The user files a run will keep without reading what it rendered for them: on disk, and
    listed as the user's in the manifest (whose hash the new manifest keeps)."""
    if previous is None:
        return frozenset()
    folder = str(output)  # thousands of handlers: no Path objects
    user = [p for p, entry in previous.files.items() if entry.zone == "user"]
    return frozenset(p for p in user if os.path.isfile(os.path.join(folder, p)))


def _plan_file(result: Plan, old: Manifest, relative: str, content: bytes, user: bool) -> None:
    entry = old.files.get(relative)
    if user:
        keep_hash = entry.sha256 if entry is not None and entry.zone == "user" else digest(content)
        result.manifest.files[relative] = Entry("user", keep_hash)
        if (result.output / relative).is_file():  # never read: it is the user's
            result.kept.append(relative)
        else:
            result.created.append(relative)
            result.contents[relative] = content
        return
    on_disk = _read(result.output / relative)
    result.manifest.files[relative] = Entry("generated", digest(content))
    if on_disk is None:
        result.created.append(relative)
    elif on_disk == content:
        result.unchanged.append(relative)
        return
    elif entry is not None and entry.zone == "generated" and digest(on_disk) == entry.sha256:
        result.updated.append(relative)
    else:
        result.edited.append(relative)
    result.contents[relative] = content


def _plan_stale(result: Plan, relative: str, entry: Entry) -> None:
    on_disk = _read(result.output / relative)
    if on_disk is None:
        return
    if entry.zone == "user":
        result.orphaned.append(relative)
        result.manifest.files[relative] = entry
    elif digest(on_disk) == entry.sha256:
        result.deleted.append(relative)
    else:
        result.stale_edited.append(relative)
        result.manifest.files[relative] = entry


def _edited_error(output: Path, relative: str) -> Diagnostic:
    message = (
        "generated file was edited by hand and would be overwritten; move your code into a "
        "handler or lifecycle.py (the user zone), or run with --force to save this file as "
        "*.bak and regenerate it"
    )
    return Diagnostic(message, Location(str(output / relative)))


def apply(result: Plan) -> list[Path]:
    """Carry out the plan; returns the backups made of edited generated files."""
    backups = [_backup(result.output / relative) for relative in result.edited]
    for relative, content in sorted(result.contents.items()):
        _write_atomic(result.output / relative, content)
    for relative in result.deleted:
        path = result.output / relative
        path.unlink()
        _prune_empty_dirs(path.parent, result.output)
    if result.manifest_changed:
        _write_atomic(result.output / MANIFEST_NAME, result.manifest_text)
    return backups


def _backup(path: Path) -> Path:
    target = path.with_name(path.name + ".bak")
    counter = 1
    while target.exists():
        target = path.with_name(f"{path.name}.bak{counter}")
        counter += 1
    path.replace(target)
    return target


def _write_atomic(path: Path, content: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "wb") as handle:
        handle.write(content)
    os.replace(tmp, path)


def _prune_empty_dirs(folder: Path, stop: Path) -> None:
    while folder != stop and folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()
        folder = folder.parent


def unified_diff(result: Plan) -> str:
    """What applying the plan would change, as one unified diff."""
    chunks: list[str] = []
    contents = {**result.contents, MANIFEST_NAME: result.manifest_text}
    for relative in result.changes:
        on_disk = _read(result.output / relative)
        before = (on_disk or b"").decode("utf-8", "replace")
        after = "" if relative in result.deleted else contents[relative].decode("utf-8")
        old_name = "/dev/null" if on_disk is None else f"a/{relative}"
        new_name = "/dev/null" if relative in result.deleted else f"b/{relative}"
        chunks.extend(
            difflib.unified_diff(
                before.splitlines(keepends=True),
                after.splitlines(keepends=True),
                old_name,
                new_name,
            )
        )
    return "".join(chunks)
