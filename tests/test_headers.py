"""Message headers, end to end over MQTT 5 user properties against a real broker: validated into
their own model and passed to the handler; sent from a typed `headers=` argument."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support import REPO, Broker, Subscriber, assert_type_checks, generated_project, service

SPEC = REPO / "tests" / "specs" / "headers-3.0.yaml"
PACKAGE = "headers_demo"
V5 = ("-V", "mqttv5")

HANDLER = """
import logging
from headers_demo.context import Context
from headers_demo.models import OrderHeaders, OrderPayload

logger = logging.getLogger(__name__)


async def handle(
    message: OrderPayload, ctx: Context, *, region: str, headers: OrderHeaders
) -> None:
    tenant, attempt = headers.tenant_id, headers.attempt
    logger.info("order %s in %s for tenant %s, attempt %r", message.sku, region, tenant, attempt)
    echoed = OrderHeaders(tenant_id=headers.tenant_id, attempt=(headers.attempt or 0) + 1)
    await ctx.publisher.send_audit(message, headers=echoed)
"""


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("headers")
    return generated_project(out, SPEC, {f"{PACKAGE}/handlers/orders.py": HANDLER})


def test_headers_in_and_out_as_user_properties(project: Path, broker: Broker) -> None:
    audit = Subscriber(broker, "audit", extra=(*V5, "-F", "%t %P %p"))
    proc = service(project, PACKAGE, broker)
    try:
        proc.wait_for("subscribed to orders/\\+")
        broker.publish("orders/eu/x", "{}", 0, *V5)
        order = json.dumps({"sku": "A-1"})
        broker.publish(
            "orders/eu",
            order,
            1,
            *V5,
            "-D",
            "publish",
            "user-property",
            "tenantId",
            "acme",
            "-D",
            "publish",
            "user-property",
            "attempt",
            "2",
        )
        proc.wait_for("order A-1 in eu for tenant acme, attempt 2")
        found = audit.wait_for(r"^audit (.*) (\{.*\})$")
        assert sorted(found.group(1).split()) == ["attempt:3", "tenantId:acme"]
        assert json.loads(found.group(2)) == {"sku": "A-1"}
        broker.publish("orders/eu", order, 1, *V5)
        proc.wait_for("rejected message on 'orders/eu': invalid payload: tenantId: Field required")
    finally:
        proc.kill()


def test_headers_project_type_checks(project: Path) -> None:
    assert_type_checks(project, PACKAGE)
