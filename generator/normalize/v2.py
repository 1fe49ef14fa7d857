"""AsyncAPI 2.x: the channel key is the address; `publish` is what the service RECEIVES
(others publish to it) and `subscribe` is what it SENDS (others subscribe to it)."""

from __future__ import annotations

from dataclasses import replace

from generator import names
from generator.errors import Diagnostic
from generator.model import Action, Address, Api, Channel, Message, Operation, Server
from generator.names import PUBLISHER_METHODS
from generator.normalize import common
from generator.normalize.bindings import mqtt_operation_settings
from generator.normalize.security import server_security
from generator.refs import REF, Node, Workspace

_ACTIONS: tuple[tuple[str, Action], ...] = (("publish", "receive"), ("subscribe", "send"))


def normalize(ws: Workspace, version: str, package: str | None) -> tuple[Api, list[Diagnostic]]:
    ctx = common.new_context(ws, version)
    root = ws.root_node()
    servers = [_server(ctx, name, node) for name, node in common.entries(root, "servers")]
    channels: list[Channel] = []
    operations: list[Operation] = []
    op_ids: dict[str, Node] = {}
    send_names: set[str] = set(PUBLISHER_METHODS)
    for key, node in common.entries(root, "channels"):
        channel = _channel(ctx, key, node)
        channels.append(channel)
        for field, action in _ACTIONS:
            op_node = node.get(field)
            base = node.deref()
            raw = base.raw_child(field)
            if isinstance(raw, dict) and REF in raw:
                where = Node(base.ws, base.doc, f"{base.pointer}/{field}", raw)
                ctx.error(f"in AsyncAPI 2.x, {field} cannot be a $ref", where)
                continue
            if op_node is not None:
                operations.append(_operation(ctx, channel, op_node, action, op_ids, send_names))
    return common.assemble(ctx, package, servers, channels, operations), ctx.diagnostics


def _server(ctx: common.Context, name: str, node: Node) -> Server:
    server = common.server(ctx, name, node, common.text(node.get("url")))
    return replace(server, security=server_security(ctx, name, node))


def _operation_messages(ctx: common.Context, op: Node, fallback: str) -> list[Message]:
    message = op.get("message")
    if message is None:
        return []
    one_of = message.get("oneOf")
    if one_of is not None and isinstance(one_of.value, list):
        return [
            common.message(ctx, m, f"{fallback}{i + 1}") for i, m in enumerate(one_of.elements())
        ]
    return [common.message(ctx, message, fallback)]


def _check_binding_topic(ctx: common.Context, key: str, node: Node) -> None:
    """FastStream's 2.6 export keys channels by name and puts the topic in the MQTT binding."""
    bindings = node.get("bindings")
    mqtt = bindings.get("mqtt") if bindings is not None else None
    topic = mqtt.get("topic") if mqtt is not None else None
    if topic is not None and isinstance(topic.value, str) and topic.value != key:
        ctx.warn(
            f"the MQTT binding names the topic {topic.value!r}, but in AsyncAPI 2.x the channel"
            f" key is the topic: the service uses {key!r}",
            topic,
        )


def _channel(ctx: common.Context, key: str, node: Node) -> Channel:
    _check_binding_topic(ctx, key, node)
    address = Address.parse(key)
    common.check_address_params(ctx, node, address, node.get("parameters"), key=True)
    params = tuple(
        common.parameter(name, p, p.get("schema")) for name, p in common.entries(node, "parameters")
    )
    py_name, class_name = common.channel_name(ctx, key, node)
    messages: list[Message] = []
    for field, _ in _ACTIONS:
        op = node.get(field)
        for message in (
            _operation_messages(ctx, op, names.message_class(class_name, field)) if op else []
        ):
            if message not in messages:
                messages.append(message)
    return Channel(
        key=key,
        py_name=py_name,
        class_name=class_name,
        address=address,
        parameters=params,
        messages=tuple(messages),
        description=common.text(node.get("description")),
        location=node.doc.location(node.pointer, key=True),
        servers=_server_names(node),
    )


def _server_names(node: Node) -> tuple[str, ...]:
    listed = node.get("servers")
    values = listed.value if listed is not None and isinstance(listed.value, list) else []
    return tuple(str(name) for name in values)


def _operation(
    ctx: common.Context,
    channel: Channel,
    node: Node,
    action: Action,
    op_ids: dict[str, Node],
    send_names: set[str],
) -> Operation:
    op_id = common.text(node.get("operationId"))
    if op_id:
        if op_id in op_ids:
            first = op_ids[op_id].location
            ctx.error(
                f"operationId {op_id!r} is already used (line {first.line})",
                node.child("operationId"),
            )
        op_ids[op_id] = node.child("operationId")
    field = "publish" if action == "receive" else "subscribe"
    send = action == "send"
    py_name = (
        names.operation(op_id, send, send_names)
        if op_id
        else names.unnamed_operation(channel.py_name, send, send_names)
    )
    layers = common.with_traits(node, ctx.version)
    qos, retain = mqtt_operation_settings(*layers.nodes)
    messages = tuple(_operation_messages(ctx, node, names.message_class(channel.class_name, field)))
    return Operation(
        key=op_id or f"{channel.key}:{field}",
        py_name=py_name,
        action=action,
        channel=channel,
        messages=messages,
        summary=common.text(layers.get("summary")),
        description=common.text(layers.get("description")),
        qos=qos,
        retain=retain,
        senders=common.senders(py_name, messages, send_names) if action == "send" else (),
    )
