from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import Broker


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    """A fresh mosquitto on a free loopback port, stopped after the test."""
    instance = Broker(tmp_path)
    instance.start()
    try:
        yield instance
    finally:
        if instance.process is not None:
            instance.process.kill()
            instance.process.wait(10)
