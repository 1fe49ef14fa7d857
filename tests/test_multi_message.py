"""Several messages on one channel, end to end against a real broker: each reaches the handler
as its own model (the first model that validates, in declaration order), and each has its own
typed send method."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support import REPO, Broker, Subscriber, assert_type_checks, generated_project, service

SPEC = REPO / "tests" / "specs" / "multi-3.0.yaml"
PACKAGE = "multi_message"

HANDLER = """
import logging
from multi_message.context import Context
from multi_message.models import UserDeletedPayload, UserSignedUpPayload

logger = logging.getLogger(__name__)


async def handle(
    message: UserSignedUpPayload | UserDeletedPayload, ctx: Context, *, user_id: str
) -> None:
    logger.info("got %s for %s", type(message).__name__, user_id)
    if isinstance(message, UserSignedUpPayload):
        await ctx.publisher.send_audit_user_signed_up(message, user_id=user_id)
    else:
        await ctx.publisher.send_audit_user_deleted(message, user_id=user_id)
"""


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("multi")
    return generated_project(out, SPEC, {f"{PACKAGE}/handlers/user_events.py": HANDLER})


def test_each_message_is_dispatched_to_its_model_and_sent_by_its_method(
    project, broker: Broker
) -> None:
    audit = Subscriber(broker, "audit/+", count=2)
    proc = service(project, PACKAGE, broker)
    try:
        proc.wait_for("subscribed to users/\\+/events")
        broker.publish("users/u1/events", json.dumps({"kind": "signup", "email": "a@b.c"}))
        proc.wait_for("got UserSignedUpPayload for u1")
        broker.publish("users/u2/events", json.dumps({"kind": "delete", "reason": "asked"}))
        proc.wait_for("got UserDeletedPayload for u2")
        broker.publish("users/u3/events", json.dumps({"kind": "other"}))
        proc.wait_for("rejected message on 'users/u3/events': invalid payload")
        assert audit.message("audit/u1") == (
            "audit/u1",
            json.dumps({"kind": "signup", "email": "a@b.c"}, separators=(",", ":")),
        )
        assert audit.message("audit/u2") == ("audit/u2", '{"kind":"delete","reason":"asked"}')
    finally:
        proc.kill()


def test_generated_project_type_checks(project: Path) -> None:
    assert_type_checks(project, PACKAGE)
