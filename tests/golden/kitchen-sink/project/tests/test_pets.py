"""Tests of the handler for pets/{petId}, without a broker (kitchen_sink/testing.py).

Yours to edit: asyncapi-pygen created this file once and never overwrites it. Run with `pytest`.
"""

from __future__ import annotations

import asyncio

from kitchen_sink.testing import harness

TOPIC = "pets/example"


def test_a_message_that_is_not_json_is_rejected() -> None:
    async def scenario() -> None:
        async with harness() as h:
            outcome = await h.publish(TOPIC, b"this is not JSON")
            assert outcome.rejected == "invalid_json", outcome

    asyncio.run(scenario())
