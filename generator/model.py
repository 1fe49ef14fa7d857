"""The version-independent intermediate model: everything the templates need, names decided.

AsyncAPI 2.x and 3.x both normalize to this. Actions are from the generated service's point of
view: `receive` means the service subscribes, `send` means it publishes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from generator import names
from generator.errors import Location

Action = Literal["receive", "send"]
MQTT_PROTOCOLS = ("mqtt", "mqtts", "secure-mqtt", "mqtt5", "ws", "wss")
_PARAM = re.compile(r"\{([^{}]+)\}")


@dataclass(frozen=True)
class Parameter:
    name: str  # as written in the address
    py_name: str
    description: str = ""
    enum: tuple[str, ...] = ()
    pattern: str | None = None
    default: str | None = None
    type_name: str | None = None  # an enum's named `Literal` in `topics.py` (decided in normalize)

    @property
    def py_type(self) -> str:
        """The annotation of its argument: the enum's named `Literal` (`Room`), so that a value
        outside it fails type checking and a value added to it needs no handler edit; else `str`."""
        return self.type_name or "str"

    @property
    def literal(self) -> str:
        """What the named type stands for: `Literal["kitchen", "hall"]`."""
        return f"Literal[{', '.join(repr(value) for value in self.enum)}]"


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

    @property
    def specificity(self) -> tuple[int, int]:
        """Orders overlapping addresses: `user/{id}.signedup` before `user/{id}` (more literal
        text first, then fewer parameters)."""
        literal = sum(len(s.text) for s in self.segments if not s.is_param)
        params = sum(1 for s in self.segments if s.is_param)
        return literal, -params

    @property
    def shape(self) -> tuple[tuple[str, bool], ...]:
        """The address with parameter names left out: equal shapes match the same topics."""
        return tuple(("" if s.is_param else s.text, s.is_param) for s in self.segments)


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
    location: Location | None = None
    correlation: Locator | None = None  # where the correlation id is
    headers_class: str | None = None  # model of the headers, carried as MQTT 5 user properties

    @property
    def is_json(self) -> bool:
        ct = self.content_type.split(";")[0].strip().lower()
        return ct == "application/json" or ct.endswith("+json")

    @property
    def py_type(self) -> str:
        """The Python type a handler receives and a sender passes for this message."""
        if self.class_name is not None and self.is_json:
            return self.class_name
        return "str" if self.content_type.lower().startswith("text/") else "bytes"


def payload_type(messages: tuple[Message, ...]) -> str:
    """One annotation for several messages: their union, in declaration order."""
    types = list(dict.fromkeys(m.py_type for m in messages)) or ["bytes"]
    return " | ".join(types)


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
    servers: tuple[str, ...] = ()  # the servers the channel is available on; empty: all

    @property
    def title(self) -> str:
        return self.address.template if self.address is not None else self.key

    @property
    def example_topic(self) -> str | None:
        """A topic on this channel for tests: each parameter's first enum value, else its
        default, else `example`; None when a pattern restricts a parameter without an enum."""
        if self.address is None:
            return None
        values = {}
        for p in self.parameters:
            if p.pattern and not p.enum:
                return None
            values[p.name] = p.enum[0] if p.enum else p.default or "example"
        return "".join(values[s.text] if s.is_param else s.text for s in self.address.segments)

    @property
    def const_name(self) -> str:
        """Its `TopicTemplate` in `topics.py` (module names are unique, so these are too)."""
        return names.topic_constant(self.py_name)

    @property
    def route_name(self) -> str:
        """Its dispatch function in `routes.py`; handler modules never start with `_`."""
        return names.route_function(self.py_name)

    @property
    def rules(self) -> tuple[Parameter, ...]:
        """Parameters whose values are restricted (enum or pattern), checked on every topic."""
        return tuple(p for p in self.parameters if p.enum or p.pattern)


@dataclass(frozen=True)
class Sender:
    """One typed send method: an operation with several messages gets one per message."""

    py_name: str
    payload_type: str
    headers_class: str | None = None
    content_type: str | None = None  # sent as the MQTT 5 Content Type property


@dataclass(frozen=True)
class Locator:
    """A runtime expression: `$message.payload#/a/b` (a payload field, by wire names) or
    `$message.header#/name` (a header, carried as an MQTT 5 user property)."""

    in_header: bool
    path: tuple[str, ...]


@dataclass(frozen=True)
class Reply:
    """Where and what a request's answer is: a channel's address, or a topic named in the
    request payload (`$message.payload#/replyTo`)."""

    channel: Channel | None
    messages: tuple[Message, ...]
    address: Locator | None = None

    @property
    def payload_type(self) -> str:
        return payload_type(self.messages)

    @property
    def correlation(self) -> Locator | None:
        return next((m.correlation for m in self.messages if m.correlation), None)


@dataclass(frozen=True)
class Operation:
    key: str
    py_name: str  # the send method's name (one message), or the receive operation's id
    action: Action
    channel: Channel
    messages: tuple[Message, ...]
    summary: str = ""
    description: str = ""
    qos: int = 1
    retain: bool = False
    senders: tuple[Sender, ...] = ()
    reply: Reply | None = None
    request_py_name: str | None = None  # `<send>_and_wait`, when the reply can be awaited

    @property
    def correlation(self) -> Locator | None:
        return next((m.correlation for m in self.messages if m.correlation), None)

    @property
    def payload_type(self) -> str:
        return payload_type(self.messages)

    @property
    def content_type(self) -> str | None:
        """The content type all the operation's messages share, if they share one."""
        types = {m.content_type for m in self.messages}
        return types.pop() if len(types) == 1 else None


@dataclass(frozen=True)
class Server:
    name: str
    host: str
    port: int | None
    protocol: str
    description: str = ""
    client_id: str | None = None
    clean_session: bool | None = None
    keep_alive: int | None = None
    will: Will | None = None
    location: Location | None = None
    security: tuple[str, ...] = ()  # the schemes it asks for that the runtime serves
    path: str = ""  # the URL path: where a WebSocket endpoint listens

    @property
    def tls(self) -> bool:
        """Whether the document's protocol says the connection is encrypted."""
        return self.protocol.lower() in ("mqtts", "secure-mqtt", "wss")

    @property
    def websockets(self) -> bool:
        """MQTT over WebSockets (`ws`, `wss`)."""
        return self.protocol.lower() in ("ws", "wss")


@dataclass(frozen=True)
class Defaults:
    """What the generated settings default to, from the document's MQTT server."""

    client_id: str
    host: str = "localhost"
    port: int = 1883
    keep_alive: int = 60
    clean_session: bool | None = None
    tls: bool = False
    transport: Literal["tcp", "websockets"] = "tcp"
    ws_path: str = "/mqtt"
    will: Will | None = None


@dataclass(frozen=True)
class Will:
    """The MQTT last will: what the broker publishes if the service disappears."""

    topic: str
    payload: str = ""
    qos: int = 0
    retain: bool = False


@dataclass(frozen=True)
class Decoder:
    """How a received payload becomes the handler's message: raw bytes, UTF-8 text, or a model
    (several messages: the first model that validates, or the one a discriminator names)."""

    kind: Literal["bytes", "text", "model"]
    type: str = ""  # the model type, a union for several messages
    union: bool = False
    tag_property: str | None = None
    tags: tuple[tuple[str, str], ...] = ()  # discriminator value -> model class


@dataclass(frozen=True)
class Route:
    """One channel the service subscribes to, and what happens to its messages."""

    channel: Channel
    messages: tuple[Message, ...]
    qos: int
    decoder: Decoder
    answers: Operation | None = None  # a receive operation whose handler returns its reply
    resolves: bool = False  # a reply channel: its messages answer this service's requests

    @property
    def payload_type(self) -> str:
        return payload_type(self.messages)

    @property
    def headers_class(self) -> str | None:
        classes = {m.headers_class for m in self.messages if m.headers_class}
        return classes.pop() if len(classes) == 1 and not self.resolves else None

    @property
    def correlation(self) -> Locator | None:
        return next((m.correlation for m in self.messages if m.correlation), None)

    @property
    def keywords(self) -> tuple[str, ...]:
        """What the route passes its handler by keyword: the parameters, then the headers."""
        names = tuple(p.py_name for p in self.channel.parameters)
        return names + (("headers",) if self.headers_class else ())

    @property
    def signature(self) -> str:
        """The handler this route calls, as its stub declares it."""
        typed = [f"{p.py_name}: {p.py_type}" for p in self.channel.parameters]
        typed += [f"headers: {self.headers_class}"] if self.headers_class else []
        keywords = f", *, {', '.join(typed)}" if typed else ""
        reply = self.answers.reply if self.answers else None
        returns = f"{reply.payload_type} | None" if reply and reply.messages else "None"
        return (
            f"async def handle(message: {self.payload_type}, ctx: Context{keywords}) -> {returns}"
        )


@dataclass(frozen=True)
class Api:
    """The whole document, finished: built once by normalize, never changed after; every later
    stage reads it."""

    asyncapi_version: str
    title: str
    version: str
    description: str
    package: str
    servers: tuple[Server, ...]
    channels: tuple[Channel, ...]
    operations: tuple[Operation, ...]
    # model name -> JSON Schema with references rewritten to those names
    schemas: dict[str, Any] = field(default_factory=dict)
    discriminators: dict[str, str] = field(default_factory=dict)  # class -> property
    sources: tuple[Path, ...] = ()  # every document read, the spec first
    routes: tuple[Route, ...] = ()  # what the service subscribes to, most specific first
    # message key -> its first example that matches its payload schema (JSON messages only)
    valid_examples: dict[str, Any] = field(default_factory=dict)

    @cached_property
    def receive_channels(self) -> tuple[Channel, ...]:
        keys = {op.channel.key for op in self.operations if op.action == "receive"}
        return tuple(c for c in self.channels if c.key in keys)

    @cached_property
    def send_operations(self) -> tuple[Operation, ...]:
        return tuple(op for op in self.operations if op.action == "send")

    def receive_operations(self, channel: Channel) -> tuple[Operation, ...]:
        return self._receivers.get(channel.key, ())

    @cached_property
    def _receivers(self) -> dict[str, tuple[Operation, ...]]:
        """Receive operations by channel key, built once: a look-up per channel made rendering
        quadratic in the channel count."""
        index: dict[str, list[Operation]] = {}
        for op in self.operations:
            if op.action == "receive":
                index.setdefault(op.channel.key, []).append(op)
        return {key: tuple(ops) for key, ops in index.items()}

    def received_messages(self, channel: Channel) -> tuple[Message, ...]:
        found: list[Message] = []
        for op in self.receive_operations(channel):
            found += [m for m in op.messages if m not in found]
        return tuple(found)

    def handler_payload_type(self, channel: Channel) -> str:
        return payload_type(self.received_messages(channel))

    @property
    def uses_headers(self) -> bool:
        """Whether MQTT 5 user properties carry anything: headers, or ids and reply topics."""
        messages = [m for c in self.channels for m in c.messages]
        located = [m.correlation for m in messages] + [
            op.reply.address for op in self.operations if op.reply is not None
        ]
        return any(m.headers_class for m in messages) or any(
            loc is not None and loc.in_header for loc in located
        )

    def headers_class(self, messages: tuple[Message, ...]) -> str | None:
        """The one headers model of these messages (several distinct ones are not supported)."""
        classes = {m.headers_class for m in messages if m.headers_class}
        return classes.pop() if len(classes) == 1 else None

    @property
    def mqtt_server(self) -> Server | None:
        """The server whose host, port and bindings give the settings' defaults."""
        return next((s for s in self.servers if s.protocol.lower() in MQTT_PROTOCOLS), None)

    @cached_property
    def defaults(self) -> Defaults:
        """The settings' defaults: the MQTT server's values, else the protocol's."""
        server = self.mqtt_server
        if server is None:
            return Defaults(client_id=self.package.replace("_", "-"))
        websockets = server.websockets
        return Defaults(
            host=server.host,
            port=server.port or 1883,
            client_id=server.client_id or self.package.replace("_", "-"),
            keep_alive=server.keep_alive or 60,
            clean_session=server.clean_session,
            tls=server.tls or "X509" in server.security,
            transport="websockets" if websockets else "tcp",
            ws_path=server.path if websockets and server.path else "/mqtt",
            will=server.will,
        )

    def example(self, message: Message) -> Any | None:
        """The message's first example that matches its payload schema, if any."""
        return self.valid_examples.get(message.key)

    @property
    def other_servers(self) -> tuple[Server, ...]:
        return tuple(s for s in self.servers if s.protocol.lower() not in MQTT_PROTOCOLS)
