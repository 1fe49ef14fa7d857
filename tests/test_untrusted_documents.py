"""Untrusted documents (a pull request in CI, a partner's file): `$ref`s stay inside the
document's own folder tree unless the user names more roots, and no document costs more than
its budget of bytes, nodes (aliases and references expanded) and nesting depth. Each refusal is
a located error, exit 1, without a traceback and without the content of a file it refused."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from generator import refs
from generator.budget import MAX_DEPTH, Limits
from generator.errors import Failed
from generator.pipeline import analyse
from generator.refs import Access
from tests.support import REPO, CliResult, cli, run_cli

SECRET = "TOPSECRET_API_KEY=hunter2"


def limited_cli(*args: str, memory_mib: int = 1024) -> subprocess.CompletedProcess[str]:
    """The CLI as a user runs it, in at most `memory_mib` of address space: an attack that
    the budgets miss fails with MemoryError instead of taking the machine."""

    def limit() -> None:
        size = memory_mib * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (size, size))

    return subprocess.run(
        [sys.executable, "-m", "generator", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=limit,
    )


def api(folder: Path, description: str = "{$ref: '../secret.env'}", extra: str = "") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    spec = folder / "api.yaml"
    spec.write_text(
        "asyncapi: 3.0.0\n"
        "info:\n"
        "  title: Refs\n"
        "  version: '1'\n"
        f"  description: {description}\n"
        "channels:\n"
        "  a:\n"
        "    address: a\n"
        "    messages:\n"
        "      m: {payload: {type: string}}\n"
        "operations:\n"
        "  r: {action: receive, channel: {$ref: '#/channels/a'}}\n" + extra
    )
    return spec


@pytest.fixture
def secret(tmp_path: Path) -> Path:
    path = tmp_path / "secret.env"
    path.write_text(f"{SECRET}\n")
    return path


def assert_refused(result: CliResult, ref: str, target: str, line: int, col: int) -> None:
    stderr = result.stderr
    assert result.returncode == 1, stderr
    assert f"api.yaml:{line}:{col}: $ref {ref!r} points outside the document's folder" in stderr
    assert target in stderr and "--allow-ref-root" in stderr
    assert SECRET not in stderr and "Traceback" not in stderr


def test_a_ref_to_a_parent_folder_is_refused_and_nothing_is_written(
    tmp_path: Path, secret: Path
) -> None:
    spec = api(tmp_path / "doc")
    out = tmp_path / "out"
    result = cli("generate", str(spec), "--output", str(out))
    assert_refused(result, "../secret.env", os.path.relpath(secret), 5, 23)
    assert not out.exists()


def test_absolute_and_file_url_refs_are_refused(tmp_path: Path, secret: Path) -> None:
    for ref in (str(secret), f"file://{secret}"):
        spec = api(tmp_path / "doc", f"{{$ref: '{ref}'}}")
        assert_refused(cli("validate", str(spec)), ref, os.path.relpath(secret), 5, 23)


def test_a_symlink_inside_the_folder_is_judged_by_where_it_leads(
    tmp_path: Path, secret: Path
) -> None:
    spec = api(tmp_path / "doc", "{$ref: 'notes.md'}")
    (tmp_path / "doc" / "notes.md").symlink_to(secret)
    assert_refused(cli("validate", str(spec)), "notes.md", os.path.relpath(secret), 5, 23)


def test_a_file_outside_is_not_even_opened(tmp_path: Path) -> None:
    """A FIFO blocks whoever opens it for reading: the run would never end."""
    os.mkfifo(tmp_path / "pipe.md")
    spec = api(tmp_path / "doc", "{$ref: '../pipe.md'}")
    result = run_cli("validate", str(spec))
    assert result.returncode == 1 and "points outside" in result.stderr


def test_ref_roots_named_by_the_user_are_allowed(tmp_path: Path) -> None:
    for name in ("common", "shared"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "about.md").write_text(f"Prose from {name}.")
    extra = "components:\n  messages:\n    m: {description: {$ref: '../shared/about.md'}}\n"
    spec = api(tmp_path / "doc", "{$ref: '../common/about.md'}", extra)
    refused = cli("validate", str(spec))
    assert refused.returncode == 1 and "points outside" in refused.stderr
    one = cli("validate", str(spec), "--allow-ref-root", str(tmp_path / "common"))
    assert one.returncode == 1 and "'../shared/about.md' points outside" in one.stderr
    roots = [
        "--allow-ref-root",
        str(tmp_path / "common"),
        "--allow-ref-root",
        str(tmp_path / "shared"),
    ]
    allowed = cli("validate", str(spec), *roots)
    assert allowed.returncode == 0, allowed.stderr


def test_refs_inside_the_folder_tree_are_followed(tmp_path: Path) -> None:
    spec = api(tmp_path / "doc", "{$ref: 'docs/about.md'}")
    (tmp_path / "doc" / "docs").mkdir()
    (tmp_path / "doc" / "docs" / "about.md").write_text("Inside.")
    result = cli("validate", str(spec))
    assert result.returncode == 0, result.stderr


ALIAS_BOMB = (
    "asyncapi: 3.0.0\ninfo: {title: Bomb, version: '1'}\nx-lol:\n"
    "  a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
    + "".join(
        f"  {name}: &{name} [{', '.join([f'*{prev}'] * 9)}]\n"
        for prev, name in zip("abcdefgh", "bcdefghi", strict=True)
    )
)


def test_an_alias_bomb_is_refused_at_the_alias(tmp_path: Path) -> None:
    spec = tmp_path / "api.yaml"
    spec.write_text(ALIAS_BOMB)
    result = limited_cli("validate", str(spec))
    assert result.returncode == 1, result.stderr
    # `e` stands for 66,430 nodes: its seventh alias in `f` crosses the budget of 500,000
    assert f"{spec}:9:34: the document has more than 500,000 nodes" in result.stderr
    assert "aliases counted as what they repeat" in result.stderr
    assert "--max-nodes" in result.stderr and "Traceback" not in result.stderr


def small_nodes(count: int) -> str:
    return json.dumps(
        {
            "asyncapi": "3.0.0",
            "info": {"title": "Big", "version": "1", "x-data": [0] * count},
            "channels": {},
        }
    )


def test_the_node_budget_is_located_and_raised_by_a_flag(tmp_path: Path) -> None:
    spec = tmp_path / "api.json"
    spec.write_text(small_nodes(600_000))
    result = limited_cli("validate", str(spec))
    assert result.returncode == 1, result.stderr
    assert f"{spec}:1:" in result.stderr and "more than 500,000 nodes:" in result.stderr
    raised = cli("validate", str(spec), "--max-nodes", "700000")
    assert raised.returncode == 0, raised.stderr


def test_the_budget_counts_every_file_of_the_document(tmp_path: Path) -> None:
    spec = api(tmp_path, "{$ref: 'part.json#/text'}")
    (tmp_path / "part.json").write_text(json.dumps({"text": "t", "filler": [0] * 400}))
    assert cli("validate", str(spec), "--max-nodes", "1000").returncode == 0
    refused = cli("validate", str(spec), "--max-nodes", "400")
    assert refused.returncode == 1
    assert f"{tmp_path / 'part.json'}:1:" in refused.stderr or "part.json:1:" in refused.stderr
    assert "more than 400 nodes" in refused.stderr


def test_a_document_over_the_size_budget_is_refused_before_parsing(tmp_path: Path) -> None:
    spec = api(tmp_path, json.dumps("x" * (11 * 1024 * 1024)))
    result = limited_cli("validate", str(spec), memory_mib=512)
    assert result.returncode == 1, result.stderr
    assert f"{spec}:1:1: the document is larger than 10 MiB" in result.stderr
    assert "--max-size" in result.stderr
    assert cli("validate", str(spec), "--max-size", "12").returncode == 0


def reference_bomb(levels: int, invalid: bool) -> dict[str, object]:
    """Ten references to the next level at every level: 10**levels nodes once followed."""
    schemas: dict[str, object] = {
        f"L{i}": {
            "type": "object",
            "properties": {f"p{j}": {"$ref": f"#/components/schemas/L{i + 1}"} for j in range(10)},
        }
        for i in range(levels)
    }
    schemas[f"L{levels}"] = {"type": "strin" if invalid else "string"}
    return {
        "asyncapi": "3.0.0",
        "info": {"title": "Bomb", "version": "1"},
        "channels": {
            "a": {
                "address": "a",
                "messages": {"m": {"payload": {"$ref": "#/components/schemas/L0"}}},
            }
        },
        "components": {"schemas": schemas},
    }


def test_references_that_expand_beyond_the_budget_are_refused(tmp_path: Path) -> None:
    spec = tmp_path / "api.json"
    spec.write_text(json.dumps(reference_bomb(8, invalid=True), indent=1))
    result = limited_cli("validate", str(spec))
    assert result.returncode == 1, result.stderr
    assert "$ref '#/components/schemas/L" in result.stderr
    assert "more than 500,000 nodes once references are followed" in result.stderr
    assert "Traceback" not in result.stderr


DEEP_PREFIX = '{"asyncapi": "3.0.0", "info": {"title": "Deep", "version": "1", "x-deep": '


def nested_json(depth: int) -> str:
    return DEEP_PREFIX + "[" * depth + "]" * depth + "}}"


@pytest.mark.parametrize("depth", [10_000, 1_000_000])
def test_deep_json_is_a_located_error(tmp_path: Path, depth: int) -> None:
    spec = tmp_path / "api.json"
    spec.write_text(nested_json(depth))
    result = cli("validate", str(spec))
    assert result.returncode == 1
    # libyaml's scanner reads brackets ahead and stops at the 1,001st level (two braces, then
    # the 999th bracket), before the first event
    assert f"{spec}:1:{len(DEEP_PREFIX) + 999}: nested deeper than {MAX_DEPTH} levels" in (
        result.stderr
    )
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr


def test_deep_yaml_is_a_located_error(tmp_path: Path) -> None:
    spec = tmp_path / "api.yaml"
    lines = ["asyncapi: 3.0.0", "info: {title: Deep, version: '1'}", "x-deep:"]
    lines += [f"{'  ' * (level + 1)}k:" for level in range(2 * MAX_DEPTH)]
    spec.write_text("\n".join(lines) + " end\n")
    result = cli("validate", str(spec))
    assert result.returncode == 1
    assert f"{spec}:{MAX_DEPTH + 3}:" in result.stderr  # line 4 is level 2
    assert f"nested deeper than {MAX_DEPTH} levels" in result.stderr


def chain(links: int) -> dict[str, object]:
    """Schemas each holding a property that references the next: shallow files, deep data."""
    schemas: dict[str, object] = {
        f"A{i}": {"type": "object", "properties": {"x": {"$ref": f"#/components/schemas/A{i + 1}"}}}
        for i in range(links)
    }
    schemas[f"A{links}"] = {"type": "string"}
    return {
        "asyncapi": "3.0.0",
        "info": {"title": "Chain", "version": "1"},
        "channels": {
            "a": {
                "address": "a",
                "messages": {"m": {"payload": {"$ref": "#/components/schemas/A0"}}},
            }
        },
        "operations": {"r": {"action": "receive", "channel": {"$ref": "#/channels/a"}}},
        "components": {"schemas": schemas},
    }


def test_depth_reached_through_references_is_a_located_error(tmp_path: Path) -> None:
    spec = tmp_path / "api.json"
    spec.write_text(json.dumps(chain(1000), indent=1))
    result = cli("validate", str(spec))
    assert result.returncode == 1
    assert f"nested deeper than {MAX_DEPTH} levels once references are followed" in result.stderr
    assert "$ref '#/components/schemas/A" in result.stderr and "Traceback" not in result.stderr


def test_a_chain_of_references_to_references_is_a_located_error(tmp_path: Path) -> None:
    """No nesting at all: each schema is only a reference to the next."""
    document = chain(0)
    schemas = document["components"]["schemas"]  # type: ignore[index]
    schemas.update({f"A{i}": {"$ref": f"#/components/schemas/A{i + 1}"} for i in range(1000)})
    schemas["A1000"] = {"type": "string"}
    spec = tmp_path / "api.json"
    spec.write_text(json.dumps(document, indent=1))
    result = cli("validate", str(spec))
    assert result.returncode == 1
    assert f"nested deeper than {MAX_DEPTH} levels once references are followed" in result.stderr
    assert "internal error" not in result.stderr


def test_a_document_at_the_depth_limit_generates(tmp_path: Path) -> None:
    """Every stage after the loader (schema validation in Python, models, formatting) copes
    with the deepest document the limit lets through, even an invalid one."""
    links = (MAX_DEPTH - 6) // 2  # A{i} is a mapping at depth 6 + 2 i
    document = chain(links)
    spec = tmp_path / "api.json"
    spec.write_text(json.dumps(document, indent=1))
    result = cli("generate", str(spec), "--output", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    schemas = document["components"]["schemas"]  # type: ignore[index]
    schemas[f"A{links}"] = {"type": "strin"}
    spec.write_text(json.dumps(document, indent=1))
    invalid = cli("validate", str(spec))
    assert invalid.returncode == 1 and "'strin' is not one of" in invalid.stderr
    assert "internal error" not in invalid.stderr


def test_the_defaults_admit_a_thousand_channels(tmp_path: Path) -> None:
    sys.path.insert(0, str(REPO / "bench"))
    try:
        from synthetic import document
    finally:
        sys.path.remove(str(REPO / "bench"))
    spec = tmp_path / "api.json"
    spec.write_text(json.dumps(document(1000)))
    result = cli("validate", str(spec))
    assert result.returncode == 0, result.stderr


def test_a_run_allowed_more_than_the_defaults_is_never_replayed_without_them(
    tmp_path: Path,
) -> None:
    """Nothing-changed runs are answered from the cache: one that needed a flag must not answer
    for a run without it."""
    (tmp_path / "common").mkdir()
    (tmp_path / "common" / "about.md").write_text("Shared prose.")
    spec = api(tmp_path / "doc", "{$ref: '../common/about.md'}")
    out = tmp_path / "out"
    root = ["--allow-ref-root", str(tmp_path / "common")]
    for flags in (root, [*root, "--max-nodes", "1000000"]):
        assert cli("generate", str(spec), "--output", str(out), *flags).returncode == 0
        again = cli("generate", str(spec), "--output", str(out))
        assert again.returncode == 1 and "points outside" in again.stderr


def test_a_file_that_failed_is_not_read_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each of a hundred references to a file over the budget would read and measure it
    again: every stage resolves references."""
    (tmp_path / "big.json").write_text(json.dumps({"filler": [0] * 2000}))
    schemas = "".join(f"    S{i}: {{$ref: 'big.json#/filler'}}\n" for i in range(100))
    spec = api(tmp_path, "plain", "components:\n  schemas:\n" + schemas)
    reads: list[Path] = []
    real_load = refs.load

    def counted(path: Path, *args: Any) -> Any:
        reads.append(path)
        return real_load(path, *args)

    monkeypatch.setattr(refs, "load", counted)
    with pytest.raises(Failed) as caught:
        analyse(spec, access=Access(limits=Limits(max_nodes=1000)))
    assert "more than 1,000 nodes" in str(caught.value)
    assert [path.name for path in reads] == ["api.yaml", "big.json"]
