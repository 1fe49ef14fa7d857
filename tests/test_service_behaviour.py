"""A generated 2.x project with test handlers: exact topic matching (a parameter inside a level),
bad input of every kind, a raising handler, concurrency across topics and order within one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support import REPO, Broker, Subscriber, generated_project, service

SPEC = REPO / "tests" / "specs" / "robust-2.6.yaml"
PACKAGE = "robust_test"

USER_HANDLER = """
import gc
import logging
from robust_test.context import Context
from robust_test.models import UserSignedUpPayload

logger = logging.getLogger(__name__)


async def handle(message: UserSignedUpPayload, ctx: Context, *, user_id: str) -> None:
    if message.note == "boom":
        raise RuntimeError("the handler blew up")
    logger.info("signup user=%s n=%s frozen=%d", user_id, message.n, gc.get_freeze_count())
"""

READING_HANDLER = """
import asyncio
import logging
from robust_test.context import Context
from robust_test.models import EchoPayload, ReadingPayload

logger = logging.getLogger(__name__)


async def handle(message: ReadingPayload, ctx: Context, *, sensor_id: str) -> None:
    released = ctx.state.released
    if message.label == "wait":
        try:
            await asyncio.wait_for(released.wait(), timeout=10)
            logger.info("reading %s %s released", sensor_id, message.value)
        except asyncio.TimeoutError:
            logger.info("reading %s %s never released", sensor_id, message.value)
        return
    if message.label == "release":
        released.set()
    if message.label == "echo":
        await ctx.publisher.send_echo(EchoPayload(value=message.value), sensor_id=sensor_id)
    logger.info("reading %s %s done", sensor_id, message.value)
"""

LIFECYCLE = """
import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any


@dataclass
class State:
    released: asyncio.Event


@contextlib.asynccontextmanager
async def lifespan(service: Any) -> AsyncIterator[State]:
    yield State(asyncio.Event())
"""


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("robust")
    return generated_project(
        out,
        SPEC,
        {
            f"{PACKAGE}/handlers/user_user_id_signedup.py": USER_HANDLER,
            f"{PACKAGE}/handlers/sensors_sensor_id_reading.py": READING_HANDLER,
            f"{PACKAGE}/lifecycle.py": LIFECYCLE,
        },
    )


@pytest.fixture
def running(project: Path, broker: Broker):
    proc = service(project, PACKAGE, broker, MAX_CONCURRENT_HANDLERS="4")
    try:
        proc.wait_for(r"connected to .*subscribed to (?=.*user/\+)(?=.*sensors/\+/reading)")
        yield proc
    finally:
        proc.kill()


def test_parameter_inside_a_level_is_matched_exactly(broker: Broker, running) -> None:
    broker.publish("user/alice.signedup", json.dumps({"n": 1}))
    running.wait_for("signup user=alice n=1")
    broker.publish("user/alice.signedupX", json.dumps({"n": 2}))
    running.wait_for(r"dropped message on 'user/alice\.signedupX': no channel has this address")
    broker.publish("user/.signedup", json.dumps({"n": 3}))
    running.wait_for(r"dropped message on 'user/\.signedup'")
    broker.publish("user/bob.signedup", json.dumps({"n": 4}))
    running.wait_for("signup user=bob n=4")


@pytest.mark.parametrize(
    ("label", "topic", "payload", "log"),
    [
        ("not JSON", "user/a.signedup", "{n: 1", "invalid JSON"),
        ("wrong type", "user/a.signedup", json.dumps({"n": "one"}), "invalid payload: n:"),
        ("out of range", "user/a.signedup", json.dumps({"n": -1}), "invalid payload: n:"),
        (
            "missing field",
            "user/a.signedup",
            json.dumps({"note": "x"}),
            "invalid payload: n: Field required",
        ),
        ("unknown topic", "user/nothing-here", json.dumps({"n": 1}), "no channel has this address"),
        (
            "handler raises",
            "user/a.signedup",
            json.dumps({"n": 1, "note": "boom"}),
            "handler for .* failed",
        ),
    ],
)
def test_after_a_bad_message_the_next_is_handled(
    broker, running, label, topic, payload, log
) -> None:
    broker.publish(topic, payload)
    running.wait_for(log)
    broker.publish("user/next.signedup", json.dumps({"n": 7}))
    running.wait_for("signup user=next n=7")
    if label == "handler raises":
        assert running.find_all("RuntimeError: the handler blew up"), "traceback must be logged"


def test_start_up_objects_are_frozen_out_of_the_collectors_way(broker: Broker, running) -> None:
    broker.publish("user/carol.signedup", json.dumps({"n": 5}))
    frozen = int(running.wait_for(r"signup user=carol n=5 frozen=(\d+)").group(1))
    assert frozen > 10_000  # the modules, pydantic's schemas, the models, the lifespan's state


def test_counters_at_shutdown(broker: Broker, running) -> None:
    broker.publish("user/a.signedup", "nope")
    running.wait_for("invalid JSON")
    broker.publish("user/a.signedup", json.dumps({"n": "x"}))
    running.wait_for("invalid payload")
    broker.publish("user/zzz", "{}")
    running.wait_for("no channel has this address")
    broker.publish("user/a.signedup", json.dumps({"n": 1, "note": "boom"}))
    running.wait_for("failed")
    broker.publish("user/a.signedup", json.dumps({"n": 1}))
    running.wait_for("signup user=a n=1")
    assert running.terminate() == 0
    stats = ", ".join(
        f"{name}={count}"
        for name, count in [
            ("received", 5),
            ("handled", 1),
            ("invalid_json", 1),
            ("invalid_payload", 1),
            ("unknown_topic", 1),
            ("invalid_parameter", 0),
            ("too_large", 0),
            ("handler_errors", 1),
        ]
    )
    assert running.find_all(
        f"stopped; 0 received message\\(s\\) left for redelivery; Stats\\({stats}"
    )


def test_slow_topic_does_not_stall_others_and_one_topic_stays_in_order(broker, running) -> None:
    broker.publish("sensors/A/reading", json.dumps({"value": 1, "label": "wait"}))
    broker.publish("sensors/A/reading", json.dumps({"value": 2}))
    broker.publish("sensors/A/reading", json.dumps({"value": 3}))
    broker.publish("sensors/B/reading", json.dumps({"value": 9, "label": "release"}))
    running.wait_for("reading A 3.0 done")
    order = [line.split(": ", 1)[1] for line in running.find_all(r"reading [AB] \d")]
    expected = ["B 9.0 done", "A 1.0 released", "A 2.0 done", "A 3.0 done"]
    assert order == [f"reading {entry}" for entry in expected]


def test_last_will_from_the_server_binding_is_published_when_the_service_dies(
    broker: Broker, running
) -> None:
    wills = Subscriber(broker, "robust/offline")
    running.kill()
    assert wills.message("robust/offline") == ("robust/offline", "robust-test went away")


def test_send_method_builds_the_topic_and_uses_wire_json(broker, running) -> None:
    echoes = Subscriber(broker, "echo/+")
    broker.publish("sensors/s-9/reading", json.dumps({"value": 4.5, "label": "echo"}))
    topic, body = echoes.message(r"echo/[^ ]+")
    assert topic == "echo/s-9"
    assert json.loads(body) == {"value": 4.5}
