"""Pieces shared by the 2.x and 3.x normalizers: servers, parameters, messages, names."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlsplit

from generator import names
from generator.errors import Diagnostic, Level, Location
from generator.loader import split_pointer
from generator.model import (
    MQTT_PROTOCOLS,
    Address,
    Api,
    Channel,
    Locator,
    Message,
    Operation,
    Parameter,
    Sender,
    Server,
    Will,
    payload_type,
)
from generator.names import package_from_title, snake
from generator.normalize.param_types import name_types
from generator.normalize.routes import build_routes
from generator.refs import Node, Workspace
from generator.schemas_bundle import SchemaBundle

JSON_SCHEMA_FORMATS = re.compile(
    r"^application/(schema(\+json|\+yaml)?|vnd\.aai\.asyncapi(\+json|\+yaml)?)(;.*)?$"
)


@dataclass
class Context:
    """State one normalization run threads through its helpers."""

    ws: Workspace
    version: str
    default_content_type: str
    bundle: SchemaBundle = field(default_factory=SchemaBundle)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    messages: dict[tuple[str, str], Message] = field(default_factory=dict)
    channel_names: set[str] = field(default_factory=set)
    message_names: dict[str, tuple[str, str]] = field(default_factory=dict)

    def error(self, message: str, node: Node, *, key: bool = False) -> None:
        self.diagnostics.append(
            Diagnostic(message, node.doc.location(node.pointer, key=key), node.pointer)
        )

    def warn_at(self, message: str, location: Location | None) -> None:
        where = location or Location(self.ws.root.display)
        self.diagnostics.append(Diagnostic(message, where, None, Level.WARNING))

    def warn(self, message: str, node: Node, *, key: bool = False) -> None:
        location = node.doc.location(node.pointer, key=key) if key else node.location
        self.diagnostics.append(Diagnostic(message, location, node.pointer, Level.WARNING))


def new_context(ws: Workspace, version: str) -> Context:
    root = ws.root_node()
    return Context(ws, version, text(root.get("defaultContentType")) or "application/json")


def assemble(
    ctx: Context,
    package: str | None,
    servers: list[Server],
    channels: list[Channel],
    operations: list[Operation],
) -> Api:
    """The finished model; clashes and schema adjustments noted on the way become warnings."""
    collect_bundle_notes(ctx)
    check_unique_tags(ctx)
    operations = served_operations(ctx, servers, channels, operations)
    channels, operations = name_types(channels, operations, set(ctx.bundle.schemas))
    info = ctx.ws.root_node().child("info")
    title = text(info.get("title"))
    api = Api(
        asyncapi_version=ctx.version,
        title=title,
        version=text(info.get("version")),
        description=text(info.get("description")),
        package=package or _package(ctx, title, info),
        servers=tuple(servers),
        channels=tuple(channels),
        operations=tuple(operations),
        schemas=ctx.bundle.schemas,
        discriminators=ctx.bundle.discriminators,
    )
    return replace(api, routes=build_routes(api))


def _package(ctx: Context, title: str, info: Node) -> str:
    """The package named after the title, adjusted (and warned about) if it would shadow a
    module the project imports."""
    package, problem = package_from_title(title)
    if problem is not None:
        where = info.get("title") or info
        named = snake(title, fallback="service")
        ctx.warn(
            f"the title makes the package {named!r}: {problem}; it is {package!r} instead"
            " (--package NAME chooses another)",
            where,
        )
    return package


# Keys under which user data (schemas, examples) sits: a `tags` there is not a Tag list.
_DATA_KEYS = frozenset(
    {"payload", "headers", "schema", "schemas", "examples", "properties", "items"}
)


def check_unique_tags(ctx: Context) -> None:
    """Tag names are unique within each `tags` list (root, operations, messages, traits), a
    rule other AsyncAPI tools enforce."""
    for doc in ctx.ws.docs.values():
        for pointer, tags in _tag_lists(doc.data, ""):
            seen: set[str] = set()
            for index, tag in enumerate(tags):
                name = tag.get("name") if isinstance(tag, dict) else None
                if isinstance(name, str) and name in seen:
                    where = f"{pointer}/{index}/name"
                    ctx.diagnostics.append(
                        Diagnostic(f"tag {name!r} is listed twice", doc.location(where), where)
                    )
                elif isinstance(name, str):
                    seen.add(name)


def _tag_lists(data: Any, pointer: str) -> list[tuple[str, list[Any]]]:
    found: list[tuple[str, list[Any]]] = []
    if isinstance(data, dict):
        for key, value in data.items():
            if key in _DATA_KEYS or str(key).startswith("x-"):
                continue
            here = f"{pointer}/{str(key).replace('~', '~0').replace('/', '~1')}"
            if key == "tags" and isinstance(value, list):
                found.append((here, value))
            else:
                found += _tag_lists(value, here)
    elif isinstance(data, list):
        for index, value in enumerate(data):
            found += _tag_lists(value, f"{pointer}/{index}")
    return found


def served_operations(
    ctx: Context, servers: list[Server], channels: list[Channel], operations: list[Operation]
) -> list[Operation]:
    """Operations of channels available only on servers the MQTT runtime does not speak (a Kafka
    channel next to MQTT ones) get no subscription, handler or send method."""
    protocols = {s.name: s.protocol.lower() for s in servers}
    unserved = set()
    for channel in channels:
        known = [protocols[name] for name in channel.servers if name in protocols]
        if known and not any(protocol in MQTT_PROTOCOLS for protocol in known):
            unserved.add(channel.key)
            names = ", ".join(repr(name) for name in channel.servers)
            ctx.warn_at(
                f"channel {channel.key!r} is only on servers the MQTT service does not speak"
                f" ({names}): no subscription, handler or send method is generated for it",
                channel.location,
            )
    return [op for op in operations if op.channel.key not in unserved]


def senders(name: str, messages: tuple[Message, ...], taken: set[str]) -> tuple[Sender, ...]:
    """`send_x(payload)` for one message; `send_x_<message>(payload)` for each of several."""
    if len(messages) <= 1:
        headers = messages[0].headers_class if messages else None
        content_type = messages[0].content_type if messages else None
        return (Sender(name, payload_type(messages), headers, content_type),)
    return tuple(
        Sender(
            names.sender(name, m.name, taken),
            m.py_type,
            m.headers_class,
            m.content_type,
        )
        for m in messages
    )


def collect_bundle_notes(ctx: Context) -> None:
    for node, note in ctx.bundle.notes:
        ctx.warn(note, node)


def entries(node: Node | None, key: str) -> list[tuple[str, Node]]:
    """The (key, node) pairs of the map at `node[key]`, or none when it is absent."""
    child = node.get(key) if node is not None else None
    return list(child.items()) if child is not None else []


def text(node: Node | None) -> str:
    if node is None or not isinstance(node.value, str):
        return ""
    return node.value


def _substitute(template: str, variables: Node | None) -> str:
    def default(match: re.Match[str]) -> str:
        var = variables.get(match.group(1)) if variables is not None else None
        if var is not None and isinstance(var.value, dict):
            if "default" in var.value:
                return level_text(var.value["default"])
            if var.value.get("enum"):
                return level_text(var.value["enum"][0])
        return match.group(0)

    return re.sub(r"\{([^{}]+)\}", default, template)


def server(ctx: Context, name: str, node: Node, host_and_path: str) -> Server:
    """A server from its `host` (3.x) or `url` (2.x), variables filled with their defaults."""
    resolved = _substitute(host_and_path, node.get("variables"))
    if "://" not in resolved:
        resolved = "//" + resolved
    try:
        parts = urlsplit(resolved)
    except ValueError as exc:  # a bracketed host that is no IPv6 address
        ctx.warn(f"server {name!r}: cannot read {resolved!r} ({exc}): localhost is used", node)
        parts = urlsplit("")
    try:
        port = parts.port
    except ValueError:
        port = None
    bindings = node.get("bindings")
    mqtt = bindings.get("mqtt") if bindings is not None else None
    values = mqtt.value if mqtt is not None and isinstance(mqtt.value, dict) else {}
    client_id, clean, keep_alive, will = (
        values.get(k) for k in ("clientId", "cleanSession", "keepAlive", "lastWill")
    )
    return Server(
        name=name,
        host=parts.hostname or "localhost",
        port=port,
        protocol=text(node.get("protocol")),
        description=text(node.get("description")),
        client_id=client_id if isinstance(client_id, str) else None,
        clean_session=clean if isinstance(clean, bool) else None,
        keep_alive=keep_alive if isinstance(keep_alive, int) else None,
        will=_will(will) if isinstance(will, dict) and isinstance(will.get("topic"), str) else None,
        location=node.doc.location(node.pointer, key=True),
        path=parts.path,
    )


def _will(values: dict[str, Any]) -> Will:
    message = values.get("message")
    return Will(
        topic=values["topic"],
        payload=(
            message if isinstance(message, str) else "" if message is None else json.dumps(message)
        ),
        qos=values["qos"] if values.get("qos") in (0, 1, 2) else 0,
        retain=values.get("retain") is True,
    )


def check_address_params(
    ctx: Context, where: Node, address: Address, declared: Node | None, *, key: bool = False
) -> None:
    """Every `{param}` in the address is declared, and every declared parameter is used."""
    names = address.param_names
    declared_names = [name for name, _ in declared.items()] if declared is not None else []
    for name in names:
        if name not in declared_names:
            message = f"address parameter {{{name}}} is not declared in the channel's parameters"
            ctx.error(message, where, key=key)
    for name in declared_names:
        if name not in names and declared is not None:
            child = declared.child(name)
            ctx.warn(
                f"parameter {name!r} does not appear in the address {address.template!r};"
                " it is ignored",
                child,
                key=True,
            )
        elif name in names and declared is not None:
            child = declared.child(name)
            default = _declared_default(child)
            if default is not None and not usable_default(default):
                ctx.warn(
                    f"parameter {name!r} has the default {default!r}, which cannot be a topic"
                    " level; the send methods make it a required argument",
                    child,
                    key=True,
                )


def _declared_default(node: Node) -> str | None:
    """A parameter's default, where 2.x (`schema.default`) or 3.x (`default`) keeps it."""
    schema = node.get("schema")
    source = schema if schema is not None else node
    value = source.value if isinstance(source.value, dict) else {}
    default = value.get("default")
    return None if default is None else level_text(default)


def level_text(value: object) -> str:
    """A JSON value as it stands in a topic level: a string as it is, anything else as JSON
    writes it (`true`, not Python's `True`)."""
    return value if isinstance(value, str) else json.dumps(value)


def usable_default(default: str) -> bool:
    """Whether a default can stand as one topic level (the same rule the send methods check)."""
    return bool(default) and not any(ch in default for ch in "/+#\x00")


def parameter(name: str, node: Node, schema: Node | None) -> Parameter:
    """A channel parameter; 2.x keeps enum/pattern/default in `schema`, 3.x on the object.
    A default that cannot be a topic level is dropped (and warned about by the address check)."""
    source = schema if schema is not None else node
    value = source.value if isinstance(source.value, dict) else {}
    listed = value.get("enum")
    enum = tuple(level_text(v) for v in listed if v is not None) if isinstance(listed, list) else ()
    default = value.get("default")
    default = None if default is None else level_text(default)
    if default is not None and not usable_default(default):
        default = None
    pattern = value.get("pattern")
    return Parameter(
        name=name,
        py_name=names.parameter(name),
        description=text(node.get("description")),
        enum=enum,
        pattern=pattern if isinstance(pattern, str) else None,
        default=default,
    )


def channel_name(ctx: Context, key: str, node: Node) -> tuple[str, str]:
    py_name, wanted = names.channel_module(key, ctx.channel_names)
    if py_name != wanted:
        message = f"channel {key!r} is named {py_name} in Python ({wanted} is taken)"
        ctx.diagnostics.append(
            Diagnostic(
                message, node.doc.location(node.pointer, key=True), node.pointer, Level.WARNING
            )
        )
    return py_name, names.channel_class(py_name)


@dataclass(frozen=True)
class Layers:
    """An object with its traits applied: each field comes from the layer that wins it."""

    nodes: tuple[Node, ...]  # the winning layer first

    def get(self, key: str) -> Node | None:
        return next((found for n in self.nodes if (found := n.get(key)) is not None), None)


def with_traits(node: Node, version: str) -> Layers:
    """3.x: the object's own fields win over its traits; 2.x merges the traits INTO the object
    (JSON Merge Patch, in order), so there the traits win. Later traits win over earlier ones."""
    listed = node.get("traits")
    traits = tuple(reversed(list(listed.elements()))) if listed is not None else ()
    return Layers((node, *traits) if version.startswith("3.") else (*traits, node))


def message(ctx: Context, node: Node, fallback_name: str) -> Message:
    """One message, its payload registered in the bundle; identical targets give one Message."""
    node = node.deref()
    key = node.target.key
    if key in ctx.messages:
        return ctx.messages[key]
    _check_unique_id(ctx, node)
    tokens = split_pointer(node.pointer)
    if len(tokens) == 3 and tokens[:2] == ["components", "messages"]:
        fallback_name = tokens[2]
    layers = with_traits(node, ctx.version)
    name = text(layers.get("name")) or text(layers.get("messageId")) or fallback_name
    content_type = text(layers.get("contentType")) or ctx.default_content_type
    class_name = _payload_class(ctx, node, layers, name)
    result = Message(
        key=f"{key[0]}#{key[1]}",
        name=name,
        class_name=class_name,
        content_type=content_type,
        title=text(layers.get("title")),
        summary=text(layers.get("summary")),
        description=text(layers.get("description")),
        examples=tuple(_examples(layers.get("examples"))),
        correlation=locator(ctx, layers.get("correlationId"), "correlationId"),
        headers_class=_headers_class(ctx, layers, name),
        location=node.location,
    )
    ctx.messages[key] = result
    return result


def _headers_class(ctx: Context, layers: Layers, name: str) -> str | None:
    """Message headers (from the message or a trait) get their own model."""
    owner = next((n for n in layers.nodes if n.get("headers") is not None), None)
    if owner is None:
        return None
    base = owner.deref()
    source = Node(base.ws, base.doc, base.pointer + "/headers", base.raw_child("headers"))
    return ctx.bundle.add_payload(source, names.headers_class(name))


def locator(ctx: Context, node: Node | None, what: str) -> Locator | None:
    """A runtime expression in the payload or the headers; anything else is warned about."""
    if node is None:
        return None
    location = text(node.get("location")) if isinstance(node.value, dict) else text(node)
    source, _, pointer = location.partition("#")
    path = tuple(split_pointer(pointer))
    if source == "$message.payload" and path:
        return Locator(False, path)
    if source == "$message.header" and len(path) == 1:
        return Locator(True, path)
    if location:
        ctx.warn(f"{what} {location!r} is not a payload field or a header: ignored", node)
    return None


def _check_unique_id(ctx: Context, node: Node) -> None:
    """2.x `messageId` must be unique among all messages (two ids for one object are fine)."""
    id_node = node.get("messageId")
    if id_node is None or not isinstance(id_node.value, str):
        return
    first = ctx.message_names.setdefault(id_node.value, node.target.key)
    if first != node.target.key:
        ctx.error(f"messageId {id_node.value!r} is used by two different messages", id_node)


def _payload_class(ctx: Context, message_node: Node, layers: Layers, name: str) -> str | None:
    """The payload's model class; None (raw bytes) when there is no JSON Schema to model."""
    payload = message_node.get("payload")
    if payload is None:
        return None
    source = Node(
        payload.ws,
        message_node.doc,
        message_node.pointer + "/payload",
        message_node.raw_child("payload"),
    )
    fmt = text(layers.get("schemaFormat"))
    if (
        isinstance(payload.value, dict)
        and "schemaFormat" in payload.value
        and "schema" in payload.value
    ):
        fmt = text(payload.get("schemaFormat"))  # 3.x Multi Format Schema Object
        source = Node(
            payload.ws, payload.doc, payload.pointer + "/schema", payload.raw_child("schema")
        )
    if fmt and not JSON_SCHEMA_FORMATS.match(fmt):
        message = (
            f"payload schemaFormat {fmt!r} is not JSON Schema: the payload is passed as raw bytes"
        )
        ctx.warn(message, payload)
        return None
    return ctx.bundle.add_payload(source, names.payload_class(name))


def _examples(examples: Node | None) -> list[Any]:
    """Payload examples: 2.2+ `examples: [{payload: ...}]`; 2.0/2.1 allowed bare payloads."""
    out: list[Any] = []
    if examples is None or not isinstance(examples.value, list):
        return out
    for example in examples.elements():
        value = example.value
        if isinstance(value, dict) and "payload" in value:
            out.append(example.child("payload").value)
        elif isinstance(value, dict) and "headers" not in value and "name" not in value:
            out.append(value)
    return out
