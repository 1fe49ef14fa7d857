"""The example's critical alerts survive a broker that hangs and is restarted: every hot reading
queued before gets its alert, none lost. The alerts sent while the broker hung got no answer;
they are sent again once the restarted broker has the session (a real mosquitto with
persistence, both protocol engines). A graceful stop alone leaves nothing to resend under
MQTT 5: mosquitto answers everything it read before it goes."""

from __future__ import annotations

import json
import signal
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.support import (
    EXAMPLE,
    EXAMPLE_PACKAGE,
    Broker,
    Subscriber,
    free_port,
    persistent,
    running_broker,
    service,
    wait_until,
)

DEVICES = 20
READINGS = 75  # per device: 1,500 in all, within twice the pending mark
WATCHER = "alerts-watcher"


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    with running_broker(tmp_path, persistent(tmp_path)) as instance:
        yield instance


def temperature(device: int, n: int) -> float:
    """Above the critical mark, and unique: the alert's details carry it back."""
    return round(81 + (device * READINGS + n) / 10_000, 4)


def queue_hot_readings(broker: Broker) -> set[float]:
    start = datetime(2024, 1, 15, tzinfo=UTC)
    for device in range(DEVICES):
        lines = "".join(
            json.dumps(
                {
                    "deviceId": f"hot{device}",
                    "timestamp": (start + timedelta(seconds=n)).isoformat(),
                    "sensors": {"temperature": temperature(device, n)},
                }
            )
            + "\n"
            for n in range(READINGS)
        )
        subprocess.run(
            ["mosquitto_pub", "-h", "127.0.0.1", "-p", str(broker.port), "-q", "1",
             "-t", f"devices/hot{device}/telemetry", "-l"],
            input=lines, text=True, check=True, timeout=60,
        )  # fmt: skip
    return {temperature(d, n) for d in range(DEVICES) for n in range(READINGS)}


def watch_alerts(broker: Broker, *extra: str) -> Subscriber:
    """A persistent QoS 1 subscription to the alerts: the broker keeps them for it."""
    return Subscriber(
        broker,
        "alerts/critical",
        count=4 * DEVICES * READINGS,
        extra=("-c", "-i", WATCHER, "-q", "1", *extra),
    )


def alerted(watcher: Subscriber) -> set[float]:
    found = set()
    for line in watcher.find_all(r"^alerts/critical \{"):
        found.add(json.loads(line.partition(" ")[2])["details"]["temperature"])
    return found


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
def test_no_critical_alert_is_lost_across_a_broker_restart(broker: Broker, protocol: str) -> None:
    watch_alerts(broker).kill()  # subscribed (SUBACK seen): the broker now keeps its alerts
    env = {"MQTT_CLIENT_ID": f"alerts-{free_port()}", "MQTT_CLEAN_SESSION": "false"}
    first = service(EXAMPLE, EXAMPLE_PACKAGE, broker, **env)
    first.wait_for("connected to mqtt://")  # creates the service's session
    assert first.terminate() == 0
    expected = queue_hot_readings(broker)
    proc = service(
        EXAMPLE, EXAMPLE_PACKAGE, broker, MQTT_PROTOCOL=protocol, MQTT_KEEP_ALIVE="1", **env
    )
    try:
        wait_until(lambda: len(proc.find_all("critical temperature")) >= 300, 60, "300 alerts sent")
        assert broker.process is not None
        broker.process.send_signal(signal.SIGSTOP)  # hangs: what is in flight gets no answer
        proc.wait_for(r"WARNING .*reconnecting", 30)
        broker.process.send_signal(signal.SIGCONT)
        broker.stop()  # SIGTERM: mosquitto saves its persistent state
        broker.start()
        proc.wait_for(r"connected to .*session resumed", 30)
        watcher = watch_alerts(broker)
        try:
            wait_until(lambda: alerted(watcher) >= expected, 120, "every alert at the watcher")
        finally:
            watcher.kill()
    finally:
        assert proc.terminate() == 0
    lost = expected - alerted(watcher)
    resent = sum(
        int(line.split("session resumed; ")[1].split()[0])
        for line in proc.find_all(r"session resumed; \d+ unacknowledged")
    )
    print(
        f"MQTT {protocol}: {len(lost)} of {len(expected)} alerts lost across a broker restart; "
        f"{resent} unanswered when it hung, sent again"
    )
    assert not lost
    assert resent > 0, "nothing was in flight: the restart proved nothing"
    assert proc.find_all(r"handler_errors=0")
