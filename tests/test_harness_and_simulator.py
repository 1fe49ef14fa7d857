"""The in-memory test harness (`<pkg>/testing.py`), the tests a project is generated with, and
the device simulator (`python -m <pkg> simulate`) against a real broker."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tests.support import (
    EXAMPLE,
    REPO,
    Broker,
    assert_type_checks,
    generated_project,
    import_modules,
    running_broker,
    service,
    wait_until,
)

CONSTRAINED = REPO / "tests" / "specs" / "constraints-2.6.yaml"


def pytest_in(project: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture(scope="module")
def constrained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generated_project(tmp_path_factory.mktemp("constrained"), CONSTRAINED, {})


def test_the_examples_handler_tests_pass_on_the_harness() -> None:
    result = pytest_in(EXAMPLE)
    assert result.returncode == 0, result.stdout[-3000:]
    assert re.search(r"\b[1-9][0-9]+ passed", result.stdout), result.stdout[-500:]


def test_a_freshly_generated_project_passes_its_own_tests(constrained: Path) -> None:
    result = pytest_in(constrained)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "passed" in result.stdout
    assert_type_checks(constrained, "constrained_fleet")


def test_publish_takes_one_message_through_from_synchronous_code(constrained: Path) -> None:
    (testing,) = import_modules(constrained, "constrained_fleet.testing")
    assert testing.publish("no/such/channel", b"{}").rejected == "unknown_topic"
    with pytest.raises(TypeError, match="unknown settings: no_such_setting"):
        testing.publish("no/such/channel", b"{}", no_such_setting=1)


def test_simulate_300_messages_all_handled_none_rejected(constrained: Path, broker: Broker) -> None:
    proc = service(constrained, "constrained_fleet", broker)
    try:
        proc.wait_for("subscribed to")
        simulated = subprocess.run(
            [
                sys.executable,
                "-m",
                "constrained_fleet",
                "simulate",
                "--count",
                "300",
                "--seed",
                "5",
            ],
            cwd=constrained,
            capture_output=True,
            text=True,
            timeout=120,
            env={"PATH": "/usr/bin:/bin", "MQTT_HOST": "127.0.0.1", "MQTT_PORT": str(broker.port)},
        )
        assert simulated.returncode == 0, simulated.stderr[-2000:]
        summary = json.loads(simulated.stdout.strip().splitlines()[-1])
        assert sum(summary["sent"].values()) == 300 and summary["failed"] == 0
        assert len(summary["sent"]) == 2, "both receive channels get messages"
    finally:
        code = proc.terminate()
    assert code == 0
    [stopped] = proc.find_all(r"stopped; .*Stats\(")
    assert (
        "received=300, handled=300, invalid_json=0, invalid_payload=0, unknown_topic=0" in stopped
    )


@pytest.mark.broker
def test_simulate_pipelines_over_several_connections_and_prints_its_rate(
    constrained: Path, tmp_path: Path
) -> None:
    # The simulator outruns a service that logs every message; mosquitto's default queue
    # (1,000 beyond what is in flight) would drop the rest of the burst.
    with running_broker(tmp_path, "persistence false\nmax_queued_messages 0\n") as broker:
        simulate_3000_over_3_connections(constrained, broker)


def simulate_3000_over_3_connections(constrained: Path, broker: Broker) -> None:
    proc = service(constrained, "constrained_fleet", broker)
    try:
        proc.wait_for("subscribed to")
        options = ["--count", "3000", "--devices", "40", "--connections", "3", "--seed", "8"]
        simulated = subprocess.run(
            [sys.executable, "-m", "constrained_fleet", "simulate", *options],
            cwd=constrained,
            capture_output=True,
            text=True,
            timeout=120,
            env={"PATH": "/usr/bin:/bin", "MQTT_HOST": "127.0.0.1", "MQTT_PORT": str(broker.port)},
        )
        assert simulated.returncode == 0, simulated.stderr[-2000:]
        summary = json.loads(simulated.stdout.strip().splitlines()[-1])
        assert sum(summary["sent"].values()) == 3000 and summary["failed"] == 0
        assert summary["rate"] > 0
        handled = r" INFO constrained_fleet\.handlers\."  # each handler stub logs its message
        wait_until(lambda: len(proc.find_all(handled)) >= 3000, 120, "3,000 messages handled")
    finally:
        code = proc.terminate()
    assert code == 0
    [stopped] = proc.find_all(r"stopped; .*Stats\(")
    assert "received=3000, handled=3000, invalid_json=0, invalid_payload=0" in stopped


def test_simulate_gives_each_device_its_topic_and_a_fresh_payload() -> None:
    """A fleet, not one device replayed: one topic per device, and no (device, payload) pair
    twice before devices x pool messages, each payload valid for its model."""
    simulate, models, topics = import_modules(
        EXAMPLE,
        "iot_device_management_service.simulate",
        "iot_device_management_service.models",
        "iot_device_management_service.topics",
    )
    messages = [m for _, m in simulate.plan(5000, 4, 1000, "deviceTelemetry")]
    assert len({m.topic for m in messages}) == 1000
    assert len({(m.topic, m.payload) for m in messages}) == 5000
    assert all(topics.DEVICE_TELEMETRY.match(m.topic) is not None for m in messages)
    for payload in {m.payload for m in messages}:
        models.TelemetryPayload.model_validate_json(payload)
    assert {m.qos for m in messages} == {1}
    assert {m.qos for _, m in simulate.plan(10, 4, 5, None, qos=0)} == {0}


def test_simulate_is_deterministic_with_a_seed(constrained: Path) -> None:
    (simulate,) = import_modules(constrained, "constrained_fleet.simulate")
    first = [(c, m.topic, m.payload) for c, m in simulate.plan(20, 11, 5, None)]
    time.sleep(1.1)  # dates must come from the seed, not from the clock
    again = [(c, m.topic, m.payload) for c, m in simulate.plan(20, 11, 5, None)]
    other = [(c, m.topic, m.payload) for c, m in simulate.plan(20, 12, 5, None)]
    assert first == again and first != other


def test_the_harness_answers_and_awaits_replies(tmp_path: Path) -> None:
    handler = """
    from ping_pong.context import Context
    from ping_pong.models import PingPayload, PongPayload


    async def handle(message: PingPayload, ctx: Context, *, node: str) -> PongPayload | None:
        return PongPayload(text=f"pong from {node}: {message.text}")
    """
    out = generated_project(
        tmp_path / "pp", REPO / "tests" / "specs" / "ping-pong-3.0.yaml",
        {"ping_pong/handlers/ping.py": handler},
    )  # fmt: skip
    test = out / "tests" / "test_replies.py"
    test.write_text(textwrap.dedent("""
            import asyncio

            from ping_pong.models import PingPayload
            from ping_pong.testing import harness


            def test_answer_and_request() -> None:
                async def scenario() -> None:
                    async with harness() as h:
                        outcome = await h.publish("ping/n1", {"id": "r-1", "text": "hi"})
                        assert outcome.handled
                        [reply] = h.sent("pong/+")
                        assert reply.json() == {"id": "r-1", "text": "pong from n1: hi"}
                        asking = asyncio.create_task(
                            h.service.publisher.ask_ping_and_wait(PingPayload(text="q"), node="n2")
                        )
                        for _ in range(100):
                            if h.sent("ping/n2"):
                                break
                            await asyncio.sleep(0.01)
                        [request] = h.sent("ping/n2")
                        answer = {"id": request.json()["id"], "text": "answer"}
                        assert (await h.publish("pong/n2", answer)).handled
                        assert (await asyncio.wait_for(asking, 5)).text == "answer"

                asyncio.run(scenario())
            """))
    result = pytest_in(out)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "passed" in result.stdout
    assert_type_checks(out, "ping_pong")
    subprocess.run([sys.executable, "-m", "mypy", "--strict", "tests"], cwd=out, check=True,
                   capture_output=True, timeout=300)  # fmt: skip
