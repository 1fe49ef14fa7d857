"""Real components for the tests: a mosquitto broker on a free loopback port, processes whose
output can be waited on (never slept on), and the CLI as a user runs it."""

from __future__ import annotations

import contextlib
import importlib
import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "mqtt"
EXAMPLE_SPEC = EXAMPLE / "asyncapi.yaml"
EXAMPLE_PACKAGE = "iot_device_management_service"
# The corpus is other people's text and stays outside the repository; tests that need it skip
# when it is absent.
CORPUS_ROOT = Path(os.environ.get("ASYNCAPI_PYGEN_CORPUS", REPO.parent / "shared" / "corpus"))
CORPUS = CORPUS_ROOT / "asyncapi-spec-examples"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(predicate, timeout: float, what: str, interval: float = 0.02) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def mosquitto_binary() -> str:
    for candidate in (shutil.which("mosquitto"), "/usr/sbin/mosquitto"):
        if candidate and Path(candidate).exists():
            return candidate
    raise RuntimeError(
        "mosquitto is not installed (apt-get install -y mosquitto mosquitto-clients)"
    )


class Broker:
    """A mosquitto of our own on 127.0.0.1; stop() and start() keep the same port."""

    def __init__(self, workdir: Path, extra: str = "persistence false\n") -> None:
        self.port = free_port()
        self.workdir = workdir
        self.config = workdir / "mosquitto.conf"
        self.config.write_text(f"listener {self.port} 127.0.0.1\nallow_anonymous true\n{extra}")
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [mosquitto_binary(), "-c", str(self.config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_until(lambda: port_open(self.port), 10, f"mosquitto on port {self.port}")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
            self.process = None
        wait_until(lambda: not port_open(self.port), 10, "mosquitto to stop")

    def publish(self, topic: str, payload: str, qos: int = 0, *extra: str) -> None:
        """Publish as a user would, with mosquitto_pub."""
        subprocess.run(
            [
                "mosquitto_pub",
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-q",
                str(qos),
                "-t",
                topic,
                "-m",
                payload,
                *extra,
            ],
            check=True,
            timeout=10,
        )


def persistent(workdir: Path) -> str:
    """mosquitto settings for a broker that queues without limit and keeps its state across
    restarts. `user root`: mosquitto started as root otherwise drops to its own user, which
    cannot write under pytest's private temporary folders (ignored when not started as root)."""
    return f"user root\nmax_queued_messages 0\npersistence true\npersistence_location {workdir}/\n"


@contextlib.contextmanager
def running_broker(workdir: Path, extra: str = "persistence false\n") -> Iterator[Broker]:
    """A started broker, killed afterwards whatever happened."""
    broker = Broker(workdir, extra)
    broker.start()
    try:
        yield broker
    finally:
        if broker.process is not None:
            broker.process.kill()
            broker.process.wait(10)


class Process:
    """A child process whose combined output lines can be awaited with a timeout."""

    def __init__(self, args: list[str], cwd: Path, env: dict[str, str] | None = None) -> None:
        full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        self.popen = subprocess.Popen(
            args,
            cwd=cwd,
            env=full_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
        )
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self._seen = 0

    def _read(self) -> None:
        assert self.popen.stdout is not None
        for line in self.popen.stdout:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def _drain(self, timeout: float) -> bool:
        try:
            line = self._queue.get(timeout=timeout)
        except queue.Empty:
            return True
        if line is None:
            return False
        self.lines.append(line)
        return True

    def wait_for(self, pattern: str, timeout: float = 15) -> re.Match[str]:
        """The first line after the previous match that matches `pattern`."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            for index in range(self._seen, len(self.lines)):
                found = regex.search(self.lines[index])
                if found:
                    self._seen = index + 1
                    return found
            self._seen = len(self.lines)
            remaining = deadline - time.monotonic()
            if remaining <= 0 or (
                not self._drain(min(remaining, 0.2)) and self.popen.poll() is not None
            ):
                tail = "\n".join(self.lines[-30:])
                raise AssertionError(
                    f"no line matching {pattern!r} within {timeout} s; output:\n{tail}"
                )

    def find_all(self, pattern: str) -> list[str]:
        while self._queue.qsize():
            self._drain(0)
        return [line for line in self.lines if re.search(pattern, line)]

    def terminate(self, timeout: float = 20) -> int:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
        code = self.popen.wait(timeout)
        self._reader.join(5)
        while self._drain(0):
            if self._queue.empty():
                break
        return code

    def kill(self) -> None:
        if self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait(10)


class Subscriber(Process):
    """mosquitto_sub, ready once its subscription is acknowledged."""

    def __init__(
        self,
        broker: Broker,
        *topics: str,
        count: int = 1,
        cwd: Path = REPO,
        extra: tuple[str, ...] = (),
    ) -> None:
        args = [
            "stdbuf",
            "-oL",
            "mosquitto_sub",
            "-d",
            "-v",
            "-h",
            "127.0.0.1",
            "-p",
            str(broker.port),
            "-C",
            str(count),
            "-W",
            "60",
            *extra,
        ]
        for topic in topics:
            args += ["-t", topic]
        super().__init__(args, cwd)
        self.wait_for("SUBACK", timeout=10)

    def message(self, topic_pattern: str, timeout: float = 15) -> tuple[str, str]:
        found = self.wait_for(rf"^({topic_pattern}) (.*)$", timeout)
        return found.group(1), found.group(2)


class CliResult:
    """What an in-process CLI run printed, shaped like `subprocess.CompletedProcess`."""

    def __init__(self, returncode: int, stdout: str, stderr: str) -> None:
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


def cli(*args: str) -> CliResult:
    """The CLI in this process (typer's runner): the same code path as `run_cli`, without
    starting an interpreter, for tests where a subprocess adds nothing."""
    from typer.testing import CliRunner

    from generator.cli import app

    result = CliRunner().invoke(app, list(args), catch_exceptions=False)
    return CliResult(result.exit_code, result.stdout, result.stderr)


def run_cli(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    """The CLI exactly as a user runs it."""
    return subprocess.run(
        [sys.executable, "-m", "generator", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def service(project: Path, package: str, broker: Broker, **env: str) -> Process:
    """`python -m <package>` in a generated project, pointed at the test broker."""
    settings = {
        "MQTT_HOST": "127.0.0.1",
        "MQTT_PORT": str(broker.port),
        "MQTT_CLIENT_ID": f"test-{os.getpid()}-{free_port()}",
        "RECONNECT_MIN_DELAY": "0.1",
        "RECONNECT_MAX_DELAY": "0.5",
        "LOG_LEVEL": "INFO",
        # the example stores telemetry; its default file would land in the project folder
        "DATABASE_URL": f"sqlite:///{broker.workdir / f'telemetry-{free_port()}.db'}",
        **env,
    }
    return Process([sys.executable, "-m", package], cwd=project, env=settings)


def generated_project(out: Path, spec: Path, user_files: dict[str, str]) -> Path:
    """Generate `spec` into `out` through the CLI, then put the test's own user-zone files in."""
    result = run_cli("generate", str(spec), "--output", str(out))
    assert result.returncode == 0, result.stderr
    for relative, text in user_files.items():
        (out / relative).write_text(textwrap.dedent(text))
    return out


def assert_type_checks(project: Path, package: str) -> None:
    """`mypy --strict` on a generated project, hand-written files included."""
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", package],
        cwd=project,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout


def write_files(files: dict[str, str], root: Path) -> None:
    """Put an in-memory build (relative path -> text) on disk under `root`."""
    for relative, content in files.items():
        target = root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content, encoding="utf-8")


def import_modules(root: Path, *modules: str) -> list[ModuleType]:
    """Import modules of a project written under `root`, with `root` on the path meanwhile."""
    sys.path.insert(0, str(root))
    try:
        return [importlib.import_module(name) for name in modules]
    finally:
        sys.path.remove(str(root))
