"""Models generated from the IoT example: the seed's payloads validate, bad ones are rejected,
wire names survive a round trip, and the 2.6.0 version of the API yields the same models."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from pydantic import ValidationError

from generator.pipeline import build
from tests.support import EXAMPLE_SPEC, REPO, import_modules, write_files
from tests.test_example_service import SEED_STATUS, SEED_TELEMETRY

SPEC_26 = REPO / "tests" / "specs" / "iot-2.6.0.yaml"


def load_models(spec: Path, package: str, root: Path) -> ModuleType:
    """Generate `spec` into `root` and import its models under a fresh package name."""
    write_files(build(spec, package).files, root)
    (models,) = import_modules(root, f"{package}.models")
    return models


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    yield load_models(EXAMPLE_SPEC, "iot_models_v3", tmp_path_factory.mktemp("v3"))


def test_seed_samples_validate(models: ModuleType) -> None:
    telemetry = models.TelemetryPayload.model_validate_json(SEED_TELEMETRY)
    assert telemetry.device_id == "sensor001"
    assert telemetry.sensors.temperature == 23.5
    assert telemetry.location.latitude == 37.7749
    assert telemetry.timestamp.tzinfo is not None
    status = models.StatusPayload.model_validate_json(SEED_STATUS)
    assert status.status is models.StatusPayloadStatus.ONLINE
    assert status.health.uptime == 86400


def telemetry_with(**sensors: Any) -> dict[str, Any]:
    data = json.loads(SEED_TELEMETRY)
    data["sensors"].update(sensors)
    return data


@pytest.mark.parametrize(
    ("case", "data"),
    [
        ("wrong type", telemetry_with(temperature="hot")),
        ("temperature above maximum", telemetry_with(temperature=150.5)),
        ("temperature below minimum", telemetry_with(temperature=-60)),
        (
            "missing required field",
            {k: v for k, v in json.loads(SEED_TELEMETRY).items() if k != "deviceId"},
        ),
        ("naive timestamp", json.loads(SEED_TELEMETRY) | {"timestamp": "2024-01-15T10:30:00"}),
        ("device id pattern", json.loads(SEED_TELEMETRY) | {"deviceId": "bad id/with slash"}),
        ("unknown sensor (additionalProperties: false)", telemetry_with(radiation=1.0)),
    ],
)
def test_bad_telemetry_is_rejected(models: ModuleType, case: str, data: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        models.TelemetryPayload.model_validate(data)


def test_bad_enum_value_is_rejected(models: ModuleType) -> None:
    data = {
        "commandId": "3f2b8c1e-9a4d-4e6f-8b7a-1c2d3e4f5a6b",
        "deviceId": "d1",
        "command": "explode",
        "createdAt": "2024-01-15T10:31:00Z",
    }
    with pytest.raises(ValidationError, match="command"):
        models.CommandPayload.model_validate(data)


def test_enum_default_is_a_member_and_uuid_is_typed(models: ModuleType) -> None:
    command = models.CommandPayload.model_validate(
        {
            "commandId": "3f2b8c1e-9a4d-4e6f-8b7a-1c2d3e4f5a6b",
            "deviceId": "d1",
            "command": "reboot",
            "createdAt": "2024-01-15T10:31:00Z",
        }
    )
    assert command.priority is models.Priority.NORMAL
    assert str(command.command_id) == "3f2b8c1e-9a4d-4e6f-8b7a-1c2d3e4f5a6b"
    with pytest.raises(ValidationError):
        models.CommandPayload.model_validate({**command.model_dump(), "commandId": "not-a-uuid"})


def test_model_dump_json_round_trips_wire_names(models: ModuleType) -> None:
    original = json.loads(SEED_STATUS)
    status = models.StatusPayload.model_validate(original)
    dumped = json.loads(status.model_dump_json(exclude_none=True))
    assert dumped == original
    assert "lastSeen" in status.model_dump_json() and "last_seen" not in status.model_dump_json()
    by_field = models.StatusPayload(
        device_id="d", status="online", last_seen="2024-01-15T10:30:00Z"
    )
    assert json.loads(by_field.model_dump_json(exclude_none=True))["deviceId"] == "d"


def test_names_are_meaningful_and_stable(models: ModuleType) -> None:
    names = {name for name in dir(models) if name[:1].isupper()}
    expected = {
        "TelemetryPayload",
        "TelemetryPayloadSensors",
        "TelemetryPayloadLocation",
        "TelemetryPayloadMetadata",
        "CommandPayload",
        "CommandType",
        "Priority",
        "StatusPayload",
        "StatusPayloadHealth",
        "StatusPayloadErrorsItem",
        "CriticalAlertPayload",
        "HeartbeatPayload",
        "HeartbeatPayloadMetrics",
    }
    assert expected <= names
    assert not [n for n in names if "Anonymous" in n or n[-1].isdigit()]


def test_descriptions_become_docstrings(models: ModuleType) -> None:
    assert models.TelemetryPayloadSensors.__doc__.strip().startswith("Sensor readings")


def test_examples_in_the_spec_validate(models: ModuleType) -> None:
    from generator.pipeline import analyse

    api, _ = analyse(EXAMPLE_SPEC)
    checked = 0
    for channel in api.channels:
        for message in channel.messages:
            for example in message.examples:
                getattr(models, message.class_name).model_validate(example)
                checked += 1
    assert checked == 5


def test_the_26_version_of_the_api_gives_the_same_models(
    tmp_path: Path, models: ModuleType
) -> None:
    v26 = load_models(SPEC_26, "iot_models_v26", tmp_path)
    for name in (
        "TelemetryPayload",
        "CommandPayload",
        "StatusPayload",
        "CriticalAlertPayload",
        "HeartbeatPayload",
        "TelemetryPayloadSensors",
        "StatusPayloadHealth",
    ):
        assert (
            getattr(v26, name).model_json_schema() == getattr(models, name).model_json_schema()
        ), name
    v26.TelemetryPayload.model_validate_json(SEED_TELEMETRY)
