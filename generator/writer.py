"""The write stage: put the built files on disk, never touching a user-owned file that exists."""

from __future__ import annotations

from pathlib import Path

from generator.pipeline import Build


def write_project(build: Build, output: Path) -> None:
    for relative, content in sorted(build.files.items()):
        path = output / relative
        if relative in build.user_files and path.exists():
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        data = content.encode("utf-8")
        if path.exists() and path.read_bytes() == data:
            continue
        path.write_bytes(data)
