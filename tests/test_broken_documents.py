"""Snapshots of the CLI's output for broken documents (errors, exit 1) and for documents with
input the generator supports only in part (warnings, exit 0): message, file:line:col, pointer.

Update after an intended change with `UPDATE_SNAPSHOTS=1 pytest tests/test_broken_documents.py`,
then review the diff of `tests/broken/*.expected` and `tests/unsupported/*.expected`.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

import pytest

from generator import pipeline, validate
from generator.errors import Failed
from generator.normalize import normalize
from generator.refs import Workspace
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


def test_schema_and_semantic_errors_are_reported_together() -> None:
    result = cli("validate", "tests/broken/schema-and-semantic-errors.yaml")
    assert "'objekt' is not one of" in result.stderr
    assert "address parameter {zone} is not declared" in result.stderr
    assert "2 error(s)" in result.stderr


def shapes(data: Any, path: tuple[str | int, ...] = ()) -> Iterator[tuple[str | int, ...]]:
    yield path
    items = (
        data.items()
        if isinstance(data, dict)
        else enumerate(data) if isinstance(data, list) else []
    )
    for key, value in items:
        yield from shapes(value, (*path, key))


MALFORMED = (7, "x", [], {}, None)


@pytest.mark.parametrize(
    "spec",
    [
        "tests/golden/kitchen-sink/asyncapi.yaml",
        "tests/specs/pets-2.6.yaml",
        "tests/specs/robust-2.6.yaml",
    ],
)
def test_semantic_checks_survive_every_malformed_shape(spec: str) -> None:
    """They run on documents the schema rejected, so every value of every document (here
    three that take most branches) may be of any type: each one is replaced by each of
    `MALFORMED` in turn, and the semantic checks report or ignore it, never crash."""
    ws = Workspace(REPO / spec)
    version = validate.check_version(ws)
    original = ws.root.data
    crashes = []
    for path in list(shapes(original))[2:]:  # the root and `asyncapi` are checked first
        for value in MALFORMED:
            ws.root.data = copy.deepcopy(original)
            target = ws.root.data
            for key in path[:-1]:
                target = target[key]
            target[path[-1]] = value
            try:
                normalize(ws, version, "p")
            except Failed:
                pass
            except Exception as exc:  # what the test is for
                crashes.append(f"{'/'.join(map(str, path))} = {value!r}: {exc!r}")
    assert not crashes, "\n".join(crashes[:20])


def test_a_semantic_check_that_trips_never_hides_the_schema_errors(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def trips(*args: object) -> NoReturn:
        raise TypeError("a shape no check foresaw")

    monkeypatch.setattr(pipeline, "normalize", trips)
    with pytest.raises(Failed) as caught:
        pipeline.analyse(BROKEN / "schema-and-semantic-errors.yaml")
    assert [d.message[:20] for d in caught.value.diagnostics] == ["'objekt' is not one "]
    with pytest.raises(TypeError):  # on a valid document, a bug is a bug
        pipeline.analyse(REPO / "examples" / "mqtt" / "asyncapi.yaml")
