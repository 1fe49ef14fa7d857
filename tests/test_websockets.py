"""MQTT over WebSockets against aedes (with `ws`): a document whose server says `ws` gets a
service that connects over WebSockets at the server's path, with either engine; settings
override the transport and path; `wss` is TLS; a refused upgrade is one clear line. The framing
itself is tested without a socket."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from generator.runtime.errors import ConnectError
from generator.runtime.websocket import (
    FrameError,
    FrameTooLarge,
    WebSocketProtocol,
    check_handshake,
    frame,
    handshake_request,
    parse_frame,
)
from tests.matrix import Aedes, running_aedes
from tests.support import (
    REPO,
    Process,
    cli,
    free_port,
    generated_project,
    service,
    wait_until,
)
from tests.test_delivery import HANDLER, PACKAGE, Jobs
from tests.test_tls import pki  # noqa: F401  (a fixture: the certificates for wss)

SPEC = REPO / "tests" / "specs" / "delivery-3.0.yaml"


def ws_spec(folder: Path, protocol: str, pathname: str) -> Path:
    """The delivery document with its server moved to MQTT over WebSockets."""
    text = SPEC.read_text().replace(
        "    host: localhost:1883\n    protocol: mqtt\n",
        f"    host: localhost:9001\n    pathname: {pathname}\n    protocol: {protocol}\n",
    )
    assert f"protocol: {protocol}" in text
    path = folder / "asyncapi.yaml"
    path.write_text(text)
    return path


@pytest.fixture(scope="module")
def ws_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("ws")
    folder = tmp_path_factory.mktemp("ws-spec")
    spec = ws_spec(folder, "ws", "/gateway/mqtt")
    return generated_project(out, spec, {f"{PACKAGE}/handlers/jobs.py": HANDLER})


@pytest.fixture
def aedes(tmp_path: Path) -> Iterator[Aedes]:
    with running_aedes(tmp_path, ws_path="/gateway/mqtt") as broker:
        yield broker


def start(project: Path, broker: Aedes, record: Path, **env: str) -> Process:
    return service(
        project,
        PACKAGE,
        broker,
        MQTT_PORT=str(broker.ws_port),
        MQTT_CLIENT_ID=f"ws-{free_port()}",
        HANDLED_FILE=str(record),
        **env,
    )


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
def test_a_ws_server_in_the_document_means_websockets(
    ws_project: Path, aedes: Aedes, tmp_path: Path, protocol: str
) -> None:
    record = tmp_path / "handled.txt"
    proc = start(ws_project, aedes, record, MQTT_PROTOCOL=protocol)
    try:
        proc.wait_for(rf"connected to ws://127\.0\.0\.1:{aedes.ws_port}/gateway/mqtt", timeout=20)
        jobs = Jobs(ws_project, aedes, tmp_path)
        jobs.queue(range(200))  # over TCP, from mosquitto_pub
        wait_until(lambda: len(set(jobs.handled())) >= 200, 60, "200 jobs over WebSockets")
    finally:
        proc.kill()
    assert set(jobs.handled()) == set(range(200))


def test_settings_override_the_transport_and_path(tmp_path: Path) -> None:
    """A plain `mqtt` document, sent over WebSockets by MQTT_TRANSPORT and MQTT_WS_PATH."""
    out = generated_project(tmp_path / "plain", SPEC, {f"{PACKAGE}/handlers/jobs.py": HANDLER})
    with running_aedes(tmp_path, ws_path="/elsewhere") as broker:
        proc = start(
            out, broker, tmp_path / "handled.txt",
            MQTT_TRANSPORT="websockets", MQTT_WS_PATH="/elsewhere",
        )  # fmt: skip
        try:
            proc.wait_for(rf"connected to ws://127\.0\.0\.1:{broker.ws_port}/elsewhere")
        finally:
            proc.kill()


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
def test_a_wrong_path_is_one_clear_line_and_retried(
    ws_project: Path, aedes: Aedes, tmp_path: Path, protocol: str
) -> None:
    proc = start(
        ws_project, aedes, tmp_path / "handled.txt", MQTT_PROTOCOL=protocol, MQTT_WS_PATH="/nope"
    )
    try:
        found = proc.wait_for(r"WARNING .*cannot connect to ws://[^ ]+/nope: (.*); retrying")
        assert "Traceback" not in "\n".join(proc.lines)
    finally:
        proc.kill()
    print(found.group(1))
    if protocol == "5":
        assert "WebSocket upgrade was refused" in found.group(1)


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
def test_wss_is_websockets_over_tls(
    tmp_path: Path,
    pki: Path,  # noqa: F811  (the fixture imported above)
    protocol: str,
) -> None:
    folder = tmp_path / "spec"
    folder.mkdir()
    spec = ws_spec(folder, "wss", "/mqtt")
    out = generated_project(tmp_path / "wss", spec, {f"{PACKAGE}/handlers/jobs.py": HANDLER})
    tls = (pki / "server.crt", pki / "server.key")
    with running_aedes(tmp_path, tls=tls) as broker:
        record = tmp_path / "handled.txt"
        proc = start(out, broker, record, MQTT_PROTOCOL=protocol, MQTT_CA_FILE=str(pki / "ca.crt"))
        try:
            proc.wait_for(rf"connected to wss://127\.0\.0\.1:{broker.ws_port}/mqtt", timeout=20)
            jobs = Jobs(out, broker, tmp_path)
            jobs.queue(range(20))
            wait_until(lambda: len(set(jobs.handled())) >= 20, 60, "20 jobs over wss")
        finally:
            proc.kill()


@pytest.mark.parametrize("protocol", ["ws", "wss"])
def test_ws_servers_are_served_not_warned_about(tmp_path: Path, protocol: str) -> None:
    spec = ws_spec(tmp_path, protocol, "/gateway/mqtt")
    result = cli("generate", str(spec), "--output", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    assert "not served" not in result.stdout + result.stderr
    settings = (tmp_path / "out" / PACKAGE / "settings.py").read_text()
    assert 'mqtt_transport: Literal["tcp", "websockets"] = "websockets"' in settings
    assert '"/gateway/mqtt"' in settings
    assert f"mqtt_tls: bool = {protocol == 'wss'}" in settings


def test_a_path_that_would_break_the_request_line_is_refused(ws_project: Path) -> None:
    """MQTT_WS_PATH with a space is refused at start, in one line, by the settings; the runtime
    refuses one too, before writing anything."""
    env = {"MQTT_WS_PATH": "/a b", "MQTT_PORT": "1", "HANDLED_FILE": str(ws_project / "h.txt")}
    proc = Process([sys.executable, "-m", PACKAGE, "check-config"], ws_project, env)
    assert proc.popen.wait(60) != 0
    output = "\n".join(proc.find_all(""))
    assert "MQTT_WS_PATH" in output.upper() and "Traceback" not in output, output
    with pytest.raises(ConnectError, match="must start with / and have no spaces"):
        handshake_request("127.0.0.1", 1, "/a\r\nX-Injected: 1", "key")


# -- the framing, without a socket -------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, 125, 126, 65_535, 65_536, 300_000])
def test_a_frame_reads_back_whole_and_not_before(size: int) -> None:
    payload = os.urandom(size)
    data = frame(0x2, payload)
    assert data[1] & 0x80, "a client's frames are masked"
    assert parse_frame(data[:-1], masked=True) is None or size == 0
    opcode, read, end = parse_frame(data + b"next", masked=True)  # type: ignore[misc]
    assert (opcode, read, end) == (0x2, payload, len(data))


def test_masking_follows_rfc_6455() -> None:
    """RFC 6455 section 5.7: "Hello" masked with 37 fa 21 3d."""
    data = frame(0x1, b"Hello", mask=bytes.fromhex("37fa213d"))
    assert data == bytes.fromhex("818537fa213d7f9f4d5158")


def answer(
    key: str,
    protocol: str = "mqtt",
    status: str = "101 Switching Protocols",
    upgrade: str = "Upgrade: websocket\r\nConnection: Upgrade",
) -> bytes:
    accept = base64.b64encode(
        hashlib.sha1(key.encode() + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest()
    ).decode()
    return (
        f"HTTP/1.1 {status}\r\n{upgrade}\r\n"
        f"Sec-WebSocket-Accept: {accept}\r\nSec-WebSocket-Protocol: {protocol}"
    ).encode()


def test_the_handshake_answer_is_checked() -> None:
    key = "dGhlIHNhbXBsZSBub25jZQ=="
    check_handshake(answer(key), key)
    with pytest.raises(ConnectError, match=r"refused: .*404 Not Found"):
        check_handshake(answer(key, status="404 Not Found"), key)
    with pytest.raises(ConnectError, match="subprotocol 'mqtt'"):
        check_handshake(answer(key, protocol="chat"), key)
    with pytest.raises(ConnectError, match="Sec-WebSocket-Accept"):
        check_handshake(answer("another"), key)
    check_handshake(
        answer(key, upgrade="upgrade: WebSocket\r\nconnection: keep-alive, Upgrade"), key
    )
    for wrong in (
        "Connection: Upgrade",
        "Upgrade: h2c\r\nConnection: Upgrade",
        "Upgrade: websocket",
    ):
        with pytest.raises(ConnectError, match="without Upgrade: websocket"):
            check_handshake(answer(key, upgrade=wrong), key)


@pytest.mark.parametrize(
    ("header", "why"),
    [
        (bytes([0xC2, 1]), "reserved bits"),  # RSV1 on a binary frame
        (bytes([0x81, 1]), "text frame"),
        (bytes([0x83, 1]), "frame of opcode 0x3"),
        (bytes([0x8B, 1]), "frame of opcode 0xb"),
        (bytes([0x82, 0x81]) + b"mask", "masked"),
        (bytes([0x89, 126, 0, 126]), "control frame"),  # a 126-byte ping
        (bytes([0x09, 1]), "control frame"),  # a fragmented ping
    ],
    ids=["rsv", "text", "reserved-data", "reserved-control", "masked", "long-ping", "frag-ping"],
)
def test_a_frame_the_protocol_forbids_is_refused(header: bytes, why: str) -> None:
    with pytest.raises(FrameError, match=why):
        parse_frame(header + b"x" * 200)


class Recorder(asyncio.Protocol):
    """The engine's side: what it was given, and how (and how often) it heard of the end."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.lost: Exception | None = None
        self.losses = 0

    def data_received(self, data: bytes) -> None:
        self.data += data

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost, self.losses = exc, self.losses + 1


class FakeSocket(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.written = bytearray()
        self.closed = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written += data

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed


def opened(engine: Recorder, **options: int) -> tuple[WebSocketProtocol, FakeSocket]:
    """A WebSocketProtocol over a FakeSocket, its upgrade request sent and not yet answered."""
    protocol = WebSocketProtocol(lambda: engine, "127.0.0.1", 1, "/mqtt", **options)
    socket = FakeSocket()
    protocol.connection_made(socket)
    return protocol, socket


def accepted(socket: FakeSocket) -> bytes:
    """The broker's answer to the upgrade request the protocol wrote, and the blank line."""
    key = socket.written.split(b"Sec-WebSocket-Key: ")[1].split(b"\r\n")[0].decode()
    return answer(key) + b"\r\n\r\n"


def test_frames_split_anywhere_reach_the_engine_in_order_and_pings_are_answered() -> None:
    async def scenario() -> tuple[Recorder, FakeSocket]:
        recorder = Recorder()
        protocol, socket = opened(recorder)
        unmasked = [bytes([0x82, 3]) + b"abc", bytes([0x89, 1]) + b"p", bytes([0x82, 2]) + b"de"]
        stream = accepted(socket) + b"".join(unmasked)
        for index in range(len(stream)):  # one byte at a time
            protocol.data_received(stream[index : index + 1])
        assert protocol.upgraded.done()
        return recorder, socket

    recorder, socket = asyncio.run(scenario())
    assert bytes(recorder.data) == b"abcde"
    pong = socket.written.split(b"\r\n\r\n", 1)[1]
    assert parse_frame(pong, masked=True) == (0xA, b"p", len(pong))


def test_a_frame_larger_than_the_limit_ends_the_connection_before_it_is_read() -> None:
    """A header announcing 1 GiB: the connection ends at once, with the reason, instead of
    the frame being buffered as it arrives (MAX_PAYLOAD_BYTES would not bound it)."""

    async def scenario() -> tuple[Recorder, WebSocketProtocol, FakeSocket]:
        engine = Recorder()
        protocol, socket = opened(engine, max_frame=1 << 20)
        protocol.data_received(accepted(socket) + bytes([0x82, 127]) + (1 << 30).to_bytes(8))
        protocol.data_received(b"x" * (1 << 20))
        return engine, protocol, socket

    engine, protocol, socket = asyncio.run(scenario())
    assert isinstance(engine.lost, FrameTooLarge) and "1,073,741,824 bytes" in str(engine.lost)
    assert socket.closed and len(protocol._buffer) < 1 << 20 and engine.data == b""


def test_nothing_after_a_close_frame_reaches_the_engine() -> None:
    async def scenario() -> Recorder:
        recorder = Recorder()
        protocol, socket = opened(recorder)
        frames = bytes([0x82, 2]) + b"ab" + bytes([0x88, 2]) + b"\x03\xe8"
        protocol.data_received(accepted(socket) + frames + bytes([0x82, 3]) + b"xyz")
        protocol.data_received(bytes([0x82, 1]) + b"z")
        return recorder

    assert bytes(asyncio.run(scenario()).data) == b"ab"


def test_a_text_frame_ends_the_connection_after_what_came_before_it() -> None:
    """MQTT-6.0.0-1: MQTT travels in binary frames; any other data frame closes the connection.
    The data before it is the engine's; nothing after it is."""

    async def scenario() -> tuple[Recorder, FakeSocket]:
        engine = Recorder()
        protocol, socket = opened(engine)
        frames = bytes([0x82, 2]) + b"ab" + bytes([0x81, 2]) + b"cd" + bytes([0x82, 2]) + b"ef"
        protocol.data_received(accepted(socket) + frames)
        protocol.connection_lost(None)  # the aborted socket then says it closed
        return engine, socket

    engine, socket = asyncio.run(scenario())
    assert isinstance(engine.lost, FrameError) and "text frame" in str(engine.lost)
    assert engine.losses == 1, "the engine heard of the end more than once"
    assert socket.closed and bytes(engine.data) == b"ab"  # what came before it, not after
