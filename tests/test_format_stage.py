"""The format stage shares its work among worker processes; the result must be exactly what
black makes of each file alone, in this process, and a failing worker must cost nothing but time."""

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


class _Unformatted:
    """A format stage that leaves everything as rendered."""

    def __init__(self, files: dict[str, str], **_: int) -> None:
        pass

    def finish(self, more: dict[str, str] | None = None) -> dict[str, str]:
        return {}


def _unformatted(spec: Path) -> dict[str, str]:
    """The project's files as rendered, before the format stage."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(fmt, "Formatting", _Unformatted)
        patch.setenv("ASYNCAPI_PYGEN_CACHE", "off")
        files = pipeline.build(spec).files
    return {path: text for path, text in files.items() if fmt.needs_black(path)}


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    found = _unformatted(KITCHEN_SINK)
    synthetic = _synthetic(tmp_path_factory.mktemp("synthetic"), 20)
    found.update({f"synthetic/{p}": t for p, t in _unformatted(synthetic).items()})
    return found


@pytest.fixture(autouse=True)
def no_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASYNCAPI_PYGEN_CACHE", "off")


def _whole(sources: dict[str, str]) -> dict[str, str]:
    return {path: fmt._checked(fmt._format(text), path) for path, text in sources.items()}


def test_workers_give_blacks_own_result(
    sources: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fmt, "PARALLEL_BYTES", 0)
    monkeypatch.setattr(fmt.os, "cpu_count", lambda: 3)
    batch = fmt.Formatting(sources)
    assert len(batch.jobs) == 3  # three workers really share the work
    assert batch.finish() == _whole(sources)


def test_a_failing_worker_leaves_the_work_to_this_process(
    sources: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fmt, "PARALLEL_BYTES", 0)
    monkeypatch.setattr(fmt.os, "cpu_count", lambda: 2)
    monkeypatch.setattr(sys, "executable", str(REPO / "no-such-python"))
    batch = fmt.Formatting(sources)
    assert batch.jobs
    assert batch.finish() == _whole(sources)
