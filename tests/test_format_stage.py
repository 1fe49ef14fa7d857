"""The format stage shares a large batch among worker processes and cuts a large module at its
top-level classes; the result must be exactly what black makes of each whole file alone."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
import yaml

from generator import format as fmt
from generator import pipeline
from tests.support import REPO

KITCHEN_SINK = REPO / "tests" / "golden" / "kitchen-sink" / "asyncapi.yaml"


def _synthetic(tmp_path: Path, channels: int) -> Path:
    spec = importlib.util.spec_from_file_location("synthetic", REPO / "bench" / "synthetic.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    path = tmp_path / "synthetic.yaml"
    path.write_text(yaml.safe_dump(module.document(channels), sort_keys=False))
    return path


def _unformatted(spec: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The project's files as rendered, before the format stage."""
    with monkeypatch.context() as patch:
        patch.setattr(fmt, "format_files", lambda files: files)
        files = pipeline.build(spec).files
    return {path: text for path, text in files.items() if fmt._needs_black(path)}


@pytest.fixture()
def sources(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.setenv("ASYNCAPI_PYGEN_CACHE", "off")
    found = _unformatted(KITCHEN_SINK, monkeypatch)
    found.update(
        {
            f"synthetic/{p}": t
            for p, t in _unformatted(_synthetic(tmp_path, 40), monkeypatch).items()
        }
    )
    return found


def _whole(sources: dict[str, str]) -> dict[str, str]:
    return {path: fmt._checked(fmt._format(text), path) for path, text in sources.items()}


def test_workers_and_chunks_give_blacks_own_result(
    sources: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fmt, "PARALLEL_BYTES", 0)
    monkeypatch.setattr(fmt, "CHUNK_BYTES", 3000)
    assert len(fmt.split(sources["synthetic/synthetic_40/models.py"])) > 3  # the cut is exercised
    monkeypatch.setattr(fmt.os, "cpu_count", lambda: 3)  # two workers besides this process
    assert fmt.format_files(sources) == _whole(sources)


def test_a_failing_worker_leaves_the_work_to_this_process(
    sources: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fmt, "PARALLEL_BYTES", 0)
    monkeypatch.setattr(fmt.os, "cpu_count", lambda: 2)
    monkeypatch.setattr(sys, "executable", str(REPO / "no-such-python"))
    assert fmt.format_files(sources) == _whole(sources)
