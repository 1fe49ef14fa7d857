"""Acknowledgements sent after handling, in the order the messages arrived.

MQTT requires PUBACK (QoS 1) and PUBREC (QoS 2) in the order of the PUBLISH packets
[MQTT-4.6.0-2, MQTT-4.6.0-3], while handlers of different topics finish in any order: a finished
message's acknowledgement waits until every earlier one has been acknowledged.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

Ack = Callable[[], None]


class AckQueue:
    def __init__(self, send: Callable[[int, int], None]) -> None:
        self._send = send
        self._entries: deque[list[int]] = deque()  # [packet id, qos, done]
        self._open = True

    def __len__(self) -> int:
        return len(self._entries)

    def track(self, packet_id: int, qos: int) -> Ack:
        """Register a received message; the returned callable acknowledges it once handled."""
        entry = [packet_id, qos, 0]
        self._entries.append(entry)

        def ack() -> None:
            entry[2] = 1
            self._flush()

        return ack

    def close(self) -> None:
        """The connection is gone: acknowledgements owed on it can no longer be sent (the broker
        redelivers those messages)."""
        self._open = False
        self._entries.clear()

    def _flush(self) -> None:
        entries = self._entries
        while self._open and entries and entries[0][2]:
            packet_id, qos, _ = entries.popleft()
            self._send(packet_id, qos)
