"""AsyncAPI features, checked on the intermediate model and the generated code: traits, formats
other than JSON Schema, address-less channels, MQTT bindings, non-object payloads."""

from __future__ import annotations

from pathlib import Path

import yaml

from generator.errors import Level
from generator.pipeline import analyse, build
from tests.support import import_modules, write_files


def spec(tmp_path: Path, document: dict) -> Path:
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


TRAIT_MESSAGE = {
    "payload": {"type": "string"},
    "traits": [
        {"contentType": "text/plain", "summary": "from trait 1"},
        {"summary": "from trait 2"},
    ],
}


def v2_doc(message: dict, operation_extra: dict | None = None) -> dict:
    return {
        "asyncapi": "2.6.0",
        "info": {"title": "T", "version": "1"},
        "channels": {
            "a/b": {
                "publish": {"operationId": "onAB", "message": message, **(operation_extra or {})}
            }
        },
    }


def v3_doc(message: dict, operation_extra: dict | None = None) -> dict:
    return {
        "asyncapi": "3.0.0",
        "info": {"title": "T", "version": "1"},
        "channels": {"ab": {"address": "a/b", "messages": {"m": message}}},
        "operations": {
            "onAB": {
                "action": "receive",
                "channel": {"$ref": "#/channels/ab"},
                **(operation_extra or {}),
            }
        },
    }


def the_message(path: Path):
    api, diagnostics = analyse(path)
    return api.channels[0].messages[0], api, diagnostics


def test_2x_message_traits_are_merged_into_the_message(tmp_path: Path) -> None:
    message, _, _ = the_message(spec(tmp_path, v2_doc({**TRAIT_MESSAGE, "summary": "own"})))
    assert message.content_type == "text/plain"
    assert message.py_type == "str"
    assert message.summary == "from trait 2", "2.x: traits are merged into the message, last wins"


def test_3x_message_fields_win_over_traits(tmp_path: Path) -> None:
    message, _, _ = the_message(spec(tmp_path, v3_doc({**TRAIT_MESSAGE, "summary": "own"})))
    assert message.content_type == "text/plain"
    assert message.summary == "own", "3.x: the message's own fields win"


def test_operation_traits_give_mqtt_bindings(tmp_path: Path) -> None:
    trait = {"traits": [{"bindings": {"mqtt": {"qos": 0}}}]}
    for document in (
        v2_doc({"payload": {"type": "string"}}, trait),
        v3_doc({"payload": {"type": "string"}}, trait),
    ):
        _, api, _ = the_message(spec(tmp_path, document))
        assert api.operations[0].qos == 0


def test_avro_payload_is_raw_bytes_with_a_warning(tmp_path: Path) -> None:
    avro = {
        "payload": {
            "schemaFormat": "application/vnd.apache.avro;version=1.9.0",
            "schema": {"type": "record", "name": "R", "fields": []},
        }
    }
    message, _, diagnostics = the_message(spec(tmp_path, v3_doc(avro)))
    assert message.class_name is None and message.py_type == "bytes"
    (warning,) = [d for d in diagnostics if "schemaFormat" in d.message]
    assert warning.level is Level.WARNING
    assert "application/vnd.apache.avro" in warning.message


def test_non_object_payloads_generate(tmp_path: Path) -> None:
    for payload in (
        {"type": "string", "maxLength": 5},
        {"type": "array", "items": {"type": "integer"}},
        {"type": "string", "format": "binary"},
    ):
        result = build(spec(tmp_path, v3_doc({"payload": payload})))
        assert "class MPayload" in result.files["t/models.py"], payload


def test_address_null_receive_is_skipped_and_send_takes_the_topic(tmp_path: Path) -> None:
    document = v3_doc({"payload": {"type": "string"}})
    document["channels"]["ab"]["address"] = None
    _, api, diagnostics = the_message(spec(tmp_path, document))
    assert api.operations == ()
    assert any(
        "address: null" in d.message and "nothing to subscribe to" in d.message for d in diagnostics
    )
    document["operations"]["onAB"]["action"] = "send"
    result = build(spec(tmp_path, document))
    publisher = result.files["t/publisher.py"]
    assert "async def on_ab(self, payload: MPayload, *, topic: str) -> None:" in publisher
    assert "topics.check_topic(topic)" in publisher
    assert any("takes the topic as an argument" in d.message for d in result.diagnostics)


def test_name_clashes_are_resolved_predictably_and_reported(tmp_path: Path) -> None:
    source = Path(__file__).parent / "specs" / "clash-3.0.yaml"
    result = build(source, "clash")
    handlers = sorted(p for p in result.files if "/handlers/" in p)
    assert handlers == [
        "clash/handlers/__init__.py",
        "clash/handlers/class_.py",
        "clash/handlers/user_events.py",
        "clash/handlers/user_events2.py",
    ]
    models = result.files["clash/models.py"]
    assert "class ThingPayload(WireModel)" in models and "class ThingPayload2(WireModel)" in models
    assert 'model_config_: Annotated[str | None, Field(alias="model_config")]' in models
    warnings = [d.message for d in result.diagnostics if d.level is Level.WARNING]
    assert (
        "channel 'user_events' is named user_events2 in Python (user_events is taken)" in warnings
    )
    assert "class name ThingPayload is already used: this schema is ThingPayload2" in warnings


def test_parameter_default_enum_and_pattern(tmp_path: Path) -> None:
    document = v3_doc({"payload": {"type": "string"}})
    document["channels"]["ab"]["address"] = "a/{zone}"
    document["channels"]["ab"]["parameters"] = {"zone": {"enum": ["eu", "us"], "default": "eu"}}
    document["operations"]["onAB"]["action"] = "send"
    result = build(spec(tmp_path, document))
    assert '*, zone: Zone = "eu") -> None' in result.files["t/publisher.py"]
    assert 'Zone = Literal["eu", "us"]\n' in result.files["t/topics.py"]
    assert 'ParamRule(enum=("eu", "us"))' in result.files["t/topics.py"]
    v2 = {
        "asyncapi": "2.6.0",
        "info": {"title": "T", "version": "1"},
        "channels": {
            "a/{id}": {
                "parameters": {"id": {"schema": {"type": "string", "pattern": "^[0-9]+$"}}},
                "subscribe": {"message": {"payload": {"type": "string"}}},
            }
        },
    }
    assert 'ParamRule(pattern="^[0-9]+$")' in build(spec(tmp_path, v2)).files["t/topics.py"]


def test_circular_and_combined_schemas_generate_and_validate(tmp_path: Path) -> None:
    payload = {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "children": {"type": "array", "items": {"$ref": "#/components/schemas/Tree"}},
        },
    }
    document = v3_doc({"payload": {"$ref": "#/components/schemas/Tree"}})
    document["components"] = {
        "schemas": {
            "Tree": payload,
            "Shape": {
                "oneOf": [
                    {"$ref": "#/components/schemas/Circle"},
                    {"$ref": "#/components/schemas/Square"},
                ]
            },
            "Circle": {
                "type": "object",
                "required": ["r"],
                "properties": {"r": {"type": "number"}},
            },
            "Square": {
                "allOf": [
                    {"$ref": "#/components/schemas/Named"},
                    {
                        "type": "object",
                        "required": ["side"],
                        "properties": {"side": {"type": "number"}},
                    },
                ]
            },
            "Named": {"type": "object", "properties": {"label": {"type": "string"}}},
        }
    }
    document["components"]["schemas"]["Tree"]["properties"]["shape"] = {
        "$ref": "#/components/schemas/Shape"
    }
    write_files(build(spec(tmp_path, document), "circular_demo").files, tmp_path)
    (models,) = import_modules(tmp_path, "circular_demo.models")
    tree = models.Tree.model_validate(
        {"name": "root", "children": [{"name": "leaf", "children": []}], "shape": {"r": 2}}
    )
    assert tree.children[0].name == "leaf"
    square = models.Tree.model_validate({"shape": {"side": 3, "label": "sq"}}).shape
    assert (type(square).__name__, square.label) == ("Square", "sq")
    assert type(tree.shape).__name__ == "Circle"


def test_declared_discriminator_picks_the_model(tmp_path: Path) -> None:
    result = build(Path(__file__).parent / "specs" / "pets-2.6.yaml", "pets_demo")
    write_files(result.files, tmp_path)
    (routes,) = import_modules(tmp_path, "pets_demo.routes")
    decode = routes.ROUTES[0].decode
    dog = decode(b'{"petType": "Dog", "name": "rex", "good": true}')
    assert type(dog).__name__ == "Dog", "a Dog also validates as a Cat: the tag must decide"
    assert type(decode(b'{"petType": "Cat", "name": "tom"}')).__name__ == "Cat"
    assert type(decode(b'{"petType": "Bird", "name": "x"}')).__name__ == "Cat", "fallback"


def test_send_operations_named_like_the_publishers_own_methods_get_a_suffix(
    tmp_path: Path,
) -> None:
    document = v3_doc({"payload": {"type": "string"}})
    document["operations"] = {
        name: {"action": "send", "channel": {"$ref": "#/channels/ab"}}
        for name in ("publish", "request")
    }
    publisher = build(spec(tmp_path, document)).files["t/publisher.py"]
    assert "async def publish2(self, payload: MPayload) -> None:" in publisher
    assert "async def request2(self, payload: MPayload) -> None:" in publisher
    assert "async def publish(" not in publisher and "async def request(" not in publisher


def test_an_example_that_breaks_its_payload_schema_is_a_warning_that_says_where(
    tmp_path: Path,
) -> None:
    payload = {
        "type": "object",
        "properties": {"level": {"type": "integer", "minimum": 0}, "at": {"format": "date-time"}},
    }
    examples = [{"payload": {"level": 3, "at": "not a time"}}, {"payload": {"level": -1}}]
    _, diagnostics = analyse(spec(tmp_path, v3_doc({"payload": payload, "examples": examples})))
    warned = [d.message for d in diagnostics if d.level is Level.WARNING and "example" in d.message]
    assert len(warned) == 1  # formats are not asserted: the first example is valid
    assert warned[0].startswith("example 2 of message") and "level: -1 is less than" in warned[0]
