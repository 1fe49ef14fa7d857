"""An enum parameter has one named type (`Room = Literal[...]` in `topics.py`) that handler
stubs, routes and send methods use: a value added to the enum needs no handler edit. A handler
written with an inline `Literal` that the enum outgrew is named by the drift report."""

from __future__ import annotations

import copy
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from generator.pipeline import build
from tests.support import run_cli

ROOMS: dict[str, Any] = {
    "asyncapi": "3.0.0",
    "info": {"title": "Home Rooms", "version": "1.0.0"},
    "channels": {
        "climate": {
            "address": "rooms/{room}/climate",
            "parameters": {"room": {"enum": ["kitchen", "bedroom", "hall"]}},
            "messages": {"reading": {"$ref": "#/components/messages/reading"}},
        },
        "heat": {
            "address": "rooms/{room}/heat",
            "parameters": {"room": {"enum": ["kitchen", "bedroom", "hall"]}},
            "messages": {"command": {"$ref": "#/components/messages/command"}},
        },
    },
    "operations": {
        "onClimate": {"action": "receive", "channel": {"$ref": "#/channels/climate"}},
        "heat": {"action": "send", "channel": {"$ref": "#/channels/heat"}},
    },
    "components": {
        "messages": {
            "reading": {
                "payload": {"type": "object", "properties": {"celsius": {"type": "number"}}}
            },
            "command": {"payload": {"type": "object", "properties": {"on": {"type": "boolean"}}}},
        }
    },
}
HANDLER = "home_rooms/handlers/climate.py"
# A user's own code that sends: it must type-check before and after the enum grows.
SENDER = (
    "from home_rooms.models import CommandPayload\n"
    "from home_rooms.publisher import Publisher\n\n\n"
    "async def warm(publisher: Publisher) -> None:\n"
    '    await publisher.heat(CommandPayload(on=True), room="kitchen")\n'
)


def with_garage(document: dict[str, Any]) -> dict[str, Any]:
    grown = copy.deepcopy(document)
    for channel in grown["channels"].values():
        channel["parameters"]["room"]["enum"].append("garage")
    return grown


def generate(spec: Path, document: dict[str, Any], out: Path, *flags: str) -> Any:
    spec.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return run_cli("generate", str(spec), "--output", str(out), *flags)


def mypy(project: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "home_rooms"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_adding_an_enum_value_needs_no_handler_edit(tmp_path: Path) -> None:
    spec, out = tmp_path / "rooms.yaml", tmp_path / "project"
    first = generate(spec, ROOMS, out)
    assert first.returncode == 0, first.stderr
    handler = (out / HANDLER).read_text(encoding="utf-8")
    assert "from home_rooms.topics import Room\n" in handler
    assert "*, room: Room) -> None:" in handler
    (out / "home_rooms" / "warm.py").write_text(SENDER, encoding="utf-8")

    again = generate(spec, with_garage(ROOMS), out, "--strict")
    assert again.returncode == 0, again.stderr
    assert "warning" not in again.stderr, again.stderr
    assert (out / HANDLER).read_text(encoding="utf-8") == handler  # user zone untouched
    topics = (out / "home_rooms" / "topics.py").read_text(encoding="utf-8")
    assert 'Room = Literal["kitchen", "bedroom", "hall", "garage"]\n' in topics
    assert topics.count("Room = ") == 1  # the two channels share one type
    checked = mypy(out)
    assert checked.returncode == 0, checked.stdout


def test_a_handler_with_an_outgrown_literal_is_named_with_the_type_it_needs(
    tmp_path: Path,
) -> None:
    spec, out = tmp_path / "rooms.yaml", tmp_path / "project"
    assert generate(spec, ROOMS, out).returncode == 0
    path = out / HANDLER
    text = path.read_text(encoding="utf-8")
    old = text.replace("from home_rooms.topics import Room\n", "from typing import Literal\n")
    old = old.replace("room: Room)", 'room: Literal["kitchen", "bedroom", "hall"])')
    assert old != text
    path.write_text(old, encoding="utf-8")  # as stubs were written before named types

    same = generate(spec, ROOMS, out, "--strict")
    assert same.returncode == 0, same.stderr  # the Literal still fits: no drift

    grown = generate(spec, with_garage(ROOMS), out, "--strict")
    assert grown.returncode == 1, grown.stderr
    line = 1 + old.splitlines().index(
        next(x for x in old.splitlines() if x.startswith("async def handle"))
    )
    expected = (
        f"{path}:{line}:1: warning: handle() takes room: Literal['kitchen', 'bedroom', 'hall'], "
        "but channel rooms/{room}/climate now passes "
        "Room = Literal['kitchen', 'bedroom', 'hall', 'garage']: annotate it `room: Room` "
        "(`from home_rooms.topics import Room`)"
    )
    assert expected in grown.stderr.splitlines(), grown.stderr
    assert "--strict: exit 1" in grown.stderr
    replayed = generate(spec, with_garage(ROOMS), out, "--strict")  # nothing changed: a replay
    assert replayed.returncode == 1 and expected in replayed.stderr.splitlines()
    checked = mypy(out)  # the report is right: mypy fails in the generated routes
    assert checked.returncode == 1
    assert re.search(r"routes\.py:\d+: error: Argument", checked.stdout), checked.stdout

    path.write_text(text, encoding="utf-8")  # the user follows the advice
    fixed = generate(spec, with_garage(ROOMS), out, "--strict")
    assert fixed.returncode == 0, fixed.stderr


def test_a_literal_left_on_a_parameter_that_lost_its_enum_is_reported(tmp_path: Path) -> None:
    spec, out = tmp_path / "rooms.yaml", tmp_path / "project"
    assert generate(spec, ROOMS, out).returncode == 0
    path = out / HANDLER
    text = path.read_text(encoding="utf-8").replace("room: Room)", "room: \"Literal['hall']\")")
    path.write_text(text, encoding="utf-8")
    plain = copy.deepcopy(ROOMS)
    for channel in plain["channels"].values():
        channel["parameters"]["room"] = {"description": "any room"}
    result = generate(spec, plain, out, "--strict")
    assert result.returncode == 1
    assert "now passes any str: annotate it `room: str`" in result.stderr, result.stderr


@pytest.mark.parametrize(
    ("schema", "parameter", "expected"),
    [
        ("Room", "room", "Room2"),  # a payload model already has the name
        ("Thing", "context", "Context2"),  # what handler stubs import
    ],
)
def test_a_named_type_never_takes_a_name_already_in_use(
    tmp_path: Path, schema: str, parameter: str, expected: str
) -> None:
    document = copy.deepcopy(ROOMS)
    climate = document["channels"]["climate"]
    climate["address"] = f"rooms/{{{parameter}}}/climate"
    climate["parameters"] = {parameter: {"enum": ["kitchen"]}}
    reading = document["components"]["messages"]["reading"]
    document["components"]["schemas"] = {schema: reading["payload"]}
    reading["payload"] = {"$ref": f"#/components/schemas/{schema}"}
    spec = tmp_path / "rooms.yaml"
    spec.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    files = build(spec).files
    assert f'{expected} = Literal["kitchen"]\n' in files["home_rooms/topics.py"]
    handler = files[HANDLER]
    assert f"from home_rooms.topics import {expected}\n" in handler
    assert f"{parameter}_: {expected}" in handler or f"{parameter}: {expected}" in handler
    compile(handler, HANDLER, "exec")


def test_a_named_type_that_moved_to_another_enum_is_reported(tmp_path: Path) -> None:
    """Two channels share `Room`; one of them gains a value and gets a type of its own: its
    handler, still annotated `room: Room`, is named with the type it needs now."""
    both = copy.deepcopy(ROOMS)
    both["operations"]["heat"]["action"] = "receive"
    spec, out = tmp_path / "rooms.yaml", tmp_path / "project"
    assert generate(spec, both, out).returncode == 0
    heat = out / "home_rooms" / "handlers" / "heat.py"
    assert "*, room: Room) -> None:" in heat.read_text(encoding="utf-8")
    grown = copy.deepcopy(both)
    grown["channels"]["heat"]["parameters"]["room"]["enum"].append("garage")
    again = generate(spec, grown, out, "--strict")
    assert again.returncode == 1
    [warning] = [line for line in again.stderr.splitlines() if line.startswith(str(heat))]
    topics = (out / "home_rooms" / "topics.py").read_text(encoding="utf-8")
    [new_type] = re.findall(r"^(\w+) = Literal\[.*\"garage\"\]$", topics, re.MULTILINE)
    assert f"annotate it `room: {new_type}`" in warning and new_type != "Room"


def test_a_non_string_enum_is_written_as_the_topic_carries_it(tmp_path: Path) -> None:
    """AsyncAPI 2.x keeps a parameter's enum in a JSON Schema: `true` and `0.5` appear in a
    topic as JSON writes them, not as Python's `True`."""
    spec = tmp_path / "flags.yaml"
    spec.write_text(
        yaml.safe_dump(
            {
                "asyncapi": "2.6.0",
                "info": {"title": "Flags", "version": "1.0.0"},
                "channels": {
                    "x/{flag}/{ratio}": {
                        "parameters": {
                            "flag": {"schema": {"type": "boolean", "enum": [True, False]}},
                            "ratio": {"schema": {"type": "number", "enum": [0.5, 1], "default": 1}},
                        },
                        "subscribe": {"message": {"payload": {"type": "string"}}},
                    }
                },
            }
        )
    )
    topics = build(spec, "flags").files["flags/topics.py"]
    assert 'Flag = Literal["true", "false"]' in topics
    assert 'Ratio = Literal["0.5", "1"]' in topics
