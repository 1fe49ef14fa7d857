"""The brokers of the matrix, each started by the tests on free loopback ports: mosquitto,
aedes 2 (Node.js, MQTT 5 and 3.1.1, WebSockets through `ws`) and RabbitMQ with its MQTT plugin
(3.1.1 only). All offer what `tests.support.Broker` offers (`port`, `workdir`, `start()`,
`stop()`, `publish()`), plus what the broker lacks, so a test skips with the reason instead of
passing silently."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.support import REPO, Broker, Process, free_port, persistent, port_open, wait_until

NODE_BROKERS = REPO / "tests" / "brokers"
# The matrix's cells, broker-MQTT version (the `target` fixture of conftest.py). RabbitMQ's share
# one worker under `--dist loadgroup`, so one RabbitMQ starts, not one each.
TARGETS = [
    "mosquitto-5",
    "mosquitto-3.1.1",
    "aedes-5",
    "aedes-3.1.1",
    pytest.param("rabbitmq-3.1.1", marks=pytest.mark.xdist_group("rabbitmq")),
]
RABBITMQ_BIN = Path("/usr/lib/rabbitmq/bin")


@dataclass(frozen=True)
class Lacks:
    """Features a broker does not offer, each with the reason a test prints when it skips."""

    reasons: dict[str, str] = field(default_factory=dict)

    def skip_unless(self, feature: str) -> None:
        if feature in self.reasons:
            pytest.skip(self.reasons[feature])


class _Publishing:
    port: int

    def publish(self, topic: str, payload: str, qos: int = 0, *extra: str) -> None:
        """Publish as a user would, with mosquitto_pub (MQTT 3.1.1 unless told otherwise)."""
        subprocess.run(
            ["mosquitto_pub", "-h", "127.0.0.1", "-p", str(self.port), "-q", str(qos),
             "-t", topic, "-m", payload, *extra],
            check=True,
            timeout=10,
        )  # fmt: skip


def _kill_group(process: subprocess.Popen[bytes] | subprocess.Popen[str], sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, sig)


class Aedes(_Publishing):
    """aedes 2 from `tests/brokers` (installed by scripts/setup.sh with `npm ci`): MQTT on TCP and
    over WebSockets. Its sessions live in memory, so they do not outlive a restart."""

    name = "aedes"
    lacks = Lacks(
        {
            "shared": "aedes refuses $share subscriptions (shared groups are not supported)",
            "restart": "aedes keeps sessions in memory: a restart forgets them",
            # its memory persistence stores each PUBREL object and, on the next PUBREC, rewrites
            # the stored one's packet id before it is written: PUBREL for m2 goes out twice and
            # m1 is never released (seen in about 1 run in 4 of test_qos_2_in_and_out)
            "qos2-3.1.1": "aedes 2.0.0-beta.1 sends a wrong PUBREL packet id when an MQTT 3.1.1 "
            "subscriber (paho) sends PUBRECs back to back on a persistent session: one QoS 2 "
            "message is never released",
        }
    )

    def __init__(
        self, workdir: Path, ws_path: str = "/mqtt", tls: tuple[Path, Path] | None = None
    ) -> None:
        """`tls`: the certificate and key files that make the WebSocket listener wss."""
        self.workdir = workdir
        self.port = free_port()
        self.ws_port = free_port()
        self.ws_path = ws_path
        self.tls = tls
        self.process: Process | None = None

    def start(self) -> None:
        script = NODE_BROKERS / "aedes_server.mjs"
        args = ["node", str(script), str(self.port), str(self.ws_port), self.ws_path]
        args += [str(path) for path in self.tls or ()]
        self.process = Process(args, cwd=NODE_BROKERS)
        self.process.wait_for("^ready$", timeout=20)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process = None
        wait_until(lambda: not port_open(self.port), 10, "aedes to stop")

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process = None


def aedes_available() -> str | None:
    """Why aedes cannot run here, or None."""
    if shutil.which("node") is None:
        return "node is not installed (scripts/setup.sh installs Node.js and aedes)"
    version = subprocess.run(["node", "--version"], capture_output=True, text=True, check=False)
    if int(version.stdout.strip().lstrip("v").split(".")[0] or 0) < 20:
        return f"aedes 2 needs Node.js 20 or later, not {version.stdout.strip()}"
    if not (NODE_BROKERS / "node_modules" / "aedes").is_dir():
        return "aedes is not installed: run scripts/setup.sh (npm ci in tests/brokers)"
    return None


@contextlib.contextmanager
def running_aedes(
    workdir: Path, ws_path: str = "/mqtt", tls: tuple[Path, Path] | None = None
) -> Iterator[Aedes]:
    why = aedes_available()
    if why:
        pytest.skip(why)
    broker = Aedes(workdir, ws_path, tls)
    broker.start()
    try:
        yield broker
    finally:
        broker.kill()


RABBITMQ_CONFIG = """\
listeners.tcp.default = 127.0.0.1:{amqp}
mqtt.listeners.tcp.default = 127.0.0.1:{port}
mqtt.allow_anonymous = true
loopback_users = none
log.console = false
log.file.level = warning
"""


class RabbitMq(_Publishing):
    """Debian's rabbitmq-server (3.10) with its MQTT plugin, run as the current user from a
    folder of its own: its own node name, ports, Erlang cookie and epmd (on a port of its own,
    so parallel test workers never share one). Sessions and queued QoS 1 messages persist in
    its folder across a restart. Starting takes 10-20 s, so one serves a whole test session."""

    name = "rabbitmq"
    lacks = Lacks(
        {
            "shared": "RabbitMQ 3.10's MQTT plugin has no shared subscriptions",
            "mqtt5": "RabbitMQ 3.10's MQTT plugin speaks MQTT 3.1.1 only",
            "qos2": "RabbitMQ 3.10's MQTT plugin downgrades QoS 2 to QoS 1",
        }
    )

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_port()
        home = workdir / "home"
        home.mkdir(parents=True, exist_ok=True)
        cookie = home / ".erlang.cookie"
        if not cookie.exists():
            cookie.write_text(f"pygen{os.urandom(12).hex()}")
            cookie.chmod(0o400)
        (workdir / "enabled_plugins").write_text("[rabbitmq_mqtt].\n")
        (workdir / "rabbitmq.conf").write_text(
            RABBITMQ_CONFIG.format(amqp=free_port(), port=self.port)
        )
        self.epmd_port = free_port()
        self.env = {
            **os.environ,
            "HOME": str(home),
            "RABBITMQ_NODENAME": f"pygen{self.port}@localhost",
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_DIST_PORT": str(free_port()),
            "ERL_EPMD_PORT": str(self.epmd_port),
            "RABBITMQ_MNESIA_BASE": str(workdir / "mnesia"),
            "RABBITMQ_LOG_BASE": str(workdir / "log"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(workdir / "enabled_plugins"),
            "RABBITMQ_CONFIG_FILE": str(workdir / "rabbitmq.conf"),
            "RABBITMQ_PID_FILE": str(workdir / "rabbitmq.pid"),
        }
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = (self.workdir / "server.log").open("ab")
        self.process = subprocess.Popen(
            [str(RABBITMQ_BIN / "rabbitmq-server")],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_until(
            lambda: port_open(self.port) or self.process is None or self.process.poll() is not None,
            90,
            f"RabbitMQ's MQTT listener on port {self.port}",
            interval=0.2,
        )
        if not port_open(self.port):
            raise AssertionError(f"RabbitMQ did not start; see {self.workdir / 'server.log'}")

    def stop(self) -> None:
        """SIGTERM: RabbitMQ shuts down cleanly, keeping durable sessions and their messages."""
        if self.process is not None:
            _kill_group(self.process, signal.SIGTERM)
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                _kill_group(self.process, signal.SIGKILL)
                self.process.wait(10)
            self.process = None
        wait_until(lambda: not port_open(self.port), 30, "RabbitMQ to stop", interval=0.2)

    def shutdown(self) -> None:
        """Stop, and stop the epmd that this node started (it outlives the node otherwise)."""
        self.stop()
        subprocess.run(
            ["epmd", "-kill"], env=self.env, capture_output=True, timeout=10, check=False
        )


def rabbitmq_available() -> str | None:
    if not (RABBITMQ_BIN / "rabbitmq-server").exists():
        return "rabbitmq-server is not installed (scripts/setup.sh installs it)"
    return None


@contextlib.contextmanager
def running_rabbitmq() -> Iterator[RabbitMq]:
    why = rabbitmq_available()
    if why:
        pytest.skip(why)
    workdir = Path(tempfile.mkdtemp(prefix="pygen-rabbitmq-"))
    broker = RabbitMq(workdir)
    try:
        broker.start()
        yield broker
    finally:
        broker.shutdown()
        shutil.rmtree(workdir, ignore_errors=True)


class Mosquitto(Broker, _Publishing):
    """mosquitto 2.0, keeping sessions and queued messages across a restart."""

    name = "mosquitto"
    lacks = Lacks()

    def __init__(self, workdir: Path) -> None:
        super().__init__(workdir, persistent(workdir))

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(10)
            self.process = None
