"""The daily loop as a user meets it (issue 21): the project we hand over (tool targets, the
simulator as an extra, the container's health probe) and running beside other instances
(`check-config` next to a running service)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

from generator.pipeline import build
from tests.support import (
    EXAMPLE,
    EXAMPLE_PACKAGE,
    EXAMPLE_SPEC,
    Broker,
    assert_type_checks,
    free_port,
    run_cli,
    service,
)
from tests.test_example_service import telemetry
from tests.test_operate import get, samples


@pytest.fixture(scope="module")
def pyproject() -> dict:
    return tomllib.loads(build(EXAMPLE_SPEC).files["pyproject.toml"])


def test_generated_tools_target_the_python_the_project_requires(pyproject: dict) -> None:
    assert pyproject["project"]["requires-python"] == ">=3.11"
    assert pyproject["tool"]["ruff"]["target-version"] == "py311"
    assert pyproject["tool"]["black"]["target-version"] == ["py311"]
    assert pyproject["tool"]["mypy"]["python_version"] == "3.11"


def test_the_simulator_is_an_extra_the_service_does_not_need(pyproject: dict) -> None:
    names = [re.split(r"[<>=\[ ]", dep)[0] for dep in pyproject["project"]["dependencies"]]
    assert "polyfactory" not in names and "faker" not in names
    extras = pyproject["project"]["optional-dependencies"]
    assert any(dep.startswith("polyfactory") for dep in extras["simulate"])
    assert any(dep.startswith("polyfactory") for dep in extras["dev"])  # the generated tests


def without_the_simulator(root: Path) -> str:
    """A folder for PYTHONPATH where polyfactory and faker fail to import as if absent."""
    for name in ("polyfactory", "faker"):
        package = root / name
        package.mkdir(parents=True)
        message = f"No module named {name!r}"
        (package / "__init__.py").write_text(
            f"raise ModuleNotFoundError({message!r}, name={name!r})\n"
        )
    return str(root)


def healthcheck() -> list[str]:
    """The command the example's Dockerfile gives HEALTHCHECK (exec form)."""
    text = (EXAMPLE / "Dockerfile").read_text(encoding="utf-8")
    [line] = [line for line in text.splitlines() if line.startswith("HEALTHCHECK")]
    command = json.loads(line.split(" CMD ", 1)[1])
    assert command[0] == "python"
    return [sys.executable, *command[1:]]


def probe(port: int) -> int:
    env = {"PATH": "/usr/bin:/bin", "SERVER_PORT": str(port)}
    return subprocess.run(healthcheck(), env=env, capture_output=True, timeout=30).returncode


def test_service_runs_without_the_simulator_and_the_probe_follows_server_port(
    broker: Broker, tmp_path: Path
) -> None:
    blocker = without_the_simulator(tmp_path / "blocked")
    port = free_port()  # not 8080: the probe must ask the port the service listens on
    settings = {"PYTHONPATH": blocker, "SERVER_PORT": str(port), "LOG_LEVEL": "DEBUG"}
    proc = service(EXAMPLE, EXAMPLE_PACKAGE, broker, SERVER_HOST="127.0.0.1", **settings)
    try:
        proc.wait_for("connected to mqtt://")
        broker.publish("devices/x1/telemetry", telemetry("x1", 21.0), 1)
        proc.wait_for("telemetry from x1")
        assert probe(port) == 0
        simulated = subprocess.run(
            [sys.executable, "-m", EXAMPLE_PACKAGE, "simulate", "--count", "1"],
            cwd=EXAMPLE,
            env={"PATH": "/usr/bin:/bin", "PYTHONPATH": blocker, "MQTT_PORT": str(broker.port)},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert simulated.returncode == 2
        assert "simulate needs the simulator extra (polyfactory is not installed)" in (
            simulated.stderr
        )
        assert "pip install 'iot-device-management-service[simulate]'" in simulated.stderr
        assert "Traceback" not in simulated.stderr
    finally:
        proc.terminate()
    assert probe(port) != 0


def test_check_config_beside_a_running_service_leaves_it_connected(broker: Broker) -> None:
    port = free_port()
    client_id = f"daily-{free_port()}"
    settings = {"MQTT_CLIENT_ID": client_id, "LOG_LEVEL": "DEBUG"}
    proc = service(
        EXAMPLE, EXAMPLE_PACKAGE, broker, SERVER_PORT=str(port), SERVER_HOST="127.0.0.1", **settings
    )
    try:
        proc.wait_for("connected to mqtt://")
        for _ in range(2):
            checked = subprocess.run(
                [sys.executable, "-m", EXAMPLE_PACKAGE, "check-config"],
                cwd=EXAMPLE,
                env={"PATH": "/usr/bin:/bin", "MQTT_PORT": str(broker.port), **settings},
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert checked.returncode == 0, checked.stderr
        broker.publish("devices/c1/telemetry", telemetry("c1", 20.0), 1)
        proc.wait_for("telemetry from c1")
        found = samples(get(port, "/metrics")[1])
        assert found[("mqtt_reconnects_total", ())] == 0
        assert found[("mqtt_connected", ())] == 1
    finally:
        proc.terminate()
    assert not proc.find_all("reconnect|closed it|disconnected"), proc.lines


SENSORS = {
    "asyncapi": "3.0.0",
    "info": {"title": "Daily Sensors", "version": "1.0.0"},
    "servers": {
        "production": {
            "host": "broker.example.com:8883",
            "protocol": "mqtts",
            "security": [
                {"$ref": "#/components/securitySchemes/login"},
                {"$ref": "#/components/securitySchemes/token"},
            ],
        }
    },
    "channels": {
        "reading": {
            "address": "sensors/{region}/{sensorId}/reading",
            "parameters": {"region": {"enum": ["eu", "us"]}, "sensorId": {}},
            "messages": {
                "reading": {
                    "payload": {
                        "type": "object",
                        "required": ["value", "unit"],
                        "properties": {
                            "value": {"type": "number", "minimum": -50, "maximum": 150},
                            "unit": {"type": "string", "enum": ["C", "F"]},
                        },
                    }
                }
            },
        },
        "command": {
            "address": "commands/{region}",
            "parameters": {"region": {"enum": ["eu", "us"], "default": "eu"}},
            "messages": {
                "command": {
                    "payload": {
                        "type": "object",
                        "required": ["action"],
                        "properties": {"action": {"type": "string"}},
                    }
                }
            },
        },
    },
    "operations": {
        "receiveReading": {
            "action": "receive",
            "channel": {"$ref": "#/channels/reading"},
            "bindings": {"mqtt": {"qos": 1}},
        },
        "sendCommand": {"action": "send", "channel": {"$ref": "#/channels/command"}},
    },
    "components": {
        "securitySchemes": {
            "login": {"type": "userPassword"},
            "token": {
                "type": "oauth2",
                "flows": {
                    "clientCredentials": {
                        "tokenUrl": "https://auth.example.com/token",
                        "availableScopes": {},
                    }
                },
            },
        }
    },
}
# 2.x: a parameter restricted by a pattern only (no example topic can be guessed), no examples,
# security requirements by scheme name.
GAUGES = {
    "asyncapi": "2.6.0",
    "info": {"title": "Daily Gauges", "version": "1.0.0"},
    "servers": {
        "plant": {
            "url": "mqtt://plant.example.com:1883",
            "protocol": "mqtt",
            "security": [{"cert": []}, {"key": []}],
        }
    },
    "channels": {
        "gauges/{serial}": {
            "parameters": {"serial": {"schema": {"type": "string", "pattern": "^[a-z]{3}[0-9]+$"}}},
            "publish": {
                "operationId": "onGauge",
                "message": {
                    "payload": {
                        "type": "object",
                        "required": ["bar"],
                        "properties": {"bar": {"type": "number", "exclusiveMinimum": 0}},
                    }
                },
            },
        }
    },
    "components": {
        "securitySchemes": {
            "cert": {"type": "X509"},
            "key": {"type": "httpApiKey", "name": "X-Key", "in": "header"},
        }
    },
}


def generate(tmp_path: Path, document: dict, name: str) -> tuple[Path, subprocess.CompletedProcess]:
    spec = tmp_path / f"{name}.yaml"
    spec.write_text(yaml.safe_dump(document, sort_keys=False))
    out = tmp_path / name
    result = run_cli("generate", str(spec), "--output", str(out))
    assert result.returncode == 0, result.stderr
    return out, result


@pytest.fixture(scope="module")
def sensors(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    out, result = generate(tmp_path_factory.mktemp("sensors"), SENSORS, "sensors")
    return out, result.stderr


def test_a_topic_whose_parameter_breaks_its_enum_is_invalid_not_unknown(
    broker: Broker, sensors: tuple[Path, str]
) -> None:
    project, _ = sensors
    port = free_port()
    settings = {"SERVER_PORT": str(port), "SERVER_HOST": "127.0.0.1", "MQTT_TLS": "false"}
    proc = service(project, "daily_sensors", broker, **settings)
    try:
        proc.wait_for("connected to mqtt://")
        broker.publish("sensors/mars/s1/reading", '{"value": 20, "unit": "C"}', 1)
        proc.wait_for(
            r"rejected message on 'sensors/mars/s1/reading': parameter 'region' of "
            r"'sensors/\{region\}/\{sensorId\}/reading': 'mars' is not one of \['eu', 'us'\]"
        )
        broker.publish("sensors/eu/s1/reading", '{"value": 20, "unit": "C"}', 1)
        proc.wait_for("sensors/eu/s1/reading: ReadingPayload")
        found = samples(get(port, "/metrics")[1])
        reading = (("channel", "reading"),)
        assert found[("messages_received_total", reading)] == 2
        assert found[("messages_handled_total", reading)] == 1
        invalid = (("channel", "reading"), ("reason", "invalid_parameter"))
        assert found[("messages_rejected_total", invalid)] == 1
        unknown = (("channel", "(unknown)"), ("reason", "unknown_topic"))
        assert found.get(("messages_rejected_total", unknown), 0) == 0
    finally:
        proc.terminate()
    assert not proc.find_all("no channel has this address")


def test_enum_parameters_are_literals_that_mypy_holds_to(sensors: tuple[Path, str]) -> None:
    project, _ = sensors
    handler = (project / "daily_sensors" / "handlers" / "reading.py").read_text()
    assert "region: Region, sensor_id: str" in handler
    assert 'Region = Literal["eu", "us"]' in (project / "daily_sensors" / "topics.py").read_text()
    script = project / "daily_sensors" / "send_one.py"
    template = (
        "from daily_sensors.models import CommandPayload\n"
        "from daily_sensors.publisher import Publisher\n\n\n"
        "async def send(publisher: Publisher) -> None:\n"
        '    await publisher.send_command(CommandPayload(action="reboot"), region={value!r})\n'
    )
    try:
        script.write_text(template.format(value="us"))
        assert_type_checks(project, "daily_sensors")
        script.write_text(template.format(value="mars"))
        result = subprocess.run(
            [sys.executable, "-m", "mypy", "--strict", "daily_sensors"],
            cwd=project,
            capture_output=True,
            text=True,
        )
        assert result.returncode == 1, result.stdout
        assert (
            'Argument "region" to "send_command" of "Publisher" has incompatible type '
            "\"Literal['mars']\"; expected \"Literal['eu', 'us']\"" in result.stdout
        )
    finally:
        script.unlink()


def run_project_tests(project: Path) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "skipped" not in result.stdout
    return result.stdout


def test_generated_tests_simulate_what_a_document_without_examples_lacks(
    sensors: tuple[Path, str], tmp_path: Path
) -> None:
    project, _ = sensors
    assert "2 passed" in run_project_tests(project)
    gauges, _ = generate(tmp_path, GAUGES, "gauges")  # no example topic: a pattern, no enum
    test = (gauges / "tests" / "test_gauges_serial.py").read_text()
    assert "TOPIC = SIMULATED.topic" in test and "skip" not in test
    assert "2 passed" in run_project_tests(gauges)


def test_security_schemes_the_runtime_cannot_present_are_warned_about(
    sensors: tuple[Path, str], tmp_path: Path
) -> None:
    project, warnings = sensors
    assert (
        "sensors.yaml:11:7: warning: server 'production' asks for 'oauth2' security (scheme "
        "'token'), which the generated service cannot present" in warnings
    )
    assert "userPassword" not in warnings
    readme = (project / "README.md").read_text()
    assert "`userPassword` (set MQTT_USERNAME and MQTT_PASSWORD)" in readme
    gauges, result = generate(tmp_path, GAUGES, "gauges")
    assert "server 'plant' asks for 'httpApiKey' security (scheme 'key')" in result.stderr
    assert "X509" not in result.stderr
    readme = (gauges / "README.md").read_text()
    assert "`X509` (set MQTT_TLS, MQTT_CERT_FILE and MQTT_KEY_FILE)" in readme
    assert "MQTT_TLS=true" in (gauges / ".env.example").read_text()  # a client certificate


PATTERN_TEST = """
import asyncio

from daily_gauges.testing import harness


def test_a_level_that_breaks_the_pattern_is_an_invalid_parameter() -> None:
    async def scenario() -> None:
        async with harness() as h:
            bad = await h.publish("gauges/XY-1", {"bar": 2.5})
            assert bad.rejected == "invalid_parameter", bad
            good = await h.publish("gauges/abc1", {"bar": 2.5})
            assert good.handled, good
            assert h.stats.invalid_parameter == 1 and h.stats.unknown_topic == 0

    asyncio.run(scenario())
"""


def test_a_topic_breaking_a_parameter_pattern_is_invalid_in_the_harness(tmp_path: Path) -> None:
    gauges, _ = generate(tmp_path, GAUGES, "gauges")
    (gauges / "tests" / "test_pattern.py").write_text(PATTERN_TEST)
    assert "3 passed" in run_project_tests(gauges)
