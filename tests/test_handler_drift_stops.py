"""A handler the document no longer fits stops the service (issue 21.2): rename `{deviceId}` to
`{deviceSerial}` in the example's status address, regenerate as a user does, then
`python -m <package>` and `check-config` exit 3 before connecting, one line per handler naming
its file and the `handle` it needs; no traceback."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import EXAMPLE, EXAMPLE_PACKAGE, Broker, run_cli

NEEDS = (
    f"{EXAMPLE_PACKAGE}/handlers/device_status.py: handle() does not fit: missing a required "
    "argument: 'device_id'; channel devices/{deviceSerial}/status needs "
    "`async def handle(message: StatusPayload, ctx: Context, *, device_serial: str) -> None`"
)


@pytest.fixture(scope="module")
def drifted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    project = tmp_path_factory.mktemp("drift") / "project"
    shutil.copytree(
        EXAMPLE, project, ignore=shutil.ignore_patterns("*.db", ".mypy_cache", "__pycache__")
    )
    spec = project / "asyncapi.yaml"
    text = spec.read_text(encoding="utf-8")
    head, status, tail = text.partition("    address: devices/{deviceId}/status\n")
    assert status and "      deviceId:\n" in tail
    renamed = tail.replace("      deviceId:\n", "      deviceSerial:\n", 1)
    spec.write_text(head + "    address: devices/{deviceSerial}/status\n" + renamed, "utf-8")
    generated = run_cli("generate", str(spec), "--output", str(project))
    assert generated.returncode == 0, generated.stderr  # a warning, not an error
    return project


@pytest.mark.parametrize(
    "command", [[], ["run"], ["check-config"]], ids=["default", "run", "check"]
)
def test_a_drifted_handler_stops_the_service_with_one_line(
    drifted: Path, broker: Broker, command: list[str]
) -> None:
    settings = {"MQTT_HOST": "127.0.0.1", "MQTT_PORT": str(broker.port)}
    done = subprocess.run(
        [sys.executable, "-m", EXAMPLE_PACKAGE, *command],
        cwd=drifted,
        env={"PATH": "/usr/bin:/bin", **settings},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 3, done.stderr
    assert done.stderr.strip().splitlines() == [NEEDS], done.stderr
    assert "Traceback" not in done.stderr


def test_the_example_as_generated_fits() -> None:
    from tests.support import import_modules

    routes, routing = import_modules(
        EXAMPLE, f"{EXAMPLE_PACKAGE}.routes", f"{EXAMPLE_PACKAGE}._runtime.routing"
    )
    assert routing.misfits(routes.ROUTES) == []
