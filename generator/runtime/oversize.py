"""Reading past a packet larger than the Maximum Packet Size we announced, without keeping it.

A broker that honours the announcement never sends one [MQTT-3.1.2-24]; one that does not would
make us buffer it whole (250 MB) only to reject it. Instead its first bytes are kept, for what
answering it needs (type, QoS, packet id, topic), and the rest is counted and dropped as it
arrives. MQTT 5 makes such a packet a protocol error (DISCONNECT 0x95), but the broker would
then send it again on every reconnect: a PUBLISH is acknowledged and reported instead, and the
connection and its other messages go on.
"""

from __future__ import annotations

from dataclasses import dataclass, field

PUBLISH = 3
MAX_HEAD = 5 + 2 + 65_535 + 2  # fixed header, topic, packet id: all a reply needs


def packet_size(data: bytes | memoryview) -> int | None:
    """The whole size of the packet `data` starts with, once its fixed header is complete."""
    length = shift = 0
    for index in range(1, min(len(data), 5)):
        byte = data[index]
        length |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return index + 1 + length
        shift += 7
    if len(data) >= 5:
        raise ValueError("remaining length longer than 4 bytes")
    return None


@dataclass
class Oversized:
    """One packet being read past: `feed` it what arrives until `done`."""

    size: int
    seen: int = 0
    head: bytearray = field(default_factory=bytearray)

    @property
    def done(self) -> bool:
        return self.seen >= self.size

    def feed(self, data: bytes | memoryview) -> bytes | memoryview:
        """Take this packet's bytes from the start of `data`; returns what follows it."""
        take = min(len(data), self.size - self.seen)
        keep = min(take, MAX_HEAD - len(self.head))
        if keep > 0:
            self.head += data[:keep]
        self.seen += take
        return data[take:]

    def publish(self) -> tuple[str, int, int] | None:
        """(topic, QoS, packet id) when the packet is a PUBLISH, else None."""
        if self.head[0] >> 4 != PUBLISH:
            return None
        at = 1
        while self.head[at] & 0x80:
            at += 1
        at += 1
        topic_end = at + 2 + int.from_bytes(self.head[at : at + 2])
        topic = self.head[at + 2 : topic_end].decode("utf-8", "replace")
        qos = (self.head[0] >> 1) & 3
        packet_id = int.from_bytes(self.head[topic_end : topic_end + 2]) if qos else 0
        return topic, qos, packet_id
