"""The generator's own code meets the bar it sets for generated code."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.support import REPO


@pytest.mark.parametrize(
    "command",
    [
        ["ruff", "check", "generator", "tests", "bench"],
        ["black", "--check", "--quiet", "generator", "tests", "bench"],
        ["mypy", "--strict", "generator"],
    ],
    ids=["ruff", "black", "mypy"],
)
def test_generator_code(command: list[str]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", *command], cwd=REPO, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
