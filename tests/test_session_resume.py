"""Sends survive a reconnect: packet ids and unacknowledged QoS 1/2 messages belong to the
session. After a CONNACK with session present, every unacknowledged PUBLISH goes out again with
DUP set and every PUBREL owed, in their original order, before anything new [MQTT-4.4.0-1,
MQTT-4.6.0-1]; without the session they fail, saying why. Each step is played by a scripted
broker, one script per connection: the MQTT 5 engine, then paho under MQTT 3.1.1."""

from __future__ import annotations

import asyncio
from typing import Any

import mqtt5
import pytest

from generator.runtime import ClientConfig, MqttClient, Outgoing, PublishError
from generator.runtime.connection import Connection, SessionState
from generator.runtime.v5 import Mqtt5Connection, open_connection
from generator.runtime.v311 import open_connection as open_311
from tests.peer import (
    DISCONNECT,
    PUBACK,
    PUBCOMP,
    PUBLISH,
    PUBREC,
    PUBREL,
    Peer,
    Peer311,
    Raw,
    config,
    scripted,
)

QOS = {1: mqtt5.QoS.AT_LEAST_ONCE, 2: mqtt5.QoS.EXACTLY_ONCE}


async def reconnect(session: SessionState, port: int, **overrides: Any) -> Mqtt5Connection:
    return await open_connection(config(port, **overrides), session, lambda m, a: None)


def sending(connection: Connection, *messages: tuple[str, int]) -> list[asyncio.Task[None]]:
    return [
        asyncio.create_task(connection.publish(Outgoing(topic, b"x", qos=qos)))
        for topic, qos in messages
    ]


async def read_publishes(peer: Peer, count: int) -> dict[str, mqtt5.PublishPacket]:
    found = {}
    for _ in range(count):
        packet = await peer.expect(mqtt5.PublishPacket)
        found[packet.topic] = packet
    return found


def describe(packet: Any) -> tuple[str, int, bool]:
    if isinstance(packet, mqtt5.PublishPacket):
        return f"PUBLISH {packet.topic}", packet.packet_id or 0, packet.duplicate
    return type(packet).__name__, packet.packet_id, False


def test_a_resumed_session_resends_publish_with_dup_and_pubrel_in_order_before_new_sends() -> None:
    first: dict[str, mqtt5.PublishPacket] = {}
    second: list[tuple[str, int, bool]] = []

    async def before_the_drop(peer: Peer) -> None:
        await peer.accept()
        first.update(await read_publishes(peer, 3))
        peer.send(mqtt5.PubRecPacket(first["b"].packet_id or 0))  # b, QoS 2, reaches PUBREL
        await peer.expect(mqtt5.PubRelPacket)
        peer.writer.close()  # nothing else acknowledged

    async def after(peer: Peer) -> None:
        await peer.accept(session_present=True)
        for _ in range(4):
            second.append(describe(await peer.expect(mqtt5.PublishPacket | mqtt5.PubRelPacket)))
        for name, packet_id, _ in second:
            reply = mqtt5.PubCompPacket if name == "PubRelPacket" else mqtt5.PubAckPacket
            peer.send(reply(packet_id))
        await peer.expect(mqtt5.DisconnectPacket)

    async def scenario() -> None:
        session = SessionState()
        async with scripted(before_the_drop, after) as (port, finished):
            one = await reconnect(session, port)
            sends = sending(one, ("a", 1), ("b", 2), ("c", 1))
            async with asyncio.timeout(10):
                await one.closed
                two = await reconnect(session, port)
                assert two.resent == 3
                sends += sending(two, ("d", 1))
                await asyncio.gather(*sends)  # every sender hears of its acknowledgement
                await two.disconnect()
                await finished

    asyncio.run(scenario())
    ids = {topic: packet.packet_id for topic, packet in first.items()}
    assert second[:3] == [
        ("PUBLISH a", ids["a"], True),
        ("PubRelPacket", ids["b"], False),
        ("PUBLISH c", ids["c"], True),
    ]
    name, new_id, duplicate = second[3]
    assert (name, duplicate) == ("PUBLISH d", False)
    assert new_id not in ids.values(), "a packet id still in flight was given to a new message"


def test_without_the_session_unacknowledged_sends_fail_clearly_and_are_not_resent() -> None:
    after_drop: list[tuple[str, int, bool]] = []

    async def before_the_drop(peer: Peer) -> None:
        await peer.accept()
        found = await read_publishes(peer, 2)
        peer.send(mqtt5.PubRecPacket(found["b"].packet_id or 0))
        await peer.expect(mqtt5.PubRelPacket)
        peer.writer.close()

    async def after(peer: Peer) -> None:
        await peer.accept(session_present=False)  # the broker restarted without persistence
        packet = await peer.expect(mqtt5.PublishPacket | mqtt5.PubRelPacket)
        after_drop.append(describe(packet))
        peer.send(mqtt5.PubAckPacket(packet.packet_id))
        await peer.expect(mqtt5.DisconnectPacket)

    async def scenario() -> None:
        session = SessionState()
        async with scripted(before_the_drop, after) as (port, finished):
            one = await reconnect(session, port)
            sends = sending(one, ("a", 1), ("b", 2))
            async with asyncio.timeout(10):
                await one.closed
                two = await reconnect(session, port)
                assert two.resent == 0
                for send in sends:
                    with pytest.raises(PublishError, match="the broker kept no session"):
                        await send
                await two.publish(Outgoing("d", b"x", qos=1))
                await two.disconnect()
                await finished

    asyncio.run(scenario())
    assert [name for name, _, _ in after_drop] == ["PUBLISH d"]


def test_with_a_clean_session_a_drop_fails_the_sends_at_once() -> None:
    async def drop(peer: Peer) -> None:
        await peer.accept()
        await peer.expect(mqtt5.PublishPacket)
        peer.writer.close()

    async def scenario() -> None:
        async with scripted(drop) as (port, _):
            one = await reconnect(SessionState(), port, clean_start=True)
            [send] = sending(one, ("a", 1))
            async with asyncio.timeout(5):
                with pytest.raises(PublishError, match="may or may not have it"):
                    await send

    asyncio.run(scenario())


def test_resends_wait_for_the_new_connections_receive_maximum() -> None:
    """The resumed connection allows one message in flight: each resend waits for the previous
    one's PUBACK (a second packet within 0.2 s of the first would break the limit)."""
    extra: list[object] = []

    async def before_the_drop(peer: Peer) -> None:
        await peer.accept()
        await read_publishes(peer, 4)
        peer.writer.close()

    async def after(peer: Peer) -> None:
        await peer.accept(session_present=True, receive_max=1)
        for _ in range(4):
            packet = await peer.expect(mqtt5.PublishPacket)
            try:
                extra.append(await peer.read(timeout=0.2))
            except TimeoutError:
                extra.append(None)
            peer.send(mqtt5.PubAckPacket(packet.packet_id or 0))
        await peer.expect(mqtt5.DisconnectPacket)

    async def scenario() -> None:
        session = SessionState()
        async with scripted(before_the_drop, after) as (port, finished):
            one = await reconnect(session, port)
            sends = sending(one, *((f"t/{n}", 1) for n in range(4)))
            async with asyncio.timeout(15):
                await one.closed
                two = await reconnect(session, port)
                await asyncio.gather(*sends)
                await two.disconnect()
                await finished

    asyncio.run(scenario())
    assert extra == [None] * 4


def test_a_send_while_disconnected_waits_bounded_in_count_and_in_time() -> None:
    async def scenario() -> None:
        nowhere = ClientConfig(host="127.0.0.1", port=1, publish_timeout=0.3, max_waiting_sends=2)
        client = MqttClient(nowhere, [], lambda m: asyncio.sleep(0))
        waiting = [asyncio.create_task(client.publish(Outgoing("t", b"x", qos=1))) for _ in "ab"]
        await asyncio.sleep(0)  # both are waiting for a connection now
        with pytest.raises(PublishError, match="2 sends already wait for a connection"):
            await client.publish(Outgoing("t", b"x", qos=1))
        for send in waiting:
            with pytest.raises(PublishError, match=r"within 0.3 s \(not connected\)"):
                await send

    asyncio.run(scenario())


async def reconnect_311(session: SessionState, port: int, **overrides: Any) -> Connection:
    settings = config(port, protocol="3.1.1", **overrides)
    return await open_311(settings, session, lambda m, a: None)


def named(packet: Raw) -> tuple[str, int, bool]:
    name = f"PUBLISH {packet.topic}" if packet.kind == PUBLISH else "PUBREL"
    return name, packet.packet_id, packet.duplicate


def test_mqtt_3_1_1_a_resumed_session_resends_in_order_before_new_sends() -> None:
    """paho sends its unacknowledged messages again itself: the runtime keeps one paho client
    for the whole session, so they are still there, with their packet ids."""
    first: dict[str, int] = {}
    second: list[tuple[str, int, bool]] = []

    async def before_the_drop(peer: Peer311) -> None:
        await peer.accept()
        for _ in range(3):
            packet = await peer.expect(PUBLISH)
            first[packet.topic] = packet.packet_id
        peer.ack(PUBREC, first["b"])
        await peer.expect(PUBREL)
        peer.writer.close()

    async def after(peer: Peer311) -> None:
        await peer.accept(session_present=True)
        for _ in range(4):
            second.append(named(await peer.expect(PUBLISH, PUBREL)))
        for name, packet_id, _ in second:
            peer.ack(PUBCOMP if name == "PUBREL" else PUBACK, packet_id)
        await peer.expect(DISCONNECT)

    async def scenario() -> None:
        session = SessionState()
        async with scripted(before_the_drop, after, peer=Peer311) as (port, finished):
            one = await reconnect_311(session, port)
            sends = sending(one, ("a", 1), ("b", 2), ("c", 1))
            async with asyncio.timeout(10):
                await one.closed
                two = await reconnect_311(session, port)
                assert two.resent == 3
                sends += sending(two, ("d", 1))
                await asyncio.gather(*sends)
                await two.disconnect()
                await finished

    asyncio.run(scenario())
    assert second[:3] == [
        ("PUBLISH a", first["a"], True),
        ("PUBREL", first["b"], False),
        ("PUBLISH c", first["c"], True),
    ]
    name, new_id, duplicate = second[3]
    assert (name, duplicate) == ("PUBLISH d", False)
    assert new_id not in first.values()


def test_mqtt_3_1_1_without_the_session_sends_fail_clearly_and_paho_resends_nothing() -> None:
    """paho would send them again even to a broker that kept no session (a PUBREL for a message
    it never had): the runtime takes them from paho first."""
    after_drop: list[tuple[str, int, bool]] = []

    async def before_the_drop(peer: Peer311) -> None:
        await peer.accept()
        found = {}
        for _ in range(2):
            packet = await peer.expect(PUBLISH)
            found[packet.topic] = packet.packet_id
        peer.ack(PUBREC, found["b"])
        await peer.expect(PUBREL)
        peer.writer.close()

    async def after(peer: Peer311) -> None:
        await peer.accept(session_present=False)
        packet = await peer.expect(PUBLISH, PUBREL)
        after_drop.append(named(packet))
        peer.ack(PUBACK, packet.packet_id)
        await peer.expect(DISCONNECT)

    async def scenario() -> None:
        session = SessionState()
        async with scripted(before_the_drop, after, peer=Peer311) as (port, finished):
            one = await reconnect_311(session, port)
            sends = sending(one, ("a", 1), ("b", 2))
            async with asyncio.timeout(10):
                await one.closed
                two = await reconnect_311(session, port)
                for send in sends:
                    with pytest.raises(PublishError, match="the broker kept no session"):
                        await send
                await two.publish(Outgoing("d", b"x", qos=1))
                await two.disconnect()
                await finished

    asyncio.run(scenario())
    assert [name for name, _, _ in after_drop] == ["PUBLISH d"]


def test_mqtt_3_1_1_with_a_clean_session_a_drop_fails_the_sends_at_once() -> None:
    async def drop(peer: Peer311) -> None:
        await peer.accept()
        await peer.expect(PUBLISH)
        peer.writer.close()

    async def scenario() -> None:
        async with scripted(drop, peer=Peer311) as (port, _):
            one = await reconnect_311(SessionState(), port, clean_start=True)
            [send] = sending(one, ("a", 1))
            async with asyncio.timeout(5):
                with pytest.raises(PublishError, match="may or may not have it"):
                    await send

    asyncio.run(scenario())
