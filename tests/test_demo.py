"""The README's first command after setup, `scripts/demo.sh`, runs to the end."""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.support import REPO

pytestmark = pytest.mark.broker


def test_demo_runs_end_to_end() -> None:
    if not (REPO / ".venv" / "bin" / "python").exists():
        pytest.skip("scripts/demo.sh uses .venv, which scripts/setup.sh creates")
    result = subprocess.run(
        ["bash", "scripts/demo.sh"], cwd=REPO, capture_output=True, text=True, timeout=180
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "(service exited with status 0)" in result.stdout
    summary = next(line for line in result.stdout.splitlines() if line.startswith('{"sent"'))
    assert json.loads(summary)["failed"] == 0
    assert "devices/pump-3/commands" in result.stdout and "alerts/critical" in result.stdout
