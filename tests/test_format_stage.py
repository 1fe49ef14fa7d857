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
from generator.workers import Pool, Worker
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

    def __init__(self, *_: object) -> None:
        pass

    def add(self, files: dict[str, str]) -> None:
        pass

    def work_until(self, pending: object) -> None:
        pass

    def finish(self) -> dict[str, str]:
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


def _formatted(sources: dict[str, str], pool: Pool | None) -> tuple[dict[str, str], int]:
    """The files formatted by the stage, and how many pieces the workers did."""
    batch = fmt.Formatting(pool)
    batch.add(sources)
    return batch.finish(), len(batch.by_workers)


def test_pieces_formatted_alone_join_to_blacks_own_result(
    sources: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fmt, "PIECE_BYTES", 1)  # a cut wherever one is allowed
    whole = _whole(sources)
    cut = 0
    for path, text in sources.items():
        pieces = fmt.split(text)
        cut += len(pieces) - 1
        joined = fmt.join([fmt._checked(fmt._format(piece), path) for piece in pieces])
        assert joined == whole[path], path
    assert cut > 100  # the models and the routes really were cut, many times


def test_no_cut_inside_a_string_after_a_comment_or_where_black_is_switched_off(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(fmt, "PIECE_BYTES", 1)
    inside_string = 'X = """\nend\n\n\nclass Y:\n    pass\n"""\n\n\nclass Z:\n    pass\n'
    at = inside_string.index("class Z")
    assert fmt.split(inside_string) == [inside_string[:at], inside_string[at:]]
    after_comment = "x = 1\n# about A\n\n\nclass A:\n    pass\n"
    assert fmt.split(after_comment) == [after_comment]
    switched_off = "x = 1\n\n\nclass A:  # fmt: skip\n    pass\n"
    assert fmt.split(switched_off) == [switched_off]


def test_workers_give_blacks_own_result(
    sources: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fmt, "PARALLEL_BYTES", 0)
    monkeypatch.setattr(fmt, "PIECE_BYTES", 4096)
    with Pool(2) as pool:
        formatted, by_workers = _formatted(sources, pool)
        assert len(pool.workers) == 2  # a large batch starts every worker the pool may have
    assert by_workers > 0  # the workers really took part
    assert formatted == _whole(sources)


def test_a_worker_that_cannot_start_leaves_the_work_to_this_process(
    sources: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fmt, "PARALLEL_BYTES", 0)
    monkeypatch.setattr(sys, "executable", str(REPO / "no-such-python"))
    with Pool(2) as pool:
        formatted, by_workers = _formatted(sources, pool)
    assert by_workers == 0
    assert formatted == _whole(sources)


def test_a_worker_killed_holding_a_piece_costs_only_time(
    sources: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The worker process is killed while its piece is in flight: the piece is done here."""
    monkeypatch.setattr(fmt, "PARALLEL_BYTES", 0)
    call = Worker.call
    killed: list[str] = []

    def dies_on_its_first_piece(worker: Worker, kind: str, payload: str) -> object:
        if payload and not killed and worker.process is not None:
            worker.process.kill()
            killed.append(payload)
        return call(worker, kind, payload)

    monkeypatch.setattr(Worker, "call", dies_on_its_first_piece)
    with Pool(1) as pool:
        batch = fmt.Formatting(pool)
        batch.add(sources)
        formatted = batch.finish()
    assert killed and batch.abandoned and batch.abandoned[0][2] == killed[0]
    assert formatted == _whole(sources)


@pytest.mark.parametrize(
    "source", ["", "\n", "\n\n\n", "x = 1\n\n\n\n", "class A:\n    pass\n\n\n", '"""Doc."""\n\n']
)
def test_trailing_blank_lines_dropped_first_change_nothing(source: str) -> None:
    """The stage strips them before black (which is twice as slow with them): same result."""
    import black
    from black.mode import TargetVersion

    mode = black.Mode(line_length=fmt.LINE_LENGTH, target_versions={TargetVersion.PY310})
    assert fmt._format(source) == (True, black.format_str(source, mode=mode))
