"""Each enum parameter's named type (`Room = Literal["kitchen", "hall"]` in `topics.py`).

Handlers, routes and send methods annotate with the name, so a value added to the enum changes
one generated line and no user handler. Names are decided here, once the model classes are
known: a parameter never takes a class's name, a name of the modules that import it, or a topic
constant's. Parameters with the same name and the same values share one type.
"""

from __future__ import annotations

from dataclasses import replace

from generator.model import Channel, Operation, Parameter
from generator.names import TOPIC_TYPE_NAMES, type_alias


def name_types(
    channels: list[Channel], operations: list[Operation], classes: set[str]
) -> tuple[list[Channel], list[Operation]]:
    """The channels with their enum parameters named, and the operations pointing at them."""
    taken = set(TOPIC_TYPE_NAMES) | classes | {c.const_name for c in channels}
    decided: dict[tuple[str, tuple[str, ...]], str] = {}

    def named(p: Parameter) -> Parameter:
        if not p.enum:
            return p
        key = (p.name, p.enum)
        if key not in decided:
            decided[key] = type_alias(p.name, taken)
        return replace(p, type_name=decided[key])

    renamed = {
        c.key: replace(c, parameters=tuple(named(p) for p in c.parameters)) for c in channels
    }
    return list(renamed.values()), [_repoint(op, renamed) for op in operations]


def _repoint(op: Operation, channels: dict[str, Channel]) -> Operation:
    reply = op.reply
    if reply is not None and reply.channel is not None and reply.channel.key in channels:
        reply = replace(reply, channel=channels[reply.channel.key])
    return replace(op, channel=channels.get(op.channel.key, op.channel), reply=reply)
