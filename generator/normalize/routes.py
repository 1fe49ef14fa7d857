"""What the service subscribes to: one route per channel it receives on (plus the reply channels
of its own requests), each with its decoder, the most specific address first."""

from __future__ import annotations

from generator.model import Api, Channel, Decoder, Message, Operation, Route, payload_type
from generator.normalize.dispatch import discriminate


def build_routes(api: Api) -> tuple[Route, ...]:
    routes = []
    receiving = {c.key for c in api.receive_channels}
    for channel in api.receive_channels:
        messages = api.received_messages(channel)
        qos = max(op.qos for op in api.receive_operations(channel))
        decoder = _decoder(api, messages)
        routes.append(Route(channel, messages, qos, decoder, answers=answers(api, channel)))
    for op in api.send_operations:
        reply = op.reply
        if op.request_py_name is None or reply is None or reply.channel is None:
            continue
        if reply.channel.key in receiving:
            continue
        receiving.add(reply.channel.key)
        decoder = _decoder(api, reply.messages)
        routes.append(Route(reply.channel, reply.messages, 1, decoder, resolves=True))
    # A topic goes to the first route that matches it; the sort is stable, so equal addresses
    # keep the document's order.
    routes.sort(
        key=lambda r: r.channel.address.specificity if r.channel.address else (0, 0), reverse=True
    )
    return tuple(routes)


def answers(api: Api, channel: Channel) -> Operation | None:
    """The receive operation on `channel` whose reply the service can address, if any."""
    for op in api.receive_operations(channel):
        reply = op.reply
        if reply is None or not reply.messages:
            continue
        if reply.address is not None:
            return op
        needed = {p.name for p in reply.channel.parameters} if reply.channel else {""}
        if (
            reply.channel
            and reply.channel.address
            and needed <= {p.name for p in channel.parameters}
        ):
            return op
    return None


def _decoder(api: Api, messages: tuple[Message, ...]) -> Decoder:
    kind = payload_type(messages)
    if kind == "bytes":
        return Decoder("bytes")
    if kind == "str":
        return Decoder("text")
    tagged = discriminate(api.schemas, api.discriminators, messages)
    if tagged is None:
        return Decoder("model", kind, union="|" in kind)
    prop, table = tagged
    return Decoder("model", kind, union="|" in kind, tag_property=prop, tags=tuple(table.items()))
