"""Python names from spec names: valid, deterministic, never keywords, builtins or import names."""

from __future__ import annotations

import keyword

import pytest

from generator.model import Address
from generator.names import pascal, snake, unique


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("deviceTelemetry", "device_telemetry"),
        ("devices/{deviceId}/telemetry", "devices_device_id_telemetry"),
        ("IoT Device Management Service", "iot_device_management_service"),
        ("HTTPServer", "http_server"),
        ("class", "class_"),
        ("type", "type_"),
        ("message", "message_"),
        ("123go", "value_123go"),
        ("", "value"),
    ],
)
def test_snake(text: str, expected: str) -> None:
    assert snake(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("telemetry data", "TelemetryData"),
        ("Field", "FieldModel"),
        ("ConnectionError", "ConnectionErrorModel"),
        ("None", "NoneModel"),
        ("1st", "Model1st"),
    ],
)
def test_pascal(text: str, expected: str) -> None:
    assert pascal(text) == expected


def test_every_name_is_an_identifier() -> None:
    for text in ["a-b", "ü", "x.y", "$ref", "🙂", "def", "None", "__init__"]:
        for name in (snake(text), pascal(text)):
            assert name.isidentifier() and not keyword.iskeyword(name), (text, name)


def test_unique_is_predictable() -> None:
    taken: set[str] = set()
    assert [unique("a", taken) for _ in range(3)] == ["a", "a2", "a3"]


def test_address_filter_and_params() -> None:
    address = Address.parse("user/{id}.signedup/{kind}")
    assert address.mqtt_filter == "user/+/+"
    assert address.param_names == ["id", "kind"]
