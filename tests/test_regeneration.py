"""The user's loop, each step through the CLI: edit handlers, change the spec, regenerate."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import yaml

from generator.manifest import MANIFEST_NAME
from generator.pipeline import build
from tests.support import EXAMPLE_PACKAGE, EXAMPLE_SPEC, Broker, cli, service

PKG = EXAMPLE_PACKAGE
MARK = "    logger.info('MY EDIT saw %s', device_id)\n"


def generate(spec: Path, out: Path, *flags: str):
    return cli("generate", str(spec), "--output", str(out), *flags)


def snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    return {
        p.relative_to(folder).as_posix(): (p.read_bytes(), p.stat().st_mtime_ns)
        for p in sorted(folder.rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts
    }


@pytest.fixture
def project(tmp_path: Path) -> tuple[Path, Path]:
    spec = tmp_path / "asyncapi.yaml"
    shutil.copy(EXAMPLE_SPEC, spec)
    out = tmp_path / "service"
    result = generate(spec, out)
    assert result.returncode == 0, result.stderr
    return spec, out


def edit_spec(spec: Path, change) -> None:
    data = yaml.safe_load(spec.read_text())
    change(data)
    spec.write_text(yaml.safe_dump(data, sort_keys=False))


def add_events_channel(data: dict) -> None:
    data["channels"]["deviceEvents"] = {
        "address": "devices/{deviceId}/events",
        "parameters": {"deviceId": {"$ref": "#/components/parameters/deviceId"}},
        "messages": {
            "deviceEvent": {
                "name": "DeviceEvent",
                "payload": {
                    "type": "object",
                    "required": ["kind"],
                    "properties": {"kind": {"type": "string"}},
                },
            }
        },
    }
    data["operations"]["receiveEvents"] = {
        "action": "receive",
        "channel": {"$ref": "#/channels/deviceEvents"},
        "messages": [{"$ref": "#/channels/deviceEvents/messages/deviceEvent"}],
    }
    sensors = data["components"]["schemas"]["TelemetryPayload"]["properties"]["sensors"]
    sensors["properties"]["signalStrength"] = {"type": "integer", "minimum": -120, "maximum": 0}


def test_edit_add_channel_and_field_then_run(project, broker: Broker) -> None:
    spec, out = project
    status = out / PKG / "handlers" / "device_status.py"
    edited = status.read_text().replace('    logger.info("%s: %r", ctx.topic, message)\n', MARK)
    assert edited != status.read_text()
    status.write_text(edited)
    edit_spec(spec, add_events_channel)
    result = generate(spec, out)
    assert result.returncode == 0, result.stderr
    # created: the new channel's handler and its test; the user's files are all kept
    assert "2 created, 5 updated" in result.stdout and "10 kept (user)" in result.stdout
    assert status.read_text() == edited
    assert (out / PKG / "handlers" / "device_events.py").is_file()
    assert "device_events.handle(" in (out / PKG / "routes.py").read_text()
    assert "signal_strength" in (out / PKG / "models.py").read_text()
    proc = service(out, PKG, broker)
    try:
        proc.wait_for("subscribed to devices/\\+/telemetry, devices/\\+/status, devices/\\+/events")
        broker.publish(
            "devices/d1/status",
            json.dumps({"deviceId": "d1", "status": "online", "lastSeen": "2024-01-15T10:30:00Z"}),
        )
        proc.wait_for("MY EDIT saw d1")
        broker.publish("devices/d1/events", json.dumps({"kind": "door-open"}))
        proc.wait_for(r"devices/d1/events: DeviceEventPayload\(kind='door-open'\)")
        broker.publish(
            "devices/d1/telemetry",
            json.dumps(
                {
                    "deviceId": "d1",
                    "timestamp": "2024-01-15T10:30:00Z",
                    "sensors": {"signalStrength": -200},
                }
            ),
        )
        proc.wait_for(
            "rejected message on 'devices/d1/telemetry': invalid payload: sensors.signalStrength"
        )
    finally:
        proc.kill()


def test_renamed_parameter_is_reported_with_file_and_line(project) -> None:
    spec, out = project

    def rename(data: dict) -> None:
        channel = data["channels"]["deviceTelemetry"]
        channel["address"] = "devices/{devId}/telemetry"
        channel["parameters"] = {"devId": {"description": "renamed"}}

    edit_spec(spec, rename)
    result = generate(spec, out)
    assert result.returncode == 0
    handler = out / PKG / "handlers" / "device_telemetry.py"
    line = next(
        i
        for i, text in enumerate(handler.read_text().splitlines(), 1)
        if "async def handle" in text
    )
    assert (
        f"{handler}:{line}:1: warning: handle() parameters (device_id) no longer match"
        in result.stderr
    )
    assert "passes: dev_id" in result.stderr
    strict = generate(spec, out, "--strict")
    assert strict.returncode == 1
    assert "--strict" in strict.stderr


def test_removed_channel_keeps_the_handler_and_reports_it_orphaned(project) -> None:
    spec, out = project
    handler = out / PKG / "handlers" / "device_status.py"
    before = handler.read_text()

    def remove(data: dict) -> None:
        del data["channels"]["deviceStatus"]
        del data["operations"]["receiveStatus"]

    edit_spec(spec, remove)
    result = generate(spec, out)
    assert result.returncode == 0, result.stderr
    assert handler.read_text() == before
    assert (
        f"{handler}:" in result.stderr
        and "orphaned: channel devices/{deviceId}/status" in result.stderr
    )
    assert "2 orphaned" in result.stdout
    assert "device_status" not in (out / PKG / "routes.py").read_text()
    again = generate(spec, out)
    assert "orphaned" in again.stderr, "an orphan is reported until its file is deleted"


def generated_in_package(spec: Path, package: str) -> int:
    """How many generated (not user) files the project has inside its package folder."""
    built = build(spec, package)
    return sum(1 for p in built.files if p.startswith(f"{package}/") and p not in built.user_files)


def test_files_no_longer_generated_are_deleted_user_files_kept(project) -> None:
    spec, out = project
    stale = generated_in_package(spec, PKG)
    result = generate(spec, out, "--package", "renamed_service")
    assert result.returncode == 0, result.stderr
    assert not (out / PKG / "_runtime" / "client.py").exists()
    assert not (out / PKG / "models.py").exists()
    assert (out / PKG / "handlers" / "device_telemetry.py").is_file()
    assert (out / PKG / "lifecycle.py").is_file()
    assert not (out / PKG / "handlers" / "__init__.py").exists()
    assert f"{stale} deleted" in result.stdout and "4 orphaned" in result.stdout
    assert (out / "renamed_service" / "_runtime" / "client.py").is_file()


def test_hand_edited_generated_file_is_refused_then_forced_with_backup(project) -> None:
    spec, out = project
    topics = out / PKG / "topics.py"
    edited = topics.read_text() + "\n# a quick hack\n"
    topics.write_text(edited)
    refused = generate(spec, out)
    assert refused.returncode == 1
    assert f"{topics}:1:1: generated file was edited by hand" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert topics.read_text() == edited
    forced = generate(spec, out, "--force")
    assert forced.returncode == 0, forced.stderr
    assert "0 created, 1 updated," in forced.stdout  # the rewritten file is counted
    assert (out / PKG / "topics.py.bak").read_text() == edited
    assert "# a quick hack" not in topics.read_text()
    assert "saved as topics.py.bak" in forced.stderr


def test_check_writes_nothing_and_fails_only_on_changes(project) -> None:
    spec, out = project
    clean = generate(spec, out, "--check")
    assert clean.returncode == 0 and "up to date" in clean.stdout
    before = snapshot(out)
    edit_spec(spec, add_events_channel)
    changed = generate(spec, out, "--check")
    assert changed.returncode == 1
    assert f"would create {out / PKG / 'handlers' / 'device_events.py'}" in changed.stderr
    assert f"would update {out / PKG / 'routes.py'}" in changed.stderr
    diff = generate(spec, out, "--diff")
    assert diff.returncode == 1
    assert "+++ b/iot_device_management_service/routes.py" in diff.stdout
    assert "+    signal_strength:" in diff.stdout
    assert snapshot(out) == before


def test_unchanged_spec_touches_nothing(project) -> None:
    spec, out = project
    before = snapshot(out)
    again = generate(spec, out)
    assert again.returncode == 0
    built = build(spec)
    generated = len(set(built.files) - built.user_files)
    kept = len(built.user_files)
    summary = (
        f"0 created, 0 updated, {generated} unchanged, 0 deleted, {kept} kept (user), 0 orphaned"
    )
    assert summary in again.stdout
    assert snapshot(out) == before


@pytest.mark.parametrize(
    "damage",
    [
        "{not json",
        json.dumps({"format": 99}),
        json.dumps(
            {"format": 1, "files": {"../../etc/passwd": {"zone": "generated", "sha256": "0" * 64}}}
        ),
    ],
    ids=["not-json", "unknown-format", "path-outside"],
)
def test_damaged_manifest_is_a_clear_error_and_nothing_is_touched(project, damage: str) -> None:
    spec, out = project
    (out / MANIFEST_NAME).write_text(damage)
    before = snapshot(out)
    result = generate(spec, out)
    assert result.returncode == 1
    assert f"{out / MANIFEST_NAME}:1:1: the manifest is unusable" in result.stderr
    assert "Traceback" not in result.stderr
    assert snapshot(out) == before


def test_stale_manifest_never_costs_a_user_file(project) -> None:
    spec, out = project
    manifest = json.loads((out / MANIFEST_NAME).read_text())
    handler = f"{PKG}/handlers/device_status.py"
    manifest["files"][handler]["zone"] = "generated"  # as if from a confused older run
    (out / MANIFEST_NAME).write_text(json.dumps(manifest))
    (out / handler).write_text((out / handler).read_text() + "# mine\n")
    edit_spec(
        spec, lambda d: (d["channels"].pop("deviceStatus"), d["operations"].pop("receiveStatus"))
    )
    result = generate(spec, out)
    assert result.returncode == 0, result.stderr
    assert (out / handler).read_text().endswith("# mine\n")


def test_unmanaged_folder_is_refused_without_force(tmp_path: Path) -> None:
    out = tmp_path / "existing"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    refused = generate(EXAMPLE_SPEC, out)
    assert refused.returncode == 1 and "has no .asyncapi-pygen.json" in refused.stderr
    assert sorted(os.listdir(out)) == ["notes.txt"]
    assert generate(EXAMPLE_SPEC, out, "--force").returncode == 0
    assert (out / "notes.txt").read_text() == "mine"


def test_output_that_cannot_be_a_folder_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "taken"
    blocker.write_text("a file, not a folder")
    result = generate(EXAMPLE_SPEC, blocker / "service")
    assert result.returncode == 1
    assert "cannot write the project" in result.stderr and "Traceback" not in result.stderr
    assert blocker.read_text() == "a file, not a folder"


def test_check_reports_handler_drift_and_strict_fails_on_it(project) -> None:
    spec, out = project
    handler = out / PKG / "handlers" / "device_status.py"
    handler.write_text(handler.read_text().replace("device_id: str", "serial: str"))
    checked = generate(spec, out, "--check")
    assert checked.returncode == 0, checked.stderr
    assert "no longer match channel devices/{deviceId}/status" in checked.stderr
    assert "up to date but 1 handler problem(s)" in checked.stdout
    strict = generate(spec, out, "--check", "--strict")
    assert strict.returncode == 1
    assert "--strict: exit 1" in strict.stderr


def test_the_user_owns_pyproject_and_missing_dependencies_are_reported(tmp_path: Path) -> None:
    out = tmp_path / "owned"
    assert generate(EXAMPLE_SPEC, out).returncode == 0
    pyproject = out / "pyproject.toml"
    edited = pyproject.read_text().replace(
        "dependencies = [\n", 'dependencies = [\n    "asyncpg>=0.29",\n'
    )
    pyproject.write_text(edited)
    again = generate(EXAMPLE_SPEC, out)
    assert again.returncode == 0, again.stderr
    assert pyproject.read_text() == edited, "the user's pyproject.toml must survive"
    assert "dependency" not in again.stderr
    broken = edited.replace('    "mqtt5>=0.8,<0.9",\n', "").replace(
        '"pydantic>=2.11,<3"', '"pydantic<2"'
    )
    pyproject.write_text(broken)
    checked = generate(EXAMPLE_SPEC, out, "--strict")
    assert "pyproject.toml:" in checked.stderr
    assert "dependency mqtt5<0.9,>=0.8 is missing" in checked.stderr
    assert "dependency pydantic<2 does not allow pydantic<3,>=2.11" in checked.stderr
    assert checked.returncode == 1
    assert (out / ".gitignore").read_text().startswith("# Created by asyncapi-pygen")
    assert ".env\n" in (out / ".gitignore").read_text()


def test_a_lifecycle_without_state_is_reported_and_strict_fails(project) -> None:
    """A lifecycle.py written for a generator before the typed state has no `State`, which the
    service now imports: regenerating says so, with the file, instead of an ImportError later."""
    spec, out = project
    lifecycle = out / PKG / "lifecycle.py"
    lifecycle.write_text(
        "import contextlib\n\n\n@contextlib.asynccontextmanager\n"
        "async def lifespan(service):\n    yield\n"
    )
    result = generate(spec, out)
    assert result.returncode == 0
    assert f"{lifecycle}:1:1: warning: defines no State: the service imports them" in result.stderr
    assert generate(spec, out, "--strict").returncode == 1
    lifecycle.write_text(
        "from dataclasses import dataclass\n\n\n@dataclass\nclass State:\n    n: int\n"
    )
    assert "defines no lifespan" in generate(spec, out).stderr


def test_a_deleted_user_file_comes_back_formatted_while_the_rest_are_kept(project) -> None:
    """A re-run does not format the user files it keeps; one the user deleted is written
    again, formatted as in a first run."""
    spec, out = project
    handler, edited = out / PKG / "handlers" / "device_status.py", out / PKG / "lifecycle.py"
    first = handler.read_text()
    handler.unlink()
    edited.write_text(edited.read_text() + "# mine\n")
    edit_spec(spec, add_events_channel)  # not replayed: a full run
    result = generate(spec, out)
    assert result.returncode == 0, result.stderr
    assert handler.read_text() == first
    assert edited.read_text().endswith("# mine\n")
    assert "1 created" not in result.stdout and "3 created" in result.stdout  # + events' two


def test_a_handler_sending_through_ctx_itself_is_reported_with_the_line(project) -> None:
    """Handlers written when the context was the publisher call `ctx.send_command(...)`; the
    context now carries the publisher, so regenerating names the line instead of an
    AttributeError at run time."""
    spec, out = project
    handler = out / PKG / "handlers" / "device_status.py"
    source = handler.read_text()
    old = source.replace(
        "    logger.info(",
        "    await ctx.send_command(None, device_id=device_id)\n    logger.info(",
        1,
    )
    assert old != source
    handler.write_text(old)
    line = next(i for i, t in enumerate(old.splitlines(), 1) if "ctx.send_command" in t)
    result = generate(spec, out)
    assert result.returncode == 0
    assert (
        f"{handler}:{line}:1: warning: ctx.send_command: the handler context has no "
        "'send_command'; send methods are on ctx.publisher" in result.stderr
    )
    assert generate(spec, out, "--strict").returncode == 1
    handler.write_text(old.replace("ctx.send_command", "ctx.publisher.send_command"))
    assert "the handler context has no" not in generate(spec, out).stderr
