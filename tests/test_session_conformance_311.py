"""Conformance of the MQTT 3.1.1 session engine (generator/runtime/v311.py, paho with manual
acknowledgement) against a scripted peer speaking raw 3.1.1 packets (`tests.peer.Peer311`):
the same rules the MQTT 5 engine is held to in test_session_conformance.py. Acknowledgement
order, keep-alive while delivery is paused, redelivery in both directions, a refused CONNACK,
a server that hangs up, a broker that goes silent."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from generator.runtime import Incoming, Outgoing
from generator.runtime.connection import SessionState
from generator.runtime.errors import ConnectError
from generator.runtime.v311 import Mqtt311Connection, open_connection
from tests.peer import (
    DISCONNECT,
    PUBACK,
    PUBCOMP,
    PUBLISH,
    PUBREC,
    PUBREL,
    Flood,
    Peer311,
    config,
    publish_311,
    raw,
    scripted,
)


async def connect(
    port: int, deliver: Any, session: SessionState | None = None, **overrides: Any
) -> Mqtt311Connection:
    settings = config(port, protocol="3.1.1", **overrides)
    return await open_connection(settings, session or SessionState(), deliver)


def run(scenario: Any) -> Any:
    return asyncio.run(scenario())


def test_connect_asks_for_a_persistent_session_with_the_keep_alive() -> None:
    seen = []

    async def script(peer: Peer311) -> None:
        seen.append(await peer.accept())
        await peer.expect(DISCONNECT)

    async def scenario() -> None:
        async with scripted(script, peer=Peer311) as (port, finished):
            connection = await connect(port, lambda m, a: None, keep_alive=17)
            await connection.disconnect()
            await asyncio.wait_for(finished, 5)

    run(scenario)
    body = seen[0].body
    assert body[:7] == b"\x00\x04MQTT\x04", "protocol name and level 4 (3.1.1)"
    assert not body[7] & 0x02, "clean session off: the broker keeps the session"
    assert int.from_bytes(body[8:10]) == 17


def test_pubacks_follow_arrival_order_whatever_order_handlers_finish_in() -> None:
    acked: list[int] = []

    async def script(peer: Peer311) -> None:
        await peer.accept()
        for n in (1, 2, 3):
            peer.writer.write(publish_311(f"t/{n}", b"x", 1, n))
        for _ in range(3):
            acked.append((await peer.expect(PUBACK)).packet_id)

    async def scenario() -> None:
        delivered: list[Any] = []
        async with scripted(script, peer=Peer311) as (port, finished):
            await connect(port, lambda m, ack: delivered.append(ack))
            async with asyncio.timeout(5):
                while len(delivered) < 3:
                    await asyncio.sleep(0.01)
            delivered[2]()  # the handlers of 3 and 2 finish first
            delivered[1]()
            await asyncio.sleep(0.2)
            assert acked == [], "an ack went out before an earlier message's"
            delivered[0]()
            await asyncio.wait_for(finished, 5)

    run(scenario)
    assert acked == [1, 2, 3]


def test_keep_alive_goes_on_while_delivery_and_the_socket_are_paused() -> None:
    """Paused past the mark's worth, the socket is not read; the broker must still hear a
    PINGREQ within the keep-alive, and the unread answers are not taken for silence."""
    pings: list[int] = []

    async def script(peer: Peer311) -> None:
        await peer.accept()
        for n in range(1, 21):
            peer.writer.write(publish_311(f"t/{n}", b"x", 1, n))
        await asyncio.sleep(3.5)  # 3.5 keep-alives, reading (and answering) what comes
        deadline = asyncio.get_running_loop().time() + 3.5
        while asyncio.get_running_loop().time() < deadline:
            try:
                await peer.read(timeout=deadline - asyncio.get_running_loop().time())
            except TimeoutError:
                break
        pings.append(peer.pings)

    async def scenario() -> None:
        async with scripted(script, peer=Peer311) as (port, finished):
            connection = await connect(port, lambda m, a: None, keep_alive=1, max_pending=2)
            connection.pause_reading()
            async with asyncio.timeout(10):
                await finished
            assert not connection.closed.done(), connection.closed.result()
            assert connection._socket_paused, "the test meant the socket to be paused"
            await connection.disconnect()

    run(scenario)
    assert pings[0] >= 3, f"only {pings[0]} PINGREQ in 3.5 s with a 1 s keep-alive"


def test_unacknowledged_sends_go_again_with_dup_when_the_session_resumes() -> None:
    first_ids: list[int] = []
    again: list[tuple[int, bool]] = []

    async def drop_after_publish(peer: Peer311) -> None:
        await peer.accept()
        first_ids.append((await peer.expect(PUBLISH)).packet_id)
        peer.writer.close()  # hang up without acknowledging it

    async def resume(peer: Peer311) -> None:
        await peer.accept(session_present=True)
        packet = await peer.expect(PUBLISH)
        again.append((packet.packet_id, packet.duplicate))
        peer.ack(PUBACK, packet.packet_id)

    async def scenario() -> None:
        session = SessionState()
        async with scripted(drop_after_publish, resume, peer=Peer311) as (port, finished):
            connection = await connect(port, lambda m, a: None, session)
            sending = asyncio.create_task(connection.publish(Outgoing("out/1", b"x", qos=1)))
            async with asyncio.timeout(5):
                await connection.closed
            connection = await connect(port, lambda m, a: None, session)
            assert connection.resent == 1
            async with asyncio.timeout(5):
                await sending  # completed by the PUBACK on the second connection
                await finished

    run(scenario)
    assert again == [(first_ids[0], True)]


def test_a_redelivered_qos_1_message_is_delivered_and_acknowledged_again() -> None:
    """At least once: a copy the broker sends again (DUP) after a drop is handled and acked."""
    acked: list[int] = []

    async def first(peer: Peer311) -> None:
        await peer.accept()
        peer.writer.write(publish_311("t/1", b"job", 1, 5))
        await asyncio.sleep(0.2)
        peer.writer.close()  # before its PUBACK: the handler had not finished

    async def second(peer: Peer311) -> None:
        await peer.accept(session_present=True)
        peer.writer.write(publish_311("t/1", b"job", 1, 5, dup=True))
        acked.append((await peer.expect(PUBACK)).packet_id)

    async def scenario() -> list[bytes]:
        delivered: list[tuple[Incoming, Any]] = []
        session = SessionState()
        async with scripted(first, second, peer=Peer311) as (port, finished):
            connection = await connect(port, lambda m, a: delivered.append((m, a)), session)
            async with asyncio.timeout(5):
                await connection.closed
            await connect(port, lambda m, a: (delivered.append((m, a)), a()), session)
            async with asyncio.timeout(5):
                await finished
        return [message.payload for message, _ in delivered]

    assert run(scenario) == [b"job", b"job"]
    assert acked == [5]


def test_qos_2_in_is_recorded_then_completed_after_handling() -> None:
    events: list[str] = []

    async def script(peer: Peer311) -> None:
        await peer.accept()
        peer.writer.write(publish_311("t/q2", b"once", 2, 9))
        events.append(f"pubrec {(await peer.expect(PUBREC)).packet_id}")
        peer.ack(PUBREL, 9)
        events.append(f"pubcomp {(await peer.expect(PUBCOMP)).packet_id}")

    async def scenario() -> list[bytes]:
        delivered: list[bytes] = []

        def deliver(message: Incoming, ack: Any) -> None:
            delivered.append(message.payload)
            ack()

        async with scripted(script, peer=Peer311) as (port, finished):
            await connect(port, deliver)
            await asyncio.wait_for(finished, 5)
        return delivered

    assert run(scenario) == [b"once"]
    assert events == ["pubrec 9", "pubcomp 9"]


@pytest.mark.parametrize(
    ("code", "words"),
    [
        (2, "client identifier not valid"),
        (4, "bad user name or password"),
        (5, "not authorized"),
    ],
)
def test_a_refused_connack_names_the_reason(code: int, words: str) -> None:
    """(Return code 1, unacceptable protocol version, is not here: paho answers it by trying
    again with MQTT 3.1, which this engine does not speak.)"""

    async def script(peer: Peer311) -> None:
        await peer.accept(code=code)
        await asyncio.sleep(1)

    async def scenario() -> None:
        async with scripted(script, peer=Peer311) as (port, _):
            with pytest.raises(ConnectError, match=f"refused the connection: {words}$"):
                await connect(port, lambda m, a: None)

    run(scenario)


def test_a_server_hang_up_ends_the_connection_and_fails_nothing_already_acknowledged() -> None:
    async def script(peer: Peer311) -> None:
        await peer.accept()
        peer.ack(PUBACK, (await peer.expect(PUBLISH)).packet_id)
        await asyncio.sleep(0.1)
        peer.writer.close()

    async def scenario() -> str:
        async with scripted(script, peer=Peer311) as (port, _):
            connection = await connect(port, lambda m, a: None)
            await asyncio.wait_for(connection.publish(Outgoing("out/1", b"x", qos=1)), 5)
            async with asyncio.timeout(5):
                cause = await connection.closed
            with pytest.raises(Exception, match="not connected"):
                await connection.publish(Outgoing("out/2", b"x", qos=1))
        return str(cause)

    assert "connection lost" in run(scenario)


def test_a_silent_broker_is_detected_by_keep_alive() -> None:
    async def script(peer: Peer311) -> None:
        await peer.accept()
        await asyncio.sleep(10)  # reads nothing, answers nothing

    async def scenario() -> None:
        async with scripted(script, peer=Peer311) as (port, _):
            connection = await connect(port, lambda m, a: None, keep_alive=1)
            async with asyncio.timeout(6):
                cause = await connection.closed
        assert "connection lost" in str(cause)

    run(scenario)


def test_pingreq_is_sent_when_idle() -> None:
    pings: list[int] = []

    async def script(peer: Peer311) -> None:
        await peer.accept()
        with pytest.raises(TimeoutError):
            await peer.read(timeout=3)
        pings.append(peer.pings)
        peer.writer.write(raw(PUBACK, b"\x00\x01"))  # unexpected: ignored by the client

    async def scenario() -> None:
        async with scripted(script, peer=Peer311) as (port, finished):
            connection = await connect(port, lambda m, a: None, keep_alive=1)
            await asyncio.wait_for(finished, 6)
            assert not connection.closed.done()
            await connection.disconnect()

    run(scenario)
    assert pings[0] >= 2


@pytest.mark.parametrize("size", [1024, 100])
def test_qos0_sends_to_a_broker_that_stops_reading_wait_instead_of_piling_up(size: int) -> None:
    """paho queues a QoS 0 message and returns; with a broker that stops reading, a send loop
    would queue without end. Past the mark, a send waits until paho has written (while the
    event loop runs on), so what paho holds stays bounded in bytes, and in messages when they
    are small (each costs paho about 2 KiB besides its payload)."""
    done = asyncio.Event()

    async def script(peer: Peer311) -> None:
        await peer.accept()
        await done.wait()  # never reads again: the socket's buffers fill up

    async def scenario() -> None:
        async with scripted(script, peer=Peer311) as (port, _finished):
            connection = await connect(port, lambda m, a: None)
            flood = Flood(connection.publish, size, 200_000)  # 200 MB if nothing held them
            await flood.until_stalled(connection._writable)  # paho holds more than the mark
            assert flood.sent < 200_000 and not flood.sending.done()
            held = sum(len(packet["packet"]) for packet in connection._client._out_packet)
            assert held < 5 << 20, f"paho holds {held} bytes"
            most = (4 << 20) // (size + 2048) + 1  # the mark, each message costing 2 KiB more
            assert len(connection._client._out_packet) <= most, "too many messages held"
            flood.stop()
            done.set()
            await connection.disconnect()

    run(scenario)
