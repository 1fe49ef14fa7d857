"""What a newcomer's trial of the README found: handler stubs say how to send, and the small
things the CLI and the generated project showed wrongly."""

from __future__ import annotations

import ast
import inspect
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from generator.pipeline import build
from tests.support import (
    EXAMPLE,
    EXAMPLE_PACKAGE,
    EXAMPLE_SPEC,
    REPO,
    import_modules,
    run_cli,
    write_files,
)

GOLDEN_PROJECT = REPO / "tests" / "golden" / "kitchen-sink" / "project"

HINT = "    # To send, the typed methods of ctx.publisher (publisher.py):"


def send_hints(handler: str) -> list[str]:
    lines = handler.splitlines()
    start = lines.index(HINT) + 1
    hints = []
    for line in lines[start:]:
        if not line.startswith("    #     "):
            break
        hints.append(line.removeprefix("    #     "))
    return hints


def test_a_handler_stub_lists_the_send_methods_as_real_calls(tmp_path: Path) -> None:
    files = build(EXAMPLE_SPEC).files
    write_files(files, tmp_path)
    [publisher] = import_modules(tmp_path, f"{EXAMPLE_PACKAGE}.publisher")
    hints = send_hints(files[f"{EXAMPLE_PACKAGE}/handlers/device_status.py"])
    methods = {
        name
        for name, f in vars(publisher.Publisher).items()
        if inspect.iscoroutinefunction(f) and not name.startswith("_")
    }
    assert len(hints) == len(methods) == 3
    for hint in hints:
        call = ast.parse(hint.removeprefix("await "), mode="eval").body
        assert isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute)
        assert ast.unparse(call.func.value) == "ctx.publisher"
        method = getattr(publisher.Publisher, call.func.attr)
        signature = inspect.signature(method)
        required = {
            name
            for name, p in signature.parameters.items()
            if p.kind is p.KEYWORD_ONLY and p.default is p.empty
        }
        assert {k.arg for k in call.keywords} == required, hint
        payload = ast.unparse(call.args[0]).removesuffix("(...)")
        assert payload == str(signature.parameters["payload"].annotation), hint


def many_senders(count: int) -> dict[str, Any]:
    channels: dict[str, Any] = {"in": {"address": "in", "messages": {"m": {"payload": {}}}}}
    operations: dict[str, Any] = {
        "onIn": {"action": "receive", "channel": {"$ref": "#/channels/in"}}
    }
    for index in range(count):
        channels[f"out{index}"] = {"address": f"out/{index}", "messages": {"m": {"payload": {}}}}
        operations[f"send{index}"] = {
            "action": "send",
            "channel": {"$ref": f"#/channels/out{index}"},
        }
    return {
        "asyncapi": "3.0.0",
        "info": {"title": "Many", "version": "1"},
        "channels": channels,
        "operations": operations,
    }


def test_a_handler_stub_lists_a_few_send_methods_then_says_how_many_more(
    tmp_path: Path,
) -> None:
    spec = tmp_path / "many.yaml"
    spec.write_text(yaml.safe_dump(many_senders(7)), encoding="utf-8")
    hints = send_hints(build(spec).files["many/handlers/in_.py"])
    assert [re.sub(r"\(.*", "", h) for h in hints[:4]] == [
        f"await ctx.publisher.send{index}" for index in range(4)
    ]
    assert hints[4:] == ["... and 3 more in publisher.py"]


def test_a_service_that_sends_nothing_has_no_send_comment(tmp_path: Path) -> None:
    spec = tmp_path / "none.yaml"
    spec.write_text(yaml.safe_dump(many_senders(0)), encoding="utf-8")
    assert HINT not in build(spec).files["many/handlers/in_.py"]


def settings_rows(readme: str) -> dict[str, list[str]]:
    """The generated README's settings table: variable -> its default cell's parts."""
    lines = readme.splitlines()
    start = lines.index("| Variable | Default | Meaning |") + 2
    rows = {}
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        variable, default, _ = (cell.strip() for cell in line.strip("|").split(" | ", 2))
        rows[variable] = [part.strip() for part in default.split(" / ")]
    return rows


def test_the_settings_table_shows_an_empty_default_as_none() -> None:
    rows = settings_rows(build(EXAMPLE_SPEC).files["README.md"])
    assert rows["`MQTT_WILL_TOPIC`"] == ["(none)"]
    assert rows["`MQTT_WILL_PAYLOAD`"] == ["(none)"]
    assert rows["`MQTT_WILL_QOS`"] == ["`0`"]
    assert rows["`MQTT_WILL_RETAIN`"] == ["`false`"]
    assert rows["`MQTT_HOST`"] == ["`localhost`"]
    for variable, parts in rows.items():
        for part in parts:
            assert part == "(none)" or re.fullmatch(r"`[^`]+`", part), (variable, part)


def installed_cli(*args: str) -> subprocess.CompletedProcess[str]:
    """The `asyncapi-pygen` command the README's setup installs beside this interpreter."""
    command = Path(sys.executable).parent / "asyncapi-pygen"
    return subprocess.run([str(command), *args], capture_output=True, text=True, timeout=60)


def test_generate_help_shows_the_required_output_in_its_usage() -> None:
    result = installed_cli("generate", "--help")
    assert result.returncode == 0, result.stderr
    usage = next(line.strip() for line in result.stdout.splitlines() if "Usage:" in line)
    assert usage == "Usage: asyncapi-pygen generate --output DIR [OPTIONS] SPEC"
    missing = installed_cli("generate", str(EXAMPLE_SPEC))
    assert missing.returncode == 2
    assert "Usage: asyncapi-pygen generate --output DIR [OPTIONS] SPEC" in missing.stderr
    assert "Missing option '--output'" in missing.stderr


@pytest.mark.parametrize("given", [".", "project"])
def test_a_non_empty_output_folder_is_named_without_a_fake_position(
    tmp_path: Path, given: str
) -> None:
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine", encoding="utf-8")
    cwd = folder if given == "." else tmp_path
    result = run_cli("generate", str(EXAMPLE_SPEC), "--output", given, cwd=cwd)
    assert result.returncode == 1
    first = result.stderr.splitlines()[0]
    shown = str(folder.resolve()) if given == "." else given
    assert first.startswith(
        f"{shown}: the output folder is not empty and has no .asyncapi-pygen.json: "
    ), result.stderr
    assert not re.match(r"[^ ]*:\d+:\d+:", first)
    assert "Traceback" not in result.stderr
    assert sorted(p.name for p in folder.iterdir()) == ["notes.txt"]


@pytest.mark.parametrize("project", [GOLDEN_PROJECT, EXAMPLE], ids=["kitchen-sink", "example"])
def test_generated_imports_are_grouped_and_sorted_as_isort_has_them(project: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--select", "I", "--no-cache", "."],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout
