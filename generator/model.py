"""The version-independent intermediate model: everything the templates need, names decided.

AsyncAPI 2.x and 3.x both normalize to this. Actions are from the generated service's point of
view: `receive` means the service subscribes, `send` means it publishes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal

from generator.errors import Location

Action = Literal["receive", "send"]
_PARAM = re.compile(r"\{([^{}]+)\}")


@dataclass(frozen=True)
class Parameter:
    name: str  # as written in the address
    py_name: str
    description: str = ""
    enum: tuple[str, ...] = ()
    pattern: str | None = None
    default: str | None = None


@dataclass(frozen=True)
class AddressSegment:
    """A literal piece of an address, or a parameter (by wire name)."""

    text: str
    is_param: bool


@dataclass(frozen=True)
class Address:
    template: str
    segments: tuple[AddressSegment, ...]

    @classmethod
    def parse(cls, template: str) -> Address:
        segments: list[AddressSegment] = []
        position = 0
        for match in _PARAM.finditer(template):
            if match.start() > position:
                segments.append(AddressSegment(template[position : match.start()], False))
            segments.append(AddressSegment(match.group(1), True))
            position = match.end()
        if position < len(template):
            segments.append(AddressSegment(template[position:], False))
        return cls(template, tuple(segments))

    @property
    def param_names(self) -> list[str]:
        return list(dict.fromkeys(s.text for s in self.segments if s.is_param))

    @property
    def mqtt_filter(self) -> str:
        """Each topic level that holds a parameter becomes `+`."""
        levels = []
        for level in self.template.split("/"):
            levels.append("+" if _PARAM.search(level) else level)
        return "/".join(levels)


@dataclass(frozen=True)
class Message:
    key: str  # identity: file and pointer of the message object
    name: str  # the spec's name for it
    class_name: str | None  # payload model; None when the payload is raw bytes/str
    content_type: str
    title: str = ""
    summary: str = ""
    description: str = ""
    examples: tuple[Any, ...] = ()
    payload_schema: Any = None  # the payload schema, references inlined, for documentation/tests

    @property
    def is_json(self) -> bool:
        ct = self.content_type.split(";")[0].strip().lower()
        return ct == "application/json" or ct.endswith("+json")


@dataclass(frozen=True)
class Channel:
    key: str  # the spec's channel id (3.x) or address (2.x)
    py_name: str
    class_name: str
    address: Address | None
    parameters: tuple[Parameter, ...]
    messages: tuple[Message, ...]
    description: str = ""
    location: Location | None = None


@dataclass(frozen=True)
class Operation:
    key: str
    py_name: str  # the method name on the send context, or the receive operation's id
    action: Action
    channel: Channel
    messages: tuple[Message, ...]
    summary: str = ""
    description: str = ""
    qos: int = 1
    retain: bool = False


@dataclass(frozen=True)
class Server:
    name: str
    host: str
    port: int | None
    protocol: str
    description: str = ""


@dataclass
class Api:
    asyncapi_version: str
    title: str
    version: str
    description: str
    package: str
    servers: list[Server]
    channels: list[Channel]
    operations: list[Operation]
    schemas: dict[str, Any] = field(
        default_factory=dict
    )  # model name -> JSON Schema, refs rewritten

    @property
    def receive_channels(self) -> list[Channel]:
        keys = {op.channel.key for op in self.operations if op.action == "receive"}
        return [c for c in self.channels if c.key in keys]

    @property
    def send_operations(self) -> list[Operation]:
        return [op for op in self.operations if op.action == "send"]

    def receive_operations(self, channel: Channel) -> list[Operation]:
        return [
            op for op in self.operations if op.action == "receive" and op.channel.key == channel.key
        ]
