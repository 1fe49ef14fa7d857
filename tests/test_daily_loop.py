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

from generator.pipeline import build
from tests.support import EXAMPLE, EXAMPLE_PACKAGE, EXAMPLE_SPEC, Broker, free_port, service
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
