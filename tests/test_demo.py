"""The README's first command after setup, `scripts/demo.sh`, runs to the end and tells the truth:
a fleet of 20 devices sends 200 readings, taken in the last seconds, and 200 rows are stored."""

from __future__ import annotations

import re
import subprocess
from datetime import UTC, datetime, timedelta

import pytest

from tests.support import REPO

pytestmark = pytest.mark.broker


def test_demo_runs_end_to_end() -> None:
    if not (REPO / ".venv" / "bin" / "python").exists():
        pytest.skip("scripts/demo.sh uses .venv, which scripts/setup.sh creates")
    started = datetime.now(UTC).replace(microsecond=0)
    result = subprocess.run(
        ["bash", "scripts/demo.sh"], cwd=REPO, capture_output=True, text=True, timeout=180
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "(service exited with status 0)" in result.stdout
    assert "devices/pump-3/commands" in result.stdout and "alerts/critical" in result.stdout
    assert "MQTT_CLEAN_SESSION is on" not in result.stdout  # the document keeps a session
    fleet = re.search(
        r"the fleet: 200 row\(s\) from 20 device\(s\), taken from (\S+ \S+) to (\S+ \S+) \(UTC\)",
        result.stdout,
    )
    assert fleet, result.stdout[-3000:]
    first, last = (datetime.fromisoformat(t).replace(tzinfo=UTC) for t in fleet.groups())
    assert started - timedelta(seconds=60) <= first < last <= datetime.now(UTC)
    assert last - first == timedelta(seconds=9)  # ten readings a second apart per device
