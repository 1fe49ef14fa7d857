"""Messages as the runtime hands them over, independent of the MQTT library and version."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .errors import PublishError

MAX_TOPIC_BYTES = 65_535
_FORBIDDEN = re.compile(r"[\x00-\x1f\x7f-\x9f+#]")


@dataclass(slots=True)
class Incoming:
    """A received PUBLISH. MQTT 5 properties are empty or None under MQTT 3.1.1."""

    topic: str
    payload: bytes
    qos: int = 0
    retain: bool = False
    user_properties: dict[str, str] = field(default_factory=dict)
    response_topic: str | None = None
    correlation_data: bytes | None = None
    content_type: str | None = None


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A PUBLISH to send. Properties other than user properties need MQTT 5."""

    topic: str
    payload: bytes
    qos: int = 0
    retain: bool = False
    user_properties: tuple[tuple[str, str], ...] = ()
    response_topic: str | None = None
    correlation_data: bytes | None = None
    content_type: str | None = None


def check_topic(topic: str) -> None:
    """Refuse a topic the broker would answer by dropping the whole connection: empty, with a
    wildcard or a control character (a `\\n` included), or longer than MQTT allows."""
    if not topic:
        raise PublishError("the topic is empty")
    bad = _FORBIDDEN.search(topic)
    if bad is not None:
        raise PublishError(f"the topic {topic!r} contains {bad.group()!r}")
    if len(topic.encode("utf-8")) > MAX_TOPIC_BYTES:
        raise PublishError(f"the topic is longer than {MAX_TOPIC_BYTES} bytes")
