"""The models are made by a worker process while this one renders and formats: the result must
be the library's own, its refusal the same located error, and a failing worker only slower."""

from __future__ import annotations

import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from generator import format as fmt
from generator import payload_models, pipeline
from generator.errors import Failed
from generator.workers import Pool, Worker
from tests.support import REPO

KITCHEN_SINK = REPO / "tests" / "golden" / "kitchen-sink" / "asyncapi.yaml"
REFUSED = {"Reading": {"type": "object", "properties": {"x": {"$ref": "elsewhere.json#/X"}}}}


@pytest.fixture(autouse=True)
def no_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASYNCAPI_PYGEN_CACHE", "off")


@pytest.fixture(scope="module")
def schemas() -> dict[str, Any]:
    api, _ = pipeline.analyse(KITCHEN_SINK)
    assert len(api.schemas) > 5
    return api.schemas


def _models(schemas: dict[str, Any], pool: Pool | None) -> str:
    return payload_models.generate_models(
        schemas, "pkg.wire.WireModel", "# h", "a.yaml", pool
    ).result()


def test_a_worker_makes_the_same_models(schemas: dict[str, Any]) -> None:
    here = _models(schemas, None)
    with Pool(1) as pool:
        pending = payload_models.generate_models(
            schemas, "pkg.wire.WireModel", "# h", "a.yaml", pool
        )
        assert pool.busy  # the job went to the worker
        assert pending.result() == here
    assert "class " in here


def test_a_refusal_in_the_worker_is_the_same_located_error() -> None:
    with pytest.raises(Failed) as here:
        _models(REFUSED, None)
    with Pool(1) as pool, pytest.raises(Failed) as there:
        _models(REFUSED, pool)
    assert there.value.diagnostics == here.value.diagnostics
    assert "cannot generate models" in here.value.diagnostics[0].message


def test_a_worker_that_cannot_start_leaves_the_models_to_this_process(
    schemas: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    here = _models(schemas, None)
    monkeypatch.setattr(sys, "executable", str(REPO / "no-such-python"))
    with Pool(1) as pool:
        assert _models(schemas, pool) == here


def test_a_worker_killed_during_the_models_leaves_them_to_this_process(
    schemas: dict[str, Any],
) -> None:
    here = _models(schemas, None)
    with Pool(1) as pool:
        process = pool.workers[0].process
        assert process is not None
        process.kill()
        assert _models(schemas, pool) == here


def test_models_from_the_cache_stop_the_worker_warming_up_for_them(
    schemas: dict[str, Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("ASYNCAPI_PYGEN_CACHE", str(tmp_path))
    here = _models(schemas, None)  # now in the cache
    with Pool(1) as pool:
        assert pool.workers
        assert _models(schemas, pool) == here
        assert not pool.workers and not pool.busy


def test_a_process_that_built_before_works_alone() -> None:
    """The libraries are imported in this test process: workers would only cost a start-up."""
    import datamodel_code_generator  # noqa: F401

    with Pool.start() as pool:
        assert pool.capacity == 0 and not pool.workers


def test_a_build_that_ends_early_ends_its_workers_and_their_jobs(
    schemas: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failure after the workers were given work (the models refused, a bug found): closing
    the pool ends every thread and process, and the models are not made here instead."""
    monkeypatch.setattr(fmt, "PARALLEL_BYTES", 0)
    pool = Pool(2)
    pending = payload_models.generate_models(schemas, "pkg.wire.WireModel", "# h", "a.yaml", pool)
    batch = fmt.Formatting(pool)
    batch.add({"a.py": "x = 1\n"})
    assert len(batch.feeders) == 2  # threads waiting for pieces
    closing = threading.Thread(target=pool.close)
    closing.start()
    closing.join(30)
    assert not closing.is_alive()
    assert all(worker.process is None for worker in pool.workers)
    assert pending.cancelled()


def test_a_worker_imports_this_generator_not_one_in_the_users_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A user's project may well have a `generator` package; running it would be a surprise."""
    marker = tmp_path / "imported"
    (tmp_path / "generator").mkdir()
    (tmp_path / "generator" / "__init__.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    monkeypatch.chdir(tmp_path)
    worker = Worker("black")
    try:
        assert worker.call("black", "x=1") == [True, "x = 1\n"]
    finally:
        worker.close()
    assert not marker.exists()
