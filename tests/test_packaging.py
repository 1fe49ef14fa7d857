"""`pip install .` must ship every module, template and schema, not only what an editable
install happens to find in the working tree."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.support import REPO


def test_the_wheel_holds_every_source_template_and_schema(tmp_path: Path) -> None:
    source = tmp_path / "src"  # a clean copy: a stale build/ folder would hide missing packages
    shutil.copytree(
        REPO,
        source,
        ignore=shutil.ignore_patterns(
            "build", "*.egg-info", ".git", "__pycache__", ".*_cache", "examples", "tests"
        ),
    )
    built = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "-w",
            str(tmp_path),
            str(source),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    # setuptools warns (and will one day fail) when a folder of templates is not a listed package
    output = built.stdout.decode(errors="replace") + built.stderr.decode(errors="replace")
    assert "absent from the `packages` configuration" not in output, output
    (wheel,) = tmp_path.glob("*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {p.relative_to(REPO).as_posix() for p in (REPO / "generator").rglob("*.py")}
    expected |= {
        p.relative_to(REPO).as_posix()
        for p in (REPO / "generator" / "schemas").iterdir()
        if p.is_file()
    }
    expected |= {
        "generator/templates/" + p.relative_to(REPO / "templates").as_posix()
        for p in (REPO / "templates").rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }
    expected.add("generator/runtime/README.md")  # copied into every project
    assert not expected - names, sorted(expected - names)


def test_compiled_templates_live_beside_them_or_in_the_user_cache_when_read_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An installed package may be read-only: compiled templates then go to the user cache."""
    from generator import render

    templates = tmp_path / "templates"
    templates.mkdir()
    beside = render._compiled_templates(templates)
    assert getattr(beside, "directory", None) == str(templates / "__pycache__" / "jinja")
    monkeypatch.setenv("ASYNCAPI_PYGEN_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(render.os, "access", lambda path, mode: False)
    elsewhere = render._compiled_templates(templates)
    assert getattr(elsewhere, "directory", None) == str(tmp_path / "cache" / "jinja")
    monkeypatch.setenv("ASYNCAPI_PYGEN_CACHE", "off")
    assert render._compiled_templates(templates) is None
