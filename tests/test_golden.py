"""The golden record: examples/mqtt holds the project generated from its spec.

Regenerate it with `asyncapi-pygen generate examples/mqtt/asyncapi.yaml --output examples/mqtt`
(user-zone files, the hand-written handlers, are never overwritten), then review the diff.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from generator.manifest import MANIFEST_NAME
from generator.pipeline import build
from tests.support import EXAMPLE, EXAMPLE_PACKAGE, EXAMPLE_SPEC, REPO, run_cli, write_files

HINT = "regenerate: asyncapi-pygen generate examples/mqtt/asyncapi.yaml --output examples/mqtt"


@pytest.fixture(scope="module")
def fresh():
    return build(EXAMPLE_SPEC, output=EXAMPLE)


def test_generated_zone_matches_byte_for_byte(fresh) -> None:
    for relative, content in sorted(fresh.files.items()):
        if relative in fresh.user_files:
            continue
        on_disk = (EXAMPLE / relative).read_text(encoding="utf-8")
        assert on_disk == content, f"{relative} is stale; {HINT}"


def test_user_zone_exists_and_holds_hand_written_logic(fresh) -> None:
    for relative in fresh.user_files:
        assert (EXAMPLE / relative).is_file(), relative
    telemetry = (EXAMPLE / EXAMPLE_PACKAGE / "handlers" / "device_telemetry.py").read_text()
    assert "send_critical_alert" in telemetry


def test_no_stale_generated_files(fresh) -> None:
    # the example's own tests and storage layer: hand-written, never in the manifest
    hand_written = {
        "tests/test_example_handlers.py",
        "tests/test_storage.py",
        "iot_device_management_service/storage.py",
        "iot_device_management_service/tables.py",
    }
    expected = set(fresh.files) | {"asyncapi.yaml", MANIFEST_NAME} | hand_written
    tracked = subprocess.run(
        ["git", "ls-files", "examples/mqtt"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split()
    extra = {Path(p).relative_to("examples/mqtt").as_posix() for p in tracked} - expected
    assert not extra, f"files no longer generated: {sorted(extra)}"


def test_check_says_the_example_is_up_to_date_manifest_included() -> None:
    result = run_cli(
        "generate", "examples/mqtt/asyncapi.yaml", "--output", "examples/mqtt", "--check"
    )
    assert result.returncode == 0, result.stderr
    assert "up to date" in result.stdout


def test_same_input_same_bytes(tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    for out in (first, second):
        assert run_cli("generate", str(EXAMPLE_SPEC), "--output", str(out)).returncode == 0
    files = sorted(p.relative_to(first) for p in first.rglob("*") if p.is_file())
    assert files
    for relative in files:
        assert (first / relative).read_bytes() == (second / relative).read_bytes(), relative


def test_regenerating_keeps_hand_edits(tmp_path: Path) -> None:
    out = tmp_path / "example"
    assert run_cli("generate", str(EXAMPLE_SPEC), "--output", str(out)).returncode == 0
    handler = out / EXAMPLE_PACKAGE / "handlers" / "device_status.py"
    edited = handler.read_text() + "\n# my own edit\n"
    handler.write_text(edited)
    assert run_cli("generate", str(EXAMPLE_SPEC), "--output", str(out)).returncode == 0
    assert handler.read_text() == edited


@pytest.mark.parametrize(
    "command",
    [
        [sys.executable, "-m", "mypy", "--strict", EXAMPLE_PACKAGE, "tests"],
        [sys.executable, "-m", "ruff", "check", "."],
        [sys.executable, "-m", "black", "--check", "."],
    ],
    ids=["mypy", "ruff", "black"],
)
def test_example_project_passes(command: list[str]) -> None:
    result = subprocess.run(command, cwd=EXAMPLE, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_cache_off_and_on_give_the_same_bytes(tmp_path: Path) -> None:
    outputs = []
    for name, cache in (
        ("off", "off"),
        ("cold", str(tmp_path / "c")),
        ("warm", str(tmp_path / "c")),
    ):
        out = tmp_path / name
        env = {**os.environ, "ASYNCAPI_PYGEN_CACHE": cache}
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "generator",
                "generate",
                str(EXAMPLE_SPEC),
                "--output",
                str(out),
            ],
            cwd=REPO,
            capture_output=True,
            text=True,
            env=env,
        )
        assert result.returncode == 0, result.stderr
        outputs.append({p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()})
    assert outputs[0] == outputs[1] == outputs[2]
    assert any((tmp_path / "c").rglob("*")), "the cache was used"


# A second golden record: one kitchen-sink document that takes every template branch (headers,
# request/reply, a discriminated multi-message channel, `address: null`, traits, names the project
# uses itself, nullable and free-form payloads, TLS and a last will), checked in whole, user-zone
# stubs included, so that any change to generated code shows up as a reviewable diff.
# Update it with `UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/test_golden.py`.
SINK = REPO / "tests" / "golden" / "kitchen-sink"
SINK_PROJECT = SINK / "project"


def test_kitchen_sink_matches_byte_for_byte() -> None:
    files = build(SINK / "asyncapi.yaml").files
    if os.environ.get("UPDATE_GOLDEN"):
        shutil.rmtree(SINK_PROJECT, ignore_errors=True)
        write_files(files, SINK_PROJECT)
    on_disk = {
        p.relative_to(SINK_PROJECT).as_posix(): p.read_text(encoding="utf-8")
        for p in SINK_PROJECT.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and ".mypy_cache" not in p.parts
    }
    hint = "update: UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/test_golden.py"
    assert sorted(on_disk) == sorted(files), hint
    for relative, content in files.items():
        assert on_disk[relative] == content, f"{relative} differs; {hint}"


def test_kitchen_sink_passes_mypy_strict_and_ruff() -> None:
    for command in (
        [sys.executable, "-m", "mypy", "--strict", "--cache-dir", "/dev/null", "kitchen_sink"],
        [sys.executable, "-m", "ruff", "check", "--no-cache", "."],
    ):
        result = subprocess.run(command, cwd=SINK_PROJECT, capture_output=True, text=True)
        assert result.returncode == 0, result.stdout + result.stderr
