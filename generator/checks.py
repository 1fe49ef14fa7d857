"""Checks on the normalized model that warn but do not stop generation.

A message's own examples should match its payload: published documents get this wrong
surprisingly often, and a user should hear it from the generator, not from a rejected message.
Servers the MQTT runtime cannot serve are named once.
"""

from __future__ import annotations

from typing import Any

from generator.errors import Diagnostic, Level, Location
from generator.model import Api, Message
from generator.model_groups import references
from generator.schemas_bundle import REF_PREFIX


def _schema(api: Api, class_name: str) -> dict[str, Any]:
    """The payload schema with the bundle's schemas it reaches (a compiled validator compiles
    every schema it is given: a thousand payloads each with all the others is quadratic)."""
    reached, todo = {class_name}, [class_name]
    while todo:
        for name in references(api.schemas.get(todo.pop())):
            if name not in reached:
                reached.add(name)
                todo.append(name)
    schemas = {name: api.schemas[name] for name in sorted(reached) if name in api.schemas}
    return {"$ref": REF_PREFIX + class_name, "components": {"schemas": schemas}}


def payload_validator(api: Api, class_name: str) -> Any:
    """A yes/no validator for one bundled payload schema (draft-07, formats not checked), the
    compiled one (jsonschema-rs): importing the Python one costs more than a small run."""
    import jsonschema_rs

    return jsonschema_rs.Draft7Validator(_schema(api, class_name), validate_formats=False)


def _explaining_validator(api: Api, class_name: str) -> Any:
    """The Python validator, whose errors say where and why: for an example that fails."""
    import jsonschema

    return jsonschema.Draft7Validator(_schema(api, class_name))


def check_servers(api: Api, source: str) -> list[Diagnostic]:
    others = api.other_servers
    if not others:
        return []
    listed = ", ".join(f"{s.name!r} ({s.protocol})" for s in others)
    text = (
        f"the generated service speaks MQTT only; these servers are not served: {listed}; "
        "channels that list no servers are served over MQTT all the same"
    )
    return [Diagnostic(text, others[0].location or Location(source), None, Level.WARNING)]


def check_ambiguous_addresses(api: Api, source: str) -> list[Diagnostic]:
    """Receive channels whose addresses match exactly the same topics: only the first gets them."""
    first: dict[tuple[tuple[str, bool], ...], str] = {}
    warnings = []
    for channel in api.receive_channels:
        if channel.address is None:
            continue
        shape = channel.address.shape
        if shape in first:
            text = (
                f"channel {channel.key!r} ({channel.title}) receives the same topics as channel "
                f"{first[shape]!r}, which comes first and gets them all"
            )
            location = channel.location or Location(source)
            warnings.append(Diagnostic(text, location, None, Level.WARNING))
        else:
            first[shape] = channel.key
    return warnings


def check_examples(api: Api, source: str) -> tuple[list[Diagnostic], dict[str, Any]]:
    """Warnings for examples that break their payload schema, and each JSON message's first
    example that matches it (by message key): the simulator and the generated tests use those."""
    warnings: list[Diagnostic] = []
    valid: dict[str, Any] = {}
    seen: set[str] = set()
    for channel in api.channels:
        for message in channel.messages:
            if message.key in seen or message.class_name is None or not message.examples:
                continue
            seen.add(message.key)
            found, good = _check(api, message, source)
            warnings += found
            if good and message.is_json:
                valid[message.key] = good[0]
    return warnings, valid


def _check(api: Api, message: Message, source: str) -> tuple[list[Diagnostic], list[Any]]:
    assert message.class_name is not None
    validator = payload_validator(api, message.class_name)
    found, good = [], []
    for index, example in enumerate(message.examples, start=1):
        if validator.is_valid(example):
            good.append(example)
            continue
        explaining = _explaining_validator(api, message.class_name)
        error = next(iter(explaining.iter_errors(example)), None)
        if error is not None:
            where = "/".join(str(p) for p in error.absolute_path) or "payload"
            text = (
                f"example {index} of message {message.name!r} does not match its payload schema: "
                f"{where}: {error.message[:120]}"
            )
            location = message.location or Location(source)
            found.append(Diagnostic(text, location, None, Level.WARNING))
    return found, good
