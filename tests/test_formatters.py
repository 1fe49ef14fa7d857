"""`ruff format` is the engine and black the reference: a user who must have black
(`--formatter black`) gets the same bytes. Checked on both golden records and a sample of the
corpus, from the same rendered sources; a difference names the file and the line."""

from __future__ import annotations

import difflib
from pathlib import Path

import pytest

from generator import format as fmt
from generator.errors import Failed
from generator.pipeline import build
from generator.refs import Access
from tests.support import CORPUS, EXAMPLE_SPEC, REPO, cli

KITCHEN_SINK = REPO / "tests" / "golden" / "kitchen-sink" / "asyncapi.yaml"
# Every kind of document the corpus has: payload combinators, headers, request/reply, big ones.
CORPUS_SAMPLE = [
    "2.6.0/streetlights-mqtt.yml",
    "2.6.0/slack-rtm.yml",
    "2.6.0/social-media/frontend/asyncapi.yaml",
    "3.0.0/anyof-asyncapi.yml",
    "3.0.0/gitter-streaming-asyncapi.yml",
    "3.0.0/kraken-websocket-request-reply-multiple-channels-asyncapi.yml",
    "3.0.0/websocket-gemini-asyncapi.yml",
    "3.1.0/oneof-asyncapi.yml",
]


@pytest.fixture(autouse=True)
def no_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    """Both formatters work on the rendered sources, never on a cached result."""
    monkeypatch.setenv("ASYNCAPI_PYGEN_CACHE", "off")


def first_difference(ours: dict[str, str], theirs: dict[str, str]) -> str | None:
    """'file:line: ruff: ... / black: ...' for the first line the two disagree on."""
    for path in sorted(ours):
        if ours[path] == theirs[path]:
            continue
        a, b = ours[path].splitlines(keepends=True), theirs[path].splitlines(keepends=True)
        for tag, i1, _, j1, _ in difflib.SequenceMatcher(None, a, b).get_opcodes():
            if tag != "equal":
                ruff_line = a[i1] if i1 < len(a) else "<end>"
                black_line = b[j1] if j1 < len(b) else "<end>"
                return f"{path}:{i1 + 1}: ruff: {ruff_line!r} / black: {black_line!r}"
    return None


def same_bytes(spec: Path) -> None:
    access = Access(roots=(CORPUS,))  # corpus documents share files beside their folders
    ours = build(spec, access=access).files
    theirs = build(spec, access=access, formatter="black").files
    assert sorted(ours) == sorted(theirs)
    assert first_difference(ours, theirs) is None, first_difference(ours, theirs)
    models = next(path for path in ours if path.endswith("/models.py"))
    whole = fmt.format_python(ours[models], models)  # it was formatted in pieces
    assert whole == ours[models], first_difference({models: whole}, {models: ours[models]})


@pytest.mark.parametrize("spec", [EXAMPLE_SPEC, KITCHEN_SINK], ids=["example", "kitchen-sink"])
def test_ruff_and_black_give_the_golden_records_the_same_bytes(spec: Path) -> None:
    same_bytes(spec)


@pytest.mark.parametrize("path", CORPUS_SAMPLE)
def test_ruff_and_black_give_corpus_projects_the_same_bytes(path: str) -> None:
    if not (CORPUS / path).is_file():
        pytest.skip(f"no AsyncAPI corpus at {CORPUS} (set ASYNCAPI_PYGEN_CORPUS)")
    same_bytes(CORPUS / path)


def test_a_difference_is_named_by_file_and_line() -> None:
    ours = {"a.py": "x = 1\n", "pkg/b.py": "y = 1\nz = 'q'\n"}
    theirs = {"a.py": "x = 1\n", "pkg/b.py": 'y = 1\nz = "q"\n'}
    assert first_difference(ours, theirs) == (
        "pkg/b.py:2: ruff: \"z = 'q'\\n\" / black: 'z = \"q\"\\n'"
    )


SOURCE = "def f( a ):\n  return {'k':a}\n"


@pytest.mark.parametrize("formatter", ["ruff", "black"])
def test_each_formatter_formats_and_compiles(formatter: str) -> None:
    assert fmt.format_python(SOURCE, "m.py", formatter) == 'def f(a):\n    return {"k": a}\n'
    with pytest.raises(Failed) as refused:
        fmt.format_python("def f(:\n", "pkg/bad.py", formatter)
    assert "pkg/bad.py" in refused.value.diagnostics[0].render()
    with pytest.raises(Failed) as uncompiled:
        fmt.format_python("def f(a, a):\n    pass\n", "pkg/dup.py", formatter)
    assert "generated pkg/dup.py does not compile" in uncompiled.value.diagnostics[0].message


def test_the_cli_formats_with_black_on_request(tmp_path: Path) -> None:
    ruff_out, black_out = tmp_path / "ruff", tmp_path / "black"
    assert cli("generate", str(EXAMPLE_SPEC), "--output", str(ruff_out)).returncode == 0
    chosen = cli("generate", str(EXAMPLE_SPEC), "-o", str(black_out), "--formatter", "black")
    assert chosen.returncode == 0, chosen.stderr
    files = sorted(p.relative_to(ruff_out) for p in ruff_out.rglob("*.py"))
    assert files and all((black_out / f).read_bytes() == (ruff_out / f).read_bytes() for f in files)


def test_a_rerun_formats_only_what_changed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Formatted files are cached by content: the second batch sends ruff the changed file."""
    monkeypatch.setenv("ASYNCAPI_PYGEN_CACHE", str(tmp_path))
    sent: list[list[str]] = []
    real = fmt._ruff
    monkeypatch.setattr(fmt, "_ruff", lambda sources: sent.append(sorted(sources)) or real(sources))
    files = {"a.py": SOURCE, "b.py": "x=1\n", "README.md": "x=1\n"}
    first = fmt.format_files(files)
    again = fmt.format_files({**files, "b.py": "x=2\n"})
    assert sent == [["a.py", "b.py"], ["b.py"]]
    assert again == {**first, "b.py": "x = 2\n"} and first["README.md"] == "x=1\n"


def test_a_missing_ruff_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import ruff

    def missing() -> str:
        raise FileNotFoundError("ruff")

    monkeypatch.setattr(ruff, "find_ruff_bin", missing)
    result = cli("generate", str(EXAMPLE_SPEC), "--output", str(tmp_path / "out"))
    assert result.returncode == 1
    assert "ruff is not installed: reinstall asyncapi-pygen, or use --formatter black" in (
        result.stderr
    )
    assert "Traceback" not in result.stderr
