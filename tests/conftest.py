from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import Phase, settings

from tests.matrix import TARGETS, Mosquitto, RabbitMq, running_aedes, running_rabbitmq
from tests.support import Broker, running_broker

# CI runs 100 examples of each property (each one generates, formats and imports a whole project);
# HYPOTHESIS_PROFILE=long runs 300, HYPOTHESIS_PROFILE=dev skips shrinking to find failures fast.
settings.register_profile("default", max_examples=100)
settings.register_profile("long", max_examples=300)
settings.register_profile("dev", max_examples=300, phases=[Phase.explicit, Phase.generate])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


WORKER_TALLIES: list[tuple[int, dict[str, int]]] = []  # (documents, tally) from xdist workers


def _corpus_tally() -> tuple[int, dict[str, int]] | None:
    test_corpus = sys.modules.get("tests.test_corpus")
    if test_corpus is None or not any(test_corpus.TALLY.values()):
        return None
    return len(test_corpus.ROOTS), dict(test_corpus.TALLY)


def pytest_sessionfinish(session: pytest.Session) -> None:
    """On an xdist worker: hand the corpus tally to the controller, which prints it."""
    tally = _corpus_tally()
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None and tally is not None:
        workeroutput["corpus_tally"] = tally


@pytest.hookimpl(optionalhook=True)  # an xdist hook: controller side
def pytest_testnodedown(node: object, error: object) -> None:
    tally = getattr(node, "workeroutput", {}).get("corpus_tally")
    if tally is not None:
        WORKER_TALLIES.append(tally)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """The corpus tally, printed whenever the corpus tests ran (on any worker)."""
    tallies = [*WORKER_TALLIES, *filter(None, [_corpus_tally()])]
    if not tallies:
        return
    total = {what: sum(tally.get(what, 0) for _, tally in tallies) for what in tallies[0][1]}
    counts = ", ".join(f"{count} {what}" for what, count in total.items())
    terminalreporter.write_line(f"AsyncAPI corpus ({tallies[0][0]} documents): {counts}")


BROKER_FIXTURES = {"broker", "target", "aedes", "rabbitmq"}  # tests/matrix.py's brokers too


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test that starts a broker is marked `broker`, so `-m "not broker"` runs without one."""
    for item in items:
        if BROKER_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.broker)


@pytest.fixture(scope="session")
def rabbitmq() -> Iterator[RabbitMq]:
    """One RabbitMQ per test session (per xdist worker): it takes 10-20 s to start. Tests that
    use it are in the `rabbitmq` xdist group, so one worker starts it."""
    with running_rabbitmq() as instance:
        yield instance


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    """A fresh mosquitto on a free loopback port, stopped after the test."""
    with running_broker(tmp_path) as instance:
        yield instance


@pytest.fixture(params=TARGETS)
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Any, str]]:
    """(broker, MQTT version) for each cell of the broker matrix (`tests/matrix.py`)."""
    name, protocol = request.param.split("-", 1)
    if name == "rabbitmq":
        yield request.getfixturevalue("rabbitmq"), protocol
    elif name == "aedes":
        with running_aedes(tmp_path) as aedes:
            yield aedes, protocol
    else:
        broker = Mosquitto(tmp_path)
        broker.start()
        try:
            yield broker, protocol
        finally:
            broker.kill()
