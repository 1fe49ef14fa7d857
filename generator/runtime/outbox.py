"""Outgoing QoS 1/2 messages belong to the session, not to one connection.

MQTT keeps packet ids and unacknowledged messages for as long as the session lives: after a
reconnect that finds the session (CONNACK with session present), every PUBLISH the broker has
not acknowledged goes out again with DUP set, and every PUBREL it has not completed, in their
original order and before anything new [MQTT-4.4.0-1, MQTT-4.6.0-1]. A broker that kept no
session has forgotten them, so they fail: whether they were delivered cannot be known.

The outbox lives in the service's memory: it survives a reconnect, not a restart of the service.
"""

from __future__ import annotations

import asyncio
from collections.abc import Container
from dataclasses import dataclass

from .errors import PublishError
from .message import Outgoing

MAX_PACKET_ID = 65_535


@dataclass(eq=False)
class Flight:
    """One outgoing QoS 1/2 message, from its first send until the broker's last answer."""

    message: Outgoing
    done: asyncio.Future[None]
    sent: bool = False  # written at least once: sent again, it carries DUP
    released: bool = False  # QoS 2 after PUBREC: a PUBREL is what is owed


class Outbox:
    def __init__(self) -> None:
        self.flights: dict[int, Flight] = {}  # by packet id, in the order they were added
        self._last_id = 0

    def add(self, message: Outgoing, busy: Container[int] = ()) -> tuple[int, Flight]:
        """Give `message` a packet id no flight (nor `busy`, e.g. a SUBSCRIBE) holds."""
        packet_id = self.new_id(busy)
        flight = Flight(message, _future())
        self.flights[packet_id] = flight
        return packet_id, flight

    def track(self, packet_id: int, message: Outgoing) -> Flight:
        """A message sent by an engine that numbers its packets itself (paho)."""
        flight = Flight(message, _future(), sent=True)
        self.flights[packet_id] = flight
        return flight

    def new_id(self, busy: Container[int] = ()) -> int:
        for _ in range(MAX_PACKET_ID):
            self._last_id = self._last_id % MAX_PACKET_ID + 1
            if self._last_id not in self.flights and self._last_id not in busy:
                return self._last_id
        raise PublishError("no free packet id: 65,535 messages are waiting for the broker")

    def settle(self, packet_id: int, error: PublishError | None = None) -> None:
        """The broker's last answer (PUBACK, PUBCOMP, or a refusal) ends the flight."""
        flight = self.flights.pop(packet_id, None)
        if flight is not None:
            _resolve(flight, error)

    def abandon(self, packet_id: int) -> None:
        """Its sender gave up: forget it unless it went out (the broker may have it then, and
        the session owes the broker the rest of the exchange)."""
        flight = self.flights.get(packet_id)
        if flight is not None and not flight.sent:
            del self.flights[packet_id]

    def fail_sent(self, error: PublishError) -> int:
        """The session is gone: fail every flight that went out; those that never did stay, to
        go out on the next connection. Returns how many failed."""
        gone = [packet_id for packet_id, flight in self.flights.items() if flight.sent]
        for packet_id in gone:
            _resolve(self.flights.pop(packet_id), error)
        return len(gone)

    def fail_all(self, error: PublishError) -> None:
        for flight in self.flights.values():
            _resolve(flight, error)
        self.flights.clear()


def _future() -> asyncio.Future[None]:
    """A flight's outcome; a sender that gave up no longer awaits it, so a failure is marked
    as seen here rather than reported as never retrieved."""
    done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    done.add_done_callback(lambda f: f.cancelled() or f.exception())
    return done


def _resolve(flight: Flight, error: PublishError | None) -> None:
    if flight.done.done():
        return
    if error is None:
        flight.done.set_result(None)
    else:
        flight.done.set_exception(error)
