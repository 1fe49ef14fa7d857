"""3.x request/reply end to end against a real broker: the service answers requests (its handler
returns the reply, the correlation id is copied) and awaits replies to its own requests."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support import (
    REPO,
    Broker,
    Subscriber,
    assert_type_checks,
    generated_project,
    service,
)

SPEC = REPO / "tests" / "specs" / "ping-pong-3.0.yaml"
PACKAGE = "ping_pong"

HANDLER = """
from ping_pong.context import Context
from ping_pong.models import PingPayload, PongPayload


async def handle(message: PingPayload, ctx: Context, *, node: str) -> PongPayload | None:
    if message.text == "ignore":
        return None
    return PongPayload(text=f"pong from {node}: {message.text}")
"""

LIFECYCLE = """
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from ping_pong.models import PingPayload
from ping_pong.publisher import RequestTimeout

logger = logging.getLogger("asker")


async def ask(service: Any) -> None:
    reply = await service.publisher.ask_ping_and_wait(PingPayload(text="hello"), node="n1")
    logger.info("asked and got %r with id %s", reply.text, reply.id)
    try:
        ignored = PingPayload(text="ignore")
        await service.publisher.ask_ping_and_wait(ignored, node="n2", timeout=0.5)
    except RequestTimeout as exc:
        logger.info("timed out as expected: %s", exc)


class State:
    pass


@contextlib.asynccontextmanager
async def lifespan(service: Any) -> AsyncIterator[State]:
    service.start_background(ask(service), name="ask")
    yield State()
"""


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("pingpong")
    return generated_project(
        out, SPEC, {f"{PACKAGE}/handlers/ping.py": HANDLER, f"{PACKAGE}/lifecycle.py": LIFECYCLE}
    )


def test_the_service_answers_and_awaits_replies(project: Path, broker: Broker) -> None:
    pongs = Subscriber(broker, "pong/+", count=3)
    proc = service(project, PACKAGE, broker)
    try:
        proc.wait_for(r"asked and got 'pong from n1: hello' with id [0-9a-f-]{36}")
        proc.wait_for(r"timed out as expected: no reply on 'pong/n2' within 0.5 s")
        _, body = pongs.message("pong/n1")
        assert json.loads(body)["text"] == "pong from n1: hello"
        broker.publish("ping/outside", json.dumps({"id": "req-42", "text": "hi"}))
        _, body = pongs.message("pong/outside")
        assert json.loads(body) == {"id": "req-42", "text": "pong from outside: hi"}
        broker.publish("pong/stray", json.dumps({"id": "nobody", "text": "x"}))
        proc.wait_for("reply on pong/stray answers no waiting request: dropped")
    finally:
        proc.kill()


def test_mqtt5_response_topic_and_correlation_data(project: Path, broker: Broker) -> None:
    """The native MQTT 5 properties: the service's requests carry them, and a request that
    carries them is answered on its Response Topic with its Correlation Data."""
    native = ("-V", "mqttv5", "-F", "%t|%R|%D|%C|%p")
    pings = Subscriber(broker, "ping/n1", extra=native)
    answers = Subscriber(broker, "elsewhere/answers", extra=native)
    proc = service(project, PACKAGE, broker)
    try:
        _, response, correlation, content_type, body = pings.wait_for(
            r"^(ping/n1)\|(.*)\|(.*)\|(.*)\|(\{.*\})$"
        ).groups()
        assert response == "pong/n1" and content_type == "application/json"
        assert correlation == json.loads(body)["id"]
        properties = ("-D", "publish", "response-topic", "elsewhere/answers")
        properties += ("-D", "publish", "correlation-data", "opaque-77")
        broker.publish("ping/x", json.dumps({"text": "native"}), 1, "-V", "mqttv5", *properties)
        found = answers.wait_for(r"^elsewhere/answers\|\|(opaque-77)\|.*\|(\{.*\})$")
        assert json.loads(found.group(2))["text"] == "pong from x: native"
    finally:
        proc.kill()
        pings.kill()
        answers.kill()


def test_request_reply_project_type_checks(project: Path) -> None:
    assert_type_checks(project, PACKAGE)


JOBS_SPEC = REPO / "tests" / "specs" / "jobs-headers-3.0.yaml"

JOB_HANDLER = """
from job_runner.context import Context
from job_runner.models import JobPayload, ResultPayload


async def handle(message: JobPayload, ctx: Context) -> ResultPayload | None:
    return ResultPayload(output=f"done: {message.task}")
"""

JOB_LIFECYCLE = """
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from job_runner.models import JobPayload

logger = logging.getLogger("submitter")


async def submit(service: Any) -> None:
    result = await service.publisher.submit_job_and_wait(JobPayload(task="build"), timeout=5)
    logger.info("job came back: %s", result.output)


class State:
    pass


@contextlib.asynccontextmanager
async def lifespan(service: Any) -> AsyncIterator[State]:
    service.start_background(submit(service), name="submit")
    yield State()
"""


def test_correlation_id_and_reply_topic_in_mqtt5_headers(tmp_path: Path, broker: Broker) -> None:
    user_files = {
        "job_runner/handlers/jobs.py": JOB_HANDLER,
        "job_runner/lifecycle.py": JOB_LIFECYCLE,
    }
    out = generated_project(tmp_path / "jobs", JOBS_SPEC, user_files)
    custom = Subscriber(broker, "custom/replies", extra=("-V", "mqttv5", "-F", "%t %P %p"))
    proc = service(out, "job_runner", broker)
    try:
        proc.wait_for("job came back: done: build")
        headers = (
            "-D",
            "publish",
            "user-property",
            "correlationId",
            "abc-1",
            "-D",
            "publish",
            "user-property",
            "replyTo",
            "custom/replies",
        )
        broker.publish("jobs", json.dumps({"task": "lint"}), 1, "-V", "mqttv5", *headers)
        found = custom.wait_for(r"^custom/replies (.*) (\{.*\})$")
        assert "correlationId:abc-1" in found.group(1)
        assert json.loads(found.group(2)) == {"output": "done: lint"}
    finally:
        proc.kill()
    assert_type_checks(out, "job_runner")
