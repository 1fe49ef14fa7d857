from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import Phase, settings

from tests.support import Broker, running_broker

# CI runs 100 examples of each property (each one generates, formats and imports a whole project);
# HYPOTHESIS_PROFILE=long runs 300, HYPOTHESIS_PROFILE=dev skips shrinking to find failures fast.
settings.register_profile("default", max_examples=100)
settings.register_profile("long", max_examples=300)
settings.register_profile("dev", max_examples=300, phases=[Phase.explicit, Phase.generate])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """The corpus tally, printed whenever the corpus tests ran."""
    test_corpus = sys.modules.get("tests.test_corpus")
    if test_corpus is not None and any(test_corpus.TALLY.values()):
        counts = ", ".join(f"{count} {what}" for what, count in test_corpus.TALLY.items())
        terminalreporter.write_line(
            f"AsyncAPI corpus ({len(test_corpus.ROOTS)} documents): {counts}"
        )


BROKER_FIXTURES = {"broker", "target", "aedes", "rabbitmq"}  # tests/matrix.py's brokers too


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test that starts a broker is marked `broker`, so `-m "not broker"` runs without one."""
    for item in items:
        if BROKER_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.broker)


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    """A fresh mosquitto on a free loopback port, stopped after the test."""
    with running_broker(tmp_path) as instance:
        yield instance
