"""TLS towards a real mosquitto with certificates made by openssl for the test: a trusted CA, a
client certificate the broker requires, a wrong CA (one clear log line, retried, no traceback),
and a password that only travels encrypted."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import EXAMPLE, EXAMPLE_PACKAGE, Broker, service

pytestmark = pytest.mark.broker


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def certificate(cwd: Path, name: str, ca: str, subject: str, san: str = "") -> None:
    openssl("req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key",
            "-out", f"{name}.csr", "-subj", f"/CN={subject}", cwd=cwd)  # fmt: skip
    extra = ["-extfile", "san.cnf"] if san else []
    if san:
        (cwd / "san.cnf").write_text(f"subjectAltName={san}\n")
    openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.crt", "-CAkey", f"{ca}.key",
            "-CAcreateserial", "-out", f"{name}.crt", "-days", "2", *extra, cwd=cwd)  # fmt: skip


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two CAs, a server certificate for 127.0.0.1 from the first, a client certificate."""
    root = tmp_path_factory.mktemp("pki")
    for ca in ("ca", "other-ca"):
        openssl("req", "-x509", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{ca}.key",
                "-out", f"{ca}.crt", "-days", "2", "-subj", f"/CN={ca}", cwd=root)  # fmt: skip
    certificate(root, "server", "ca", "127.0.0.1", "IP:127.0.0.1,DNS:localhost")
    certificate(root, "client", "ca", "asyncapi-pygen-test-client")
    return root


def tls_broker(tmp_path: Path, pki: Path, *, client_certs: bool, password: bool) -> Broker:
    broker = Broker(tmp_path)
    lines = [
        f"listener {broker.port} 127.0.0.1",
        "user root",  # read the test's private files (ignored when not started as root)
        f"cafile {pki / 'ca.crt'}",
        f"certfile {pki / 'server.crt'}",
        f"keyfile {pki / 'server.key'}",
        f"require_certificate {'true' if client_certs else 'false'}",
    ]
    if password:
        passwords = tmp_path / "passwords"
        subprocess.run(["mosquitto_passwd", "-b", "-c", str(passwords), "svc", "s3cret!"],
                       check=True, timeout=30)  # fmt: skip
        passwords.chmod(0o644)
        lines += [f"password_file {passwords}", "allow_anonymous false"]
    else:
        lines.append("allow_anonymous true")
    broker.config.write_text("\n".join(lines) + "\n")
    return broker


@pytest.fixture
def started(request: pytest.FixtureRequest) -> Iterator[list[Broker]]:
    brokers: list[Broker] = []
    yield brokers
    for broker in brokers:
        if broker.process is not None:
            broker.process.kill()
            broker.process.wait(10)


def test_tls_with_a_ca_file(tmp_path: Path, pki: Path, started: list[Broker]) -> None:
    broker = tls_broker(tmp_path, pki, client_certs=False, password=False)
    broker.start()
    started.append(broker)
    proc = service(EXAMPLE, EXAMPLE_PACKAGE, broker, MQTT_TLS="true",
                   MQTT_CA_FILE=str(pki / "ca.crt"))  # fmt: skip
    try:
        proc.wait_for(r"connected to mqtts://127\.0\.0\.1:\d+", timeout=20)
    finally:
        proc.kill()


def test_client_certificate(tmp_path: Path, pki: Path, started: list[Broker]) -> None:
    broker = tls_broker(tmp_path, pki, client_certs=True, password=False)
    broker.start()
    started.append(broker)
    env = {"MQTT_TLS": "true", "MQTT_CA_FILE": str(pki / "ca.crt")}
    without = service(EXAMPLE, EXAMPLE_PACKAGE, broker, **env)
    try:
        without.wait_for(r"cannot connect to mqtts://.*; retrying in", timeout=20)
    finally:
        without.kill()
    certs = {"MQTT_CERT_FILE": str(pki / "client.crt"), "MQTT_KEY_FILE": str(pki / "client.key")}
    proc = service(EXAMPLE, EXAMPLE_PACKAGE, broker, **env, **certs)
    try:
        proc.wait_for(r"connected to mqtts://127\.0\.0\.1:\d+", timeout=20)
    finally:
        proc.kill()


def test_a_wrong_ca_is_one_clear_line_and_retried(
    tmp_path: Path, pki: Path, started: list[Broker]
) -> None:
    broker = tls_broker(tmp_path, pki, client_certs=False, password=False)
    broker.start()
    started.append(broker)
    proc = service(EXAMPLE, EXAMPLE_PACKAGE, broker, MQTT_TLS="true",
                   MQTT_CA_FILE=str(pki / "other-ca.crt"))  # fmt: skip
    try:
        proc.wait_for(r"cannot connect to mqtts://.*: TLS certificate rejected: .*; retrying in")
        proc.wait_for(r"cannot connect to mqtts://.*: TLS certificate rejected")
    finally:
        proc.kill()
    assert not proc.find_all("Traceback")


def test_password_over_tls_and_a_wrong_one(
    tmp_path: Path, pki: Path, started: list[Broker]
) -> None:
    broker = tls_broker(tmp_path, pki, client_certs=False, password=True)
    broker.start()
    started.append(broker)
    env = {"MQTT_TLS": "true", "MQTT_CA_FILE": str(pki / "ca.crt"), "MQTT_USERNAME": "svc"}
    wrong = service(EXAMPLE, EXAMPLE_PACKAGE, broker, **env, MQTT_PASSWORD="nope")
    try:
        wrong.wait_for(r"cannot connect to mqtts://svc@.*refused the connection: .*; retrying")
    finally:
        wrong.kill()
    proc = service(EXAMPLE, EXAMPLE_PACKAGE, broker, **env, MQTT_PASSWORD="s3cret!")
    try:
        proc.wait_for(r"connected to mqtts://svc@127\.0\.0\.1:\d+", timeout=20)
    finally:
        proc.kill()
    assert not proc.find_all("without TLS")
    assert not any("s3cret!" in line for line in wrong.lines + proc.lines)


def test_a_password_without_tls_is_warned_about(broker: Broker) -> None:
    proc = service(EXAMPLE, EXAMPLE_PACKAGE, broker, MQTT_USERNAME="u", MQTT_PASSWORD="pw")
    try:
        proc.wait_for(r"WARNING .*MQTT_PASSWORD is sent without TLS")
    finally:
        proc.kill()


def test_tls_files_without_mqtt_tls_mean_tls(
    tmp_path: Path, pki: Path, started: list[Broker]
) -> None:
    """MQTT_CA_FILE set and MQTT_TLS forgotten: the service connects over TLS, not in clear."""
    broker = tls_broker(tmp_path, pki, client_certs=False, password=True)
    broker.start()
    started.append(broker)
    env = {"MQTT_CA_FILE": str(pki / "ca.crt"), "MQTT_USERNAME": "svc", "MQTT_PASSWORD": "s3cret!"}
    proc = service(EXAMPLE, EXAMPLE_PACKAGE, broker, **env)
    try:
        proc.wait_for(r"connected to mqtts://svc@127\.0\.0\.1:\d+", timeout=20)
    finally:
        proc.kill()
    assert not proc.find_all("without TLS")


@pytest.mark.parametrize(
    "files",
    [{"MQTT_CA_FILE": "ca.crt"}, {"MQTT_KEY_FILE": "client.key"},
     {"MQTT_CERT_FILE": "client.crt", "MQTT_KEY_FILE": "client.key"}],
    ids=["ca", "key", "cert and key"],
)  # fmt: skip
def test_a_tls_file_setting_never_lets_the_password_travel_in_clear(
    tmp_path: Path, pki: Path, files: dict[str, str]
) -> None:
    """A plain-TCP listener records what the service sends: a TLS handshake, never the password."""
    received = bytearray()
    with socket.create_server(("127.0.0.1", 0)) as server:
        server.settimeout(20)
        broker = Broker(tmp_path)
        broker.port = server.getsockname()[1]
        env = {name: str(pki / file) for name, file in files.items()}
        env["MQTT_PASSWORD"] = "s3cret!"
        proc = service(EXAMPLE, EXAMPLE_PACKAGE, broker, MQTT_USERNAME="svc", **env)
        try:
            connection, _ = server.accept()
            with connection:
                connection.settimeout(5)
                while len(received) < 64:
                    chunk = connection.recv(65536)
                    if not chunk:
                        break
                    received += chunk
        finally:
            proc.kill()
    assert received, "the service sent nothing"
    assert received[0] == 0x16, "not a TLS handshake record"
    assert b"s3cret!" not in received and b"svc" not in received


def test_mqtt_tls_false_beside_a_tls_file_is_refused_at_start(pki: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", EXAMPLE_PACKAGE],
        cwd=EXAMPLE,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "MQTT_TLS": "false", "MQTT_CA_FILE": str(pki / "ca.crt")},
    )
    assert result.returncode == 2, result.stderr
    assert "invalid settings: MQTT_TLS is false but MQTT_CA_FILE is set" in result.stderr
    assert "Traceback" not in result.stderr
