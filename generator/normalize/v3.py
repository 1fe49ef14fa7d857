"""AsyncAPI 3.x: channels own their address and messages; operations reference channels."""

from __future__ import annotations

from dataclasses import replace

from generator import names
from generator.errors import Diagnostic
from generator.loader import split_pointer
from generator.model import Action, Address, Api, Channel, Message, Operation, Reply, Server
from generator.names import PUBLISHER_METHODS
from generator.normalize import common
from generator.normalize.bindings import mqtt_operation_settings
from generator.normalize.security import server_security
from generator.refs import REF, Node, Workspace, is_ref


def normalize(ws: Workspace, version: str, package: str | None) -> tuple[Api, list[Diagnostic]]:
    ctx = common.new_context(ws, version)
    root = ws.root_node()
    servers = [_server(ctx, name, node) for name, node in common.entries(root, "servers")]
    channels = {key: _channel(ctx, key, node) for key, node in common.entries(root, "channels")}
    operations: list[Operation] = []
    send_names: set[str] = set(PUBLISHER_METHODS)
    for key, node in common.entries(root, "operations"):
        op = _operation(ctx, key, node, channels, send_names)
        if op is not None:
            operations.append(op)
    components = root.get("components")
    for key, node in common.entries(components, "operations") if components else []:
        _check_component_operation(ctx, key, node)
    api = common.assemble(ctx, package, servers, list(channels.values()), operations)
    return api, ctx.diagnostics


def _server(ctx: common.Context, name: str, node: Node) -> Server:
    host = common.text(node.get("host")) + common.text(node.get("pathname"))
    server = common.server(ctx, name, node, host)
    return replace(server, security=server_security(ctx, name, node))


def _channel(ctx: common.Context, key: str, node: Node) -> Channel:
    address_node = node.get("address")
    address = (
        Address.parse(address_node.value)
        if address_node and isinstance(address_node.value, str)
        else None
    )
    params_node = node.get("parameters")
    if address is not None:
        common.check_address_params(ctx, address_node or node, address, params_node)
    params = tuple(
        common.parameter(name, p, None) for name, p in common.entries(node, "parameters")
    )
    messages = [common.message(ctx, m, key) for key, m in common.entries(node, "messages")]
    py_name, class_name = common.channel_name(ctx, key, node)
    return Channel(
        key=key,
        py_name=py_name,
        class_name=class_name,
        address=address,
        parameters=params,
        messages=tuple(messages),
        description=common.text(node.get("description")),
        location=node.location,
        servers=_server_names(ctx, node),
    )


def _server_names(ctx: common.Context, node: Node) -> tuple[str, ...]:
    """The names of the root servers a channel's `servers` references point at."""
    base = node.deref()
    raw = base.raw_child("servers")
    names: list[str] = []
    for index, item in enumerate(raw if isinstance(raw, list) else []):
        where = Node(node.ws, base.doc, f"{base.pointer}/servers/{index}", item)
        tokens = _ref_tokens(where)
        if len(tokens) == 2 and tokens[0] == "servers":
            names.append(tokens[1])
        else:
            ref = item.get(REF) if isinstance(item, dict) else item
            ctx.error(
                f"channel server {ref!r} must reference a server under the root 'servers'", where
            )
    return tuple(names)


def _ref_tokens(node: Node) -> list[str]:
    """Where the reference held by `node` points (first hop only), as pointer tokens, when it
    points into the root document; identity matters here, not the value."""
    if not is_ref(node.value):
        return []
    target = node.ws.resolve(node.value[REF], node.doc, node.pointer)
    return split_pointer(target.pointer) if target.doc is node.ws.root else []


def _channel_key(ctx: common.Context, op: Node, channels: dict[str, Channel]) -> str | None:
    base = op.deref()
    raw = base.raw_child("channel")
    where = Node(op.ws, base.doc, base.pointer + "/channel", raw)
    tokens = _ref_tokens(where)
    if len(tokens) != 2 or tokens[0] != "channels" or tokens[1] not in channels:
        ref = raw.get(REF) if isinstance(raw, dict) else raw
        ctx.error(
            f"operation channel {ref!r} must reference a channel under the root 'channels'", where
        )
        return None
    return tokens[1]


def _check_component_operation(ctx: common.Context, key: str, op: Node) -> None:
    """An operation under `components` is not generated, but its messages must still belong to
    the channel it references (as for root operations)."""
    base = op.deref()
    raw = base.raw_child("channel")
    channel = _ref_tokens(Node(op.ws, base.doc, base.pointer + "/channel", raw))
    listed = base.raw_child("messages")
    for index, item in enumerate(listed if isinstance(listed, list) and channel else []):
        where = Node(op.ws, base.doc, f"{base.pointer}/messages/{index}", item)
        tokens = _ref_tokens(where)
        if tokens[:-1] != [*channel, "messages"]:
            ref = item.get(REF) if isinstance(item, dict) else item
            ctx.error(
                f"operation message {ref!r} is not a message of its channel"
                f" {'/'.join(channel)!r} (components operation {key!r})",
                where,
            )


def _operation(
    ctx: common.Context, key: str, node: Node, channels: dict[str, Channel], send_names: set[str]
) -> Operation | None:
    channel_key = _channel_key(ctx, node, channels)
    channel = channels.get(channel_key) if channel_key else None
    if channel is None:
        return None
    messages = _operation_messages(ctx, node, channel_key or "", channel)
    action: Action = "send" if common.text(node.get("action")) == "send" else "receive"
    layers = common.with_traits(node, ctx.version)
    qos, retain = mqtt_operation_settings(*layers.nodes)
    py_name = names.operation(key, action == "send", send_names)
    if channel.address is None and action == "receive":
        ctx.warn(
            f"channel {channel.key!r} has no address (address: null): receive operation {key!r} is "
            "not generated, since there is nothing to subscribe to; give the channel an address",
            node,
        )
        return None
    if channel.address is None:
        ctx.warn(
            f"channel {channel.key!r} has no address (address: null): the send method of "
            f"operation {key!r} takes the topic as an argument",
            node,
        )
    reply = _reply(ctx, node, channels, channel)
    return Operation(
        key=key,
        py_name=py_name,
        action=action,
        channel=channel,
        messages=messages,
        summary=common.text(layers.get("summary")),
        description=common.text(layers.get("description")),
        qos=qos,
        retain=retain,
        senders=common.senders(py_name, messages, send_names) if action == "send" else (),
        reply=reply,
        request_py_name=(
            _request_name(reply, channel, py_name, send_names) if action == "send" else None
        ),
    )


def _reply(
    ctx: common.Context, op: Node, channels: dict[str, Channel], request: Channel
) -> Reply | None:
    """The operation's reply: its channel (by reference) and messages, or a payload address."""
    node = op.get("reply")
    if node is None:
        return None
    channel = None
    raw = node.deref().raw_child("channel")
    if raw is not None:
        tokens = _ref_tokens(Node(op.ws, node.deref().doc, node.deref().pointer + "/channel", raw))
        channel = channels.get(tokens[1]) if len(tokens) == 2 and tokens[0] == "channels" else None
    listed = node.get("messages")
    if listed is not None:
        messages = tuple(common.message(ctx, m, "reply") for m in listed.elements())
    else:
        messages = channel.messages if channel is not None else ()
    if not messages:
        ctx.warn(
            "reply names no messages (no channel, no messages list): no reply code is generated",
            node,
        )
        return None
    address = common.locator(ctx, node.get("address"), "reply address")
    if (channel is None or channel.address is None) and address is None:
        ctx.warn(
            "reply has no address this service can use (a channel with an address, or a "
            "$message.payload or $message.header location): no reply code is generated",
            node,
        )
        return None
    return Reply(channel, messages, address)


def _request_name(reply: Reply | None, request: Channel, send: str, taken: set[str]) -> str | None:
    """`<send>_and_wait` when replies arrive on a channel this service can subscribe to and
    whose parameters the request's parameters fill."""
    if reply is None or reply.channel is None or reply.channel.address is None:
        return None
    if request.address is None:
        return None
    needed = {p.name for p in reply.channel.parameters}
    if not needed <= {p.name for p in request.parameters}:
        return None
    return names.request(send, taken)


def _operation_messages(
    ctx: common.Context, op: Node, channel_key: str, channel: Channel
) -> tuple[Message, ...]:
    """An operation's messages must be its channel's; no list means all of them."""
    listed = op.get("messages")
    if listed is None:
        return channel.messages
    chosen: list[Message] = []
    raw_list = listed.value if isinstance(listed.value, list) else []
    for index, raw in enumerate(raw_list):
        where = Node(op.ws, listed.doc, f"{listed.pointer}/{index}", raw)
        tokens = _ref_tokens(where)
        if len(tokens) != 4 or tokens[:2] != ["channels", channel_key] or tokens[2] != "messages":
            ref = raw.get("$ref") if isinstance(raw, dict) else raw
            ctx.error(
                f"operation message {ref!r} is not a message of its channel {channel_key!r}", where
            )
            continue
        message = common.message(ctx, where.deref(), tokens[3])
        chosen.append(message)
    return tuple(chosen)
