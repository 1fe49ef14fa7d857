"""Operating the generated example: HTTP health and metrics against a real broker, JSON logs,
the service's own command line."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import urllib.error
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from generator.runtime import http
from generator.runtime.cli import Program, parser
from tests.support import EXAMPLE, EXAMPLE_PACKAGE, Broker, free_port, service, wait_until
from tests.test_example_service import SEED_TELEMETRY, telemetry


def get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def test_readyz_follows_the_broker_and_metrics_count_what_was_published(broker: Broker) -> None:
    port = free_port()
    proc = service(EXAMPLE, EXAMPLE_PACKAGE, broker, SERVER_PORT=str(port), SERVER_HOST="127.0.0.1")
    try:
        proc.wait_for("connected to mqtt://")
        wait_until(lambda: get(port, "/readyz")[0] == 200, 10, "/readyz to say ready")
        assert get(port, "/healthz") == (200, "ok\n")
        for device in ("m1", "m2", "m3"):
            broker.publish(f"devices/{device}/telemetry", telemetry(device, 20.0))
        broker.publish("devices/m4/telemetry", "not JSON")
        proc.wait_for("rejected message on 'devices/m4/telemetry'")
        broker.publish("devices/m5/telemetry", "", 1, "-r")  # clears a retained message
        telemetry_label = (("channel", "deviceTelemetry"),)

        def counted() -> bool:
            found = samples(get(port, "/metrics")[1])
            return (
                found.get(("messages_handled_total", telemetry_label)) == 3
                and found.get(("messages_retained_clears_total", telemetry_label)) == 1
            )

        wait_until(counted, 10, "3 handled messages and a retained clear in /metrics")
        found = samples(get(port, "/metrics")[1])
        assert found[("messages_received_total", telemetry_label)] == 5
        assert found[("messages_retained_clears_total", telemetry_label)] == 1
        bad = (("channel", "deviceTelemetry"), ("reason", "invalid_json"))
        assert found[("messages_rejected_total", bad)] == 1
        assert found[("handler_duration_seconds_count", telemetry_label)] == 3
        assert found[("mqtt_connected", ())] == 1
        broker.stop()
        wait_until(lambda: get(port, "/readyz")[0] == 503, 10, "/readyz to say 503")
        assert get(port, "/healthz")[0] == 200
        broker.start()
        wait_until(lambda: get(port, "/readyz")[0] == 200, 20, "/readyz ready again")
        wait_until(  # the metrics body is rendered at most once a second
            lambda: samples(get(port, "/metrics")[1])[("mqtt_reconnects_total", ())] >= 1,
            10,
            "a reconnect in /metrics",
        )
    finally:
        proc.kill()


def test_messages_awaiting_their_acknowledgement_are_a_gauge(broker: Broker) -> None:
    """The example's telemetry handler hands its row's commit to `ctx.ack_after`; with commits
    held back a minute, the handled readings wait for it, and /metrics says how many."""
    port = free_port()
    proc = service(
        EXAMPLE,
        EXAMPLE_PACKAGE,
        broker,
        SERVER_PORT=str(port),
        SERVER_HOST="127.0.0.1",
        TELEMETRY_FLUSH_INTERVAL="60",
    )
    try:
        proc.wait_for("connected to mqtt://")
        for device in ("w1", "w2", "w3"):
            broker.publish(f"devices/{device}/telemetry", telemetry(device, 20.0), 1)
        wait_until(
            lambda: samples(get(port, "/metrics")[1]).get(("messages_awaiting_ack", ())) == 3,
            15,
            "3 messages awaiting their acknowledgement in /metrics",
        )
        found = samples(get(port, "/metrics")[1])
        assert found[("messages_handled_total", (("channel", "deviceTelemetry"),))] == 3
    finally:
        proc.kill()


def test_json_logs_parse_line_by_line(broker: Broker) -> None:
    proc = service(EXAMPLE, EXAMPLE_PACKAGE, broker, LOG_FORMAT="json", LOG_LEVEL="DEBUG")
    try:
        proc.wait_for('"connected to mqtt://')
        broker.publish("devices/j1/telemetry", "not JSON")
        proc.wait_for("rejected message")
        broker.publish("devices/j1/telemetry", SEED_TELEMETRY.replace("sensor001", "j1"))
        proc.wait_for("telemetry from j1")
    finally:
        proc.kill()
    lines = [json.loads(line) for line in proc.lines if line.strip()]
    assert all({"time", "level", "logger", "message"} <= set(line) for line in lines)
    [rejected] = [line for line in lines if "rejected message" in line["message"]]
    assert rejected["topic"] == "devices/j1/telemetry"
    assert rejected["channel"] == "deviceTelemetry"
    assert rejected["level"] == "WARNING"


def run_service(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", EXAMPLE_PACKAGE, *args],
        cwd=EXAMPLE,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "MQTT_HOST": "127.0.0.1", **env},
    )


def test_help_and_version_exit_0_without_connecting() -> None:
    unreachable = {"MQTT_PORT": str(free_port())}
    helped = run_service("--help", **unreachable)
    assert helped.returncode == 0 and "check-config" in helped.stdout
    version = run_service("--version", **unreachable)
    assert version.returncode == 0 and "1.0.0 (runtime" in version.stdout
    assert "connecting" not in helped.stderr + version.stderr


def test_bad_settings_are_clear_errors() -> None:
    result = run_service(LOG_LEVEL="verbose", LOG_FORMAT="xml")
    assert result.returncode == 2
    assert "invalid setting LOG_LEVEL: Input should be 'DEBUG'" in result.stderr
    assert "invalid setting LOG_FORMAT: Input should be 'text' or 'json'" in result.stderr
    assert "Traceback" not in result.stderr


def test_check_config_tries_the_broker_once(broker: Broker) -> None:
    good = run_service("check-config", MQTT_PORT=str(broker.port), CONNECT_TIMEOUT="5")
    assert good.returncode == 0, good.stderr
    assert "connected to mqtt://127.0.0.1" in good.stdout
    bad = run_service("check-config", MQTT_PORT=str(free_port()), CONNECT_TIMEOUT="5")
    assert bad.returncode == 1
    assert "cannot connect to mqtt://127.0.0.1" in bad.stderr


def test_unknown_settings_in_the_environment_are_warned_about(broker: Broker) -> None:
    proc = service(EXAMPLE, EXAMPLE_PACKAGE, broker, MQTT_HSOT="typo")
    try:
        proc.wait_for("unknown setting MQTT_HSOT in the environment: ignored")
    finally:
        proc.kill()


async def flood(port: int, idle: int, scrapes: int) -> tuple[int, int, int, int]:
    """`idle` connections that say nothing hold their places while `scrapes` GET /metrics at
    once: (answered 200, refused with 503 or a reset, other outcomes, the status of a /healthz
    asked meanwhile)."""
    holders = [await asyncio.open_connection("127.0.0.1", port) for _ in range(idle)]
    health = await asyncio.to_thread(get, port, "/healthz")

    async def scrape() -> int:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            answer = await reader.read()
            writer.close()
            return int(answer.split(b" ", 2)[1]) if answer else 503
        except ConnectionError:
            return 503

    try:
        async with asyncio.timeout(60):
            outcomes = await asyncio.gather(*(scrape() for _ in range(scrapes)))
    finally:
        for _, writer in holders:
            writer.close()
    ok, busy = outcomes.count(200), outcomes.count(503)
    return ok, busy, len(outcomes) - ok - busy, health[0]


def test_a_flood_of_connections_is_refused_past_the_limit_while_messages_flow(
    broker: Broker,
) -> None:
    port = free_port()
    env = {"SERVER_PORT": str(port), "SERVER_HOST": "127.0.0.1", "LOG_LEVEL": "DEBUG"}
    proc = service(EXAMPLE, EXAMPLE_PACKAGE, broker, **env)  # DEBUG: a line per reading handled
    try:
        proc.wait_for("connected to mqtt://")
        wait_until(lambda: get(port, "/readyz")[0] == 200, 10, "/readyz to say ready")
        lines = "".join(
            json.dumps(
                {
                    "deviceId": "flood",
                    "timestamp": f"2024-01-15T10:{n // 60:02d}:{n % 60:02d}Z",
                    "sensors": {"temperature": 20.0},
                }
            )
            + "\n"
            for n in range(300)
        )
        publisher = subprocess.Popen(
            ["mosquitto_pub", "-h", "127.0.0.1", "-p", str(broker.port), "-q", "1",
             "-t", "devices/flood/telemetry", "-l"],
            stdin=subprocess.PIPE, text=True,
        )  # fmt: skip
        publisher.communicate(lines, timeout=60)
        held = asyncio.run(flood(port, idle=http.MAX_CONNECTIONS + 10, scrapes=500))
        free = asyncio.run(flood(port, idle=0, scrapes=2000))
        wait_until(
            lambda: len(proc.find_all("telemetry from flood")) >= 300, 60, "300 messages handled"
        )
        assert get(port, "/healthz") == (200, "ok\n")
    finally:
        proc.kill()
    print(f"(answered, refused, other, /healthz meanwhile): 500 scrapes behind "
          f"{http.MAX_CONNECTIONS + 10} idle connections {held}, 2,000 at once {free}")  # fmt: skip
    assert held == (0, 500, 0, 200), "idle connections hold the places: scrapes are refused"
    assert free[0] > 0 and free[2] == 0


def test_a_percent_sign_in_the_title_or_version_is_text_in_help_and_version(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """argparse %-formats help and version text; the document's are shown as written."""
    title, version = "Load 100% %(prog)s {x}", "2%"
    program = Program("load", "load", title, version, None, None, None, (), ())  # type: ignore[arg-type]
    made = parser(program)
    assert title in made.format_help()
    with pytest.raises(SystemExit) as exited:
        made.parse_args(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.startswith("python -m load 2% (runtime ")
