"""Snapshots of the CLI's output for broken documents (errors, exit 1) and for documents with
input the generator supports only in part (warnings, exit 0): message, file:line:col, pointer.

Update after an intended change with `UPDATE_SNAPSHOTS=1 pytest tests/test_broken_documents.py`,
then review the diff of `tests/broken/*.expected` and `tests/unsupported/*.expected`.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.support import REPO, cli

BROKEN = REPO / "tests" / "broken"
DOCUMENTS = sorted(p for p in BROKEN.iterdir() if p.suffix in (".yaml", ".json"))
UNSUPPORTED = sorted((REPO / "tests" / "unsupported").glob("*.yaml"))


def test_there_are_enough_broken_documents() -> None:
    assert len(DOCUMENTS) >= 15


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: p.name)
def test_error_output(document: Path) -> None:
    relative = document.relative_to(REPO).as_posix()
    result = cli("validate", relative)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
    first = result.stderr.splitlines()[0]
    assert first.startswith(f"{relative}:"), first
    snapshot = document.with_suffix(".expected")
    if os.environ.get("UPDATE_SNAPSHOTS"):
        snapshot.write_text(result.stderr)
    assert result.stderr == snapshot.read_text()


@pytest.mark.parametrize("document", UNSUPPORTED, ids=lambda p: p.name)
def test_warning_output(document: Path) -> None:
    relative = document.relative_to(REPO).as_posix()
    result = cli("validate", relative)
    assert result.returncode == 0, result.stderr
    assert ": warning: " in result.stderr and "Traceback" not in result.stderr
    snapshot = document.with_suffix(".expected")
    if os.environ.get("UPDATE_SNAPSHOTS"):
        snapshot.write_text(result.stderr)
    assert result.stderr == snapshot.read_text()


def test_generate_reports_the_same_errors_and_writes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = cli("generate", "tests/broken/undeclared-param.yaml", "--output", str(out))
    assert result.returncode == 1
    assert "undeclared-param.yaml:7:14: address parameter {deviceId}" in result.stderr
    assert not out.exists()


def test_wrong_usage_exits_2() -> None:
    assert cli("generate").returncode == 2
    assert cli("frobnicate").returncode == 2
