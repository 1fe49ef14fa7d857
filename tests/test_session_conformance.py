"""Conformance of the MQTT 5 session engine (generator/runtime/v5.py).

Rules a real broker cannot be made to exercise on demand are checked against a scripted peer
that speaks through the same `mqtt5` codec: acknowledgement order, the broker's Receive Maximum,
a redelivered QoS 2 message, a silent broker, a server DISCONNECT. Keep-alive and QoS 2 are also
checked against a real mosquitto."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import mqtt5
import pytest

from generator.runtime import Incoming, MqttClient, Outgoing
from generator.runtime.config import PACKET_HEADROOM
from generator.runtime.connection import SessionState
from generator.runtime.v5 import Mqtt5Connection, open_connection
from tests.peer import (
    PUBACK,
    PUBLISH,
    SUBACK,
    SUBSCRIBE,
    Flood,
    Peer,
    Peer311,
    config,
    raw,
    scripted,
)
from tests.support import Broker


async def connect(port: int, delivered: list[Any], **overrides: Any) -> Mqtt5Connection:
    return await open_connection(
        config(port, **overrides), SessionState(), lambda m, ack: delivered.append((m, ack))
    )


def test_connect_asks_for_a_persistent_session_and_a_receive_maximum() -> None:
    seen: list[mqtt5.ConnectPacket] = []

    async def script(peer: Peer) -> None:
        seen.append(await peer.accept())
        await peer.expect(mqtt5.DisconnectPacket)

    async def scenario() -> None:
        async with scripted(script) as (port, finished):
            connection = await connect(
                port, [], max_pending=250, session_expiry=600, max_payload_bytes=1000
            )
            await connection.disconnect()
            await finished

    asyncio.run(scenario())
    [connect_packet] = seen
    assert connect_packet.clean_start is False
    assert connect_packet.session_expiry_interval == 600
    assert connect_packet.receive_max == 250
    assert connect_packet.topic_alias_max == 0
    assert connect_packet.max_packet_size == 1000 + PACKET_HEADROOM


def test_oversized_publish_is_read_past_without_buffering_it_and_acknowledged() -> None:
    """A broker that ignores our Maximum Packet Size: the 5 MiB message is dropped while it is
    read (the buffer never holds more than a chunk of it), acknowledged so the broker does not
    send it again, reported, and the message after it is delivered."""
    limit = 1 << 20
    big = mqtt5.PublishPacket(
        "big/one", b"x" * (5 << 20), qos=mqtt5.QoS.AT_LEAST_ONCE, packet_id=7
    ).write()
    after = mqtt5.PublishPacket("small/one", b"ok", qos=mqtt5.QoS.AT_LEAST_ONCE, packet_id=8)
    acked: list[int] = []
    largest_buffer = [0]
    holder: list[Mqtt5Connection] = []

    async def script(peer: Peer) -> None:
        await peer.accept()
        for start in range(0, len(big), 64 * 1024):
            peer.writer.write(big[start : start + 64 * 1024])
            await peer.writer.drain()
            await asyncio.sleep(0)
            if holder:
                largest_buffer[0] = max(largest_buffer[0], len(holder[0]._buffer))
        peer.send(after)
        for _ in range(2):
            acked.append((await peer.expect(mqtt5.PubAckPacket)).packet_id)

    async def scenario() -> tuple[list[tuple[str, int]], list[Any]]:
        dropped: list[tuple[str, int]] = []
        delivered: list[Any] = []

        def deliver(message: Incoming, ack: Any) -> None:
            delivered.append(message.topic)
            ack()

        async with scripted(script) as (port, finished):
            connection = await open_connection(
                config(port, max_payload_bytes=limit),
                SessionState(),
                deliver,
                lambda topic, size: dropped.append((topic, size)),
            )
            holder.append(connection)
            async with asyncio.timeout(20):
                await finished
        return dropped, delivered

    dropped, delivered = asyncio.run(scenario())
    assert dropped == [("big/one", len(big))]
    assert delivered == ["small/one"]
    assert acked == [7, 8]
    assert largest_buffer[0] <= 256 * 1024, largest_buffer[0]


def test_pubacks_follow_arrival_order_whatever_order_handlers_finish_in() -> None:
    acked: list[int] = []

    async def script(peer: Peer) -> None:
        await peer.accept()
        peer.send(
            *(
                mqtt5.PublishPacket(f"t/{n}", b"x", qos=mqtt5.QoS.AT_LEAST_ONCE, packet_id=n)
                for n in (1, 2, 3)
            )
        )
        for _ in range(3):
            acked.append((await peer.expect(mqtt5.PubAckPacket)).packet_id)

    async def scenario() -> None:
        delivered: list[Any] = []
        async with scripted(script) as (port, finished):
            await connect(port, delivered)
            async with asyncio.timeout(5):
                while len(delivered) < 3:
                    await asyncio.sleep(0.01)
            delivered[2][1]()  # the handlers of 3 and 2 finish first
            delivered[1][1]()
            await asyncio.sleep(0.2)
            assert acked == [], "an ack went out before an earlier message's"
            delivered[0][1]()
            await finished

    asyncio.run(scenario())
    assert acked == [1, 2, 3]


def test_sending_respects_the_brokers_receive_maximum() -> None:
    most: list[int] = [0]

    async def script(peer: Peer) -> None:
        await peer.accept(receive_max=2)
        unacked: list[int] = []
        handled = 0
        while handled < 10:
            packet = await peer.read()
            assert isinstance(packet, mqtt5.PublishPacket), packet
            unacked.append(packet.packet_id or 0)
            most[0] = max(most[0], len(unacked))
            if len(unacked) == 2 or handled + len(unacked) == 10:
                await asyncio.sleep(0.05)
                for packet_id in unacked:
                    peer.send(mqtt5.PubAckPacket(packet_id))
                handled += len(unacked)
                unacked.clear()

    async def scenario() -> None:
        async with scripted(script) as (port, finished):
            connection = await connect(port, [])
            sends = [connection.publish(Outgoing(f"o/{n}", b"x", qos=1)) for n in range(10)]
            async with asyncio.timeout(10):
                await asyncio.gather(*sends)
            await finished

    asyncio.run(scenario())
    assert most[0] == 2


def test_a_redelivered_qos_2_message_is_handled_once() -> None:
    events: list[str] = []

    async def script(peer: Peer) -> None:
        await peer.accept()
        publish = mqtt5.PublishPacket("t/q2", b"once", qos=mqtt5.QoS.EXACTLY_ONCE, packet_id=9)
        peer.send(publish)
        events.append(f"pubrec {(await peer.expect(mqtt5.PubRecPacket)).packet_id}")
        again = mqtt5.PublishPacket(
            "t/q2", b"once", qos=mqtt5.QoS.EXACTLY_ONCE, packet_id=9, duplicate=True
        )
        peer.send(again)
        events.append(f"pubrec {(await peer.expect(mqtt5.PubRecPacket)).packet_id}")
        peer.send(mqtt5.PubRelPacket(9))
        events.append(f"pubcomp {(await peer.expect(mqtt5.PubCompPacket)).packet_id}")

    async def scenario() -> None:
        delivered: list[Any] = []

        def deliver(message: Incoming, ack: Any) -> None:
            delivered.append(message)
            ack()  # handled at once

        async with scripted(script) as (port, finished):
            await open_connection(config(port), SessionState(), deliver)
            await finished
        assert [m.payload for m in delivered] == [b"once"]

    asyncio.run(scenario())
    assert events == ["pubrec 9", "pubrec 9", "pubcomp 9"]


def test_a_silent_broker_is_detected_by_keep_alive() -> None:
    async def script(peer: Peer) -> None:
        await peer.accept()
        await asyncio.sleep(10)  # reads nothing, answers nothing

    async def scenario() -> None:
        async with scripted(script) as (port, _):
            connection = await connect(port, [], keep_alive=1)
            async with asyncio.timeout(5):
                cause = await connection.closed
        assert "no answer from the broker" in str(cause)

    asyncio.run(scenario())


def test_a_client_that_only_sends_qos_0_pings_and_keeps_the_connection() -> None:
    """Its own sends refresh nothing the broker answers: it must still ping, or it would take
    the broker's silence for a dead link (issue 24.6)."""
    answered = asyncio.Event()

    async def script(peer: Peer) -> None:
        await peer.accept()
        pings = 0
        while True:
            packet = await peer.read(timeout=10)
            if isinstance(packet, mqtt5.PingReqPacket):
                peer.send(mqtt5.PingRespPacket())
                pings += 1
                if pings == 4:
                    answered.set()

    async def scenario() -> None:
        async with scripted(script) as (port, _):
            connection = await connect(port, [], keep_alive=1)

            async def send_forever() -> None:
                while True:
                    await connection.publish(Outgoing("status/me", b"up"))
                    await asyncio.sleep(0.05)

            sending = asyncio.create_task(send_forever())
            pinged = asyncio.create_task(answered.wait())
            await asyncio.wait(
                {pinged, connection.closed}, timeout=15, return_when="FIRST_COMPLETED"
            )
            sending.cancel()
            pinged.cancel()
            assert not connection.closed.done(), connection.closed.result()
            assert answered.is_set()
            await connection.disconnect()

    asyncio.run(scenario())


async def two_in_then_ack_two_sends_v5(peer: Peer) -> list[int]:
    await peer.accept()
    subscribe = await peer.expect(mqtt5.SubscribePacket)
    peer.send(mqtt5.SubAckPacket(subscribe.packet_id, [mqtt5.SubAckReasonCode(1)]))
    peer.send(
        *(
            mqtt5.PublishPacket(f"in/{n}", b"x", qos=mqtt5.QoS.AT_LEAST_ONCE, packet_id=n)
            for n in (1, 2)
        )
    )
    for _ in range(2):
        sent = await peer.expect(mqtt5.PublishPacket)
        peer.send(mqtt5.PubAckPacket(sent.packet_id or 0))
    return [(await peer.expect(mqtt5.PubAckPacket)).packet_id for _ in range(2)]


async def two_in_then_ack_two_sends_v311(peer: Peer311) -> list[int]:
    await peer.accept()
    subscribe = await peer.expect(SUBSCRIBE)
    peer.writer.write(raw(SUBACK, subscribe.packet_id.to_bytes(2) + b"\x01"))
    for n in (1, 2):
        peer.writer.write(raw(PUBLISH, b"\x00\x04in/" + str(n).encode() + n.to_bytes(2) + b"x", 2))
    for _ in range(2):
        peer.ack(PUBACK, (await peer.expect(PUBLISH)).packet_id)
    return [(await peer.expect(PUBACK)).packet_id for _ in range(2)]


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
def test_a_handlers_send_completes_while_delivery_is_paused_at_the_mark(protocol: str) -> None:
    """Both handlers fill the pending mark and send a QoS 1 message each: the broker's PUBACKs
    must still be read, or the handlers wait for them forever and the mark never clears."""
    acked: list[int] = []

    async def script(peer: Any) -> None:
        play = two_in_then_ack_two_sends_v5 if protocol == "5" else two_in_then_ack_two_sends_v311
        acked.extend(await play(peer))

    async def scenario() -> None:
        peer = Peer if protocol == "5" else Peer311
        async with scripted(script, peer=peer) as (port, finished):
            sent: list[str] = []

            async def handle(message: Incoming) -> None:
                await client.publish(Outgoing(f"out/{message.topic}", b"y", qos=1))
                sent.append(message.topic)

            settings = config(port, max_pending=2, protocol=protocol)
            client = MqttClient(settings, [("in/+", 1)], handle)
            serving = asyncio.create_task(client.serve())
            async with asyncio.timeout(10):
                await finished
            assert sorted(sent) == ["in/1", "in/2"]
            await client.stop(5)
            await serving

    asyncio.run(scenario())
    assert acked == [1, 2]


def test_paused_delivery_holds_up_to_the_marks_worth_then_delivers_in_order() -> None:
    """Paused, the engine reads on but delivers nothing; past the mark's worth held it pauses
    the socket too (the rest waits in the broker); resumed, all arrive in order."""
    paused, resumed = asyncio.Event(), asyncio.Event()

    async def script(peer: Peer) -> None:
        await peer.accept()
        await paused.wait()
        peer.send(
            *(
                mqtt5.PublishPacket(f"t/{n}", b"x", qos=mqtt5.QoS.AT_LEAST_ONCE, packet_id=n)
                for n in range(1, 11)
            )
        )
        await resumed.wait()
        for _ in range(10):
            await peer.expect(mqtt5.PubAckPacket)

    async def scenario() -> list[str]:
        delivered: list[str] = []

        def deliver(message: Incoming, ack: Any) -> None:
            delivered.append(message.topic)
            ack()

        async with scripted(script) as (port, finished):
            connection = await open_connection(config(port, max_pending=3), SessionState(), deliver)
            connection.pause_reading()
            paused.set()
            async with asyncio.timeout(5):
                while not connection._socket_paused:
                    await asyncio.sleep(0.01)
            assert delivered == [] and len(connection._held) == 4  # 3 is the mark's worth
            connection.resume_reading()
            resumed.set()
            async with asyncio.timeout(5):
                await finished
        return delivered

    assert asyncio.run(scenario()) == [f"t/{n}" for n in range(1, 11)]


def test_a_server_disconnect_ends_the_connection_with_its_reason() -> None:
    async def script(peer: Peer) -> None:
        await peer.accept()
        peer.send(
            mqtt5.DisconnectPacket(reason_code=mqtt5.DisconnectReasonCode.SERVER_SHUTTING_DOWN)
        )
        await asyncio.sleep(1)

    async def scenario() -> None:
        async with scripted(script) as (port, _):
            connection = await connect(port, [])
            async with asyncio.timeout(5):
                cause = await connection.closed
        assert "server shutting down" in str(cause)

    asyncio.run(scenario())


def test_a_refused_connection_names_the_reason() -> None:
    async def script(peer: Peer) -> None:
        await peer.accept(reason_code=mqtt5.ConnAckReasonCode.NOT_AUTHORIZED)

    async def scenario() -> None:
        async with scripted(script) as (port, _):
            with pytest.raises(Exception, match="not authorized"):
                await connect(port, [])

    asyncio.run(scenario())


def test_keep_alive_holds_an_idle_connection_to_mosquitto(broker: Broker) -> None:
    async def scenario() -> None:
        connection = await open_connection(
            config(broker.port, keep_alive=1), SessionState(), lambda m, a: None
        )
        await asyncio.sleep(3.5)  # mosquitto drops a client silent for 1.5 keep-alives
        assert not connection.closed.done()
        await connection.disconnect()

    asyncio.run(scenario())


def test_keep_alive_holds_a_connection_that_only_sends_qos_0_to_mosquitto(broker: Broker) -> None:
    async def scenario() -> None:
        connection = await open_connection(
            config(broker.port, keep_alive=1), SessionState(), lambda m, a: None
        )
        for _ in range(70):  # 3.5 s: past 1.5 keep-alives with nothing to hear but PINGRESP
            await connection.publish(Outgoing("status/me", b"up"))
            await asyncio.sleep(0.05)
        assert not connection.closed.done(), connection.closed.result()
        await connection.disconnect()

    asyncio.run(scenario())


def test_qos_2_round_trip_through_mosquitto(broker: Broker, tmp_path: Path) -> None:
    async def scenario() -> None:
        received: list[Incoming] = []
        got = asyncio.Event()

        async def handle(message: Incoming) -> None:
            received.append(message)
            got.set()

        client = MqttClient(config(broker.port, client_id="q2"), [("q2/+", 2)], handle)
        serving = asyncio.create_task(client.serve())
        async with asyncio.timeout(10):
            while not client.is_connected:
                await asyncio.sleep(0.01)
            await client.publish(
                Outgoing("q2/a", b"exactly", qos=2, content_type="text/plain", response_topic="r/1")
            )
            await got.wait()
        assert await client.stop(5) == 0
        await serving
        [message] = received
        assert (message.payload, message.qos) == (b"exactly", 2)
        assert (message.content_type, message.response_topic) == ("text/plain", "r/1")

    asyncio.run(scenario())


def test_stop_counts_a_handled_message_waiting_behind_an_unfinished_one_as_left() -> None:
    """Acks go out in arrival order: a message handled after one the service could not finish
    is not acknowledged either, and the broker sends both again; stop() counts every one."""
    handled: list[str] = []
    pubacks: list[int] = []
    blocked = asyncio.Event()

    async def script(peer: Peer) -> None:
        await peer.accept()
        subscribe = await peer.expect(mqtt5.SubscribePacket)
        peer.send(mqtt5.SubAckPacket(subscribe.packet_id, [mqtt5.SubAckReasonCode(1)]))
        peer.send(
            *(
                mqtt5.PublishPacket(topic, b"x", qos=mqtt5.QoS.AT_LEAST_ONCE, packet_id=n)
                for n, topic in ((1, "in/slow"), (2, "in/slow"), (3, "in/fast"))
            )
        )
        while True:
            packet = await peer.read(timeout=10)
            if isinstance(packet, mqtt5.PubAckPacket):
                pubacks.append(packet.packet_id)

    async def scenario() -> int:
        async with scripted(script) as (port, _finished):

            async def handle(message: Incoming) -> None:
                if message.topic == "in/slow":
                    blocked.set()
                    await asyncio.Event().wait()  # never finishes: cancelled at the deadline
                handled.append(message.topic)

            client = MqttClient(config(port), [("in/+", 1)], handle, max_concurrent=2)
            serving = asyncio.create_task(client.serve())
            async with asyncio.timeout(10):
                await blocked.wait()
                while handled != ["in/fast"]:
                    await asyncio.sleep(0.01)
            left = await client.stop(0.2)
            await serving
            return left

    assert asyncio.run(scenario()) == 3  # 1 unfinished, 2 queued, 3 handled but not acked
    assert pubacks == []


def test_qos0_sends_to_a_broker_that_stops_reading_wait_and_leave_the_loop_free() -> None:
    """QoS 0 waits for nothing from the broker: a send loop must still give the event loop its
    turns (keep-alive, acks, the HTTP side) and stop when the socket's buffer is full, instead
    of queueing every message in memory."""
    done = asyncio.Event()

    async def script(peer: Peer) -> None:
        await peer.accept()
        await done.wait()  # never reads again: the socket's buffers fill up

    async def scenario() -> None:
        async with scripted(script) as (port, _finished):
            connection = await connect(port, [])
            flood = Flood(connection.publish, 1024, 200_000)  # 200 MB if nothing held them
            await flood.until_stalled(connection._writable)  # over the socket buffer's mark
            assert flood.ticks_at_first_pause, "the send loop starved the event loop"
            assert flood.sent < 200_000 and not flood.sending.done()
            buffered = connection._transport.get_write_buffer_size() if connection._transport else 0
            assert buffered + sum(map(len, connection._out)) < 4 << 20
            flood.stop()
            done.set()
            connection._close()

    asyncio.run(scenario())


def test_a_broker_that_never_answers_subscribe_fails_the_connection_in_time() -> None:
    """CONNACK, then silence (PINGREQ would still be answered): check() and start-up give up
    after the connect timeout with the reason, instead of waiting for a SUBACK forever."""
    done = asyncio.Event()

    async def script(peer: Peer) -> None:
        await peer.accept()
        await peer.expect(mqtt5.SubscribePacket)
        await done.wait()

    async def scenario() -> str | None:
        async with scripted(script) as (port, _finished):
            client = MqttClient(config(port, connect_timeout=0.5), [("in/+", 1)], _nothing)
            async with asyncio.timeout(10):
                why = await client.check()
            done.set()
            return why

    assert asyncio.run(scenario()) == "the broker did not answer SUBSCRIBE within 0.5 s"


async def _nothing(message: Incoming) -> None:
    return None
