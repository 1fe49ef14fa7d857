"""Tests of the handler for sink/{region}/{headers}/orders, without a broker (kitchen_sink/testing.py).

Yours to edit: asyncapi-pygen created this file once and never overwrites it. Run with `pytest`.
"""

from __future__ import annotations

from kitchen_sink.simulate import plan
from kitchen_sink.testing import publish

# A valid topic and payload, made as `python -m kitchen_sink simulate` makes them.
_, SIMULATED = next(plan(1, seed=0, devices=1, channel="topics"))
TOPIC = "sink/eu/example/orders"


def test_a_simulated_message_is_handled() -> None:
    outcome = publish(SIMULATED.topic, SIMULATED.payload, headers=dict(SIMULATED.user_properties))
    assert outcome.handled, outcome


def test_a_message_that_is_not_json_is_rejected() -> None:
    outcome = publish(TOPIC, b"this is not JSON")
    assert outcome.rejected == "invalid_json", outcome
