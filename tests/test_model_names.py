"""Field and enum member names in a generated `models.py` are exactly those names.py decides
for each schema property and enum value (the models stage hands them to the library and checks
it used them); a name the library chose itself fails generation, located."""

from __future__ import annotations

import ast
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from generator import model_names, names, payload_models
from generator.errors import Failed
from tests.support import REPO, assert_type_checks, import_modules, run_cli

SPEC = REPO / "tests" / "specs" / "names-3.0.yaml"
SCHEMAS: dict[str, Any] = yaml.safe_load(SPEC.read_text(encoding="utf-8"))["components"]["schemas"]


def _emitted(path: Path) -> dict[str, dict[str, str]]:
    """Each class of a models module: wire name (alias, or the name itself) -> Python name for
    a model, json(value) -> member name for an enum."""
    found: dict[str, dict[str, str]] = {}
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if not isinstance(node, ast.ClassDef):
            continue
        members = found.setdefault(node.name, {})
        for statement in node.body:
            if isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name):
                aliases = [
                    k.value.value
                    for call in ast.walk(statement.annotation)
                    if isinstance(call, ast.Call)
                    for k in call.keywords
                    if k.arg == "alias" and isinstance(k.value, ast.Constant)
                ]
                members[aliases[0] if aliases else statement.target.id] = statement.target.id
            elif isinstance(statement, ast.Assign) and isinstance(statement.targets[0], ast.Name):
                value = json.dumps(ast.literal_eval(statement.value))
                members[value] = statement.targets[0].id
    return found


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("names")
    result = run_cli("generate", str(SPEC), "--output", str(out))
    assert result.returncode == 0, result.stderr
    return out


def test_every_field_and_member_is_named_by_names_py(project: Path) -> None:
    emitted = _emitted(project / "names" / "models.py")
    own = {name: names.field_names(list(s.get("properties", {}))) for name, s in SCHEMAS.items()}
    for name in ("Thing", "Pair"):
        assert emitted[name] == own[name]
    # Child declares again the inherited field it makes required, under Thing's name for it
    assert emitted["Child"] == {"from": "from_"}
    # an own property is named clear of the inherited fields, never replacing one
    assert emitted["Grown"] == {"device-id": "device_id_1"}
    assert emitted["Kind"] == {
        json.dumps(value): member
        for value, member in zip(
            SCHEMAS["Kind"]["enum"], names.enum_members(SCHEMAS["Kind"]["enum"]), strict=True
        )
    }
    assert emitted["Level"] == {"1": "VALUE_1", "-3": "VALUE_MINUS_3", "10": "VALUE_10"}
    maybe = [members for cls, members in emitted.items() if cls.startswith("ThingMaybe")]
    assert maybe == [{'"on"': "ON", '"null"': "NULL", "null": "NULL_2"}]
    checked = {"Thing", "Pair", "Child", "Grown", "Kind", "Level", "ThingMaybe"}
    assert set(emitted) <= checked | {"ThingPayload", "PairPayload", "ChildPayload"}


def test_the_decided_names(project: Path) -> None:
    emitted = _emitted(project / "names" / "models.py")
    assert emitted["Thing"] == {
        "class": "class_",
        "model_config": "model_config_",
        "from": "from_",
        "deviceId": "device_id",
        "1st": "field_1st",
        "ünïcode": "unicode",
        "json": "json_",
        "int": "int_",
        "count": "count",
        "mro": "mro_",
        "id": "id",
        "type": "type",
        "kind": "kind",
        "level": "level",
        "": "field",
        "maybe": "maybe",
    }
    # the first in the document keeps the name; the others are numbered in document order, as
    # datamodel-code-generator numbered them before names.py decided (a regenerated project's
    # `a_b` still reads `aB`)
    assert emitted["Pair"] == {
        "aB": "a_b",
        "a-b": "a_b_1",
        "a_b": "a_b_2",
        "Device-ID": "device_id",
    }
    # the document's x-enum-varnames are not used: every name comes from names.py
    assert list(emitted["Kind"].values()) == ["VALUE_1", "A_B", "A_B_2", "EMPTY", "NONE", "TRUE"]


def test_the_names_work(project: Path) -> None:
    """The models read and write the wire names, and type-check."""
    (models,) = import_modules(project, "names.models")
    wire = {"class": "c", "from": "f", "deviceId": "d", "1st": 1, "int": "i", "count": 2}
    thing = models.Thing.model_validate({**wire, "kind": "a-b", "level": -3, "ünïcode": "u"})
    assert (thing.class_, thing.from_, thing.device_id, thing.field_1st) == ("c", "f", "d", 1)
    assert (thing.int_, thing.count, thing.unicode) == ("i", 2, "u")
    assert thing.kind is models.Kind.A_B and thing.level is models.Level.VALUE_MINUS_3
    sent = {**wire, "kind": "a-b", "level": -3, "ünïcode": "u"}
    assert thing.model_dump(mode="json", by_alias=True) == sent  # as the runtime sends it
    assert thing.model_dump(mode="json") == sent  # wire names by default, unset fields left out
    assert json.loads(thing.model_dump_json()) == sent
    python = thing.model_dump(by_alias=False)
    assert python["class_"] == "c" and "model_config_" not in python and "field" not in python
    assert_type_checks(project, "names")


def test_a_name_the_library_chose_fails_generation(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the decided names the library keeps `deviceId`: the models stage refuses that."""
    monkeypatch.setenv("ASYNCAPI_PYGEN_CACHE", "off")
    monkeypatch.setattr(model_names, "aliases", lambda schemas: {})
    with pytest.raises(Failed) as caught:
        payload_models.generate_models({"Pair": SCHEMAS["Thing"]}, {"Pair"}, "a.yaml")
    [diagnostic] = caught.value.diagnostics
    assert diagnostic.render().startswith("a.yaml:")
    assert "cannot name the payload models as generator/names.py decides" in diagnostic.message
    assert "named field Pair.deviceId (property 'deviceId') itself, not 'device_id'" in (
        diagnostic.message
    )


def test_check_reports_enum_members_named_otherwise() -> None:
    source = "class Kind(StrEnum):\n    ONE = '1'\n"
    [problem] = model_names.check(source, {"Kind": {"type": "string", "enum": ["1"]}})
    assert problem == "the library named enum Kind's members ['ONE'], not ['VALUE_1']"


def test_two_fields_of_one_name_in_one_model_fail_generation(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`allOf` of two schemas whose properties share a name: pydantic would keep one field of
    the two (a property silently lost), so the models stage refuses, located."""
    monkeypatch.setenv("ASYNCAPI_PYGEN_CACHE", "off")
    schemas = {
        "Parent": {"type": "object", "properties": {"deviceId": {"type": "string"}}},
        "Other": {"type": "object", "properties": {"device_id": {"type": "integer"}}},
        "Both": {"allOf": [{"$ref": f"#/components/schemas/{n}"} for n in ("Parent", "Other")]},
    }
    with pytest.raises(Failed) as caught:
        payload_models.generate_models(schemas, set(schemas), "a.yaml")
    [diagnostic] = caught.value.diagnostics
    assert diagnostic.render().startswith("a.yaml:")
    expected = (
        "model Both: field device_id would be each of the properties ['deviceId', 'device_id']"
    )
    assert expected in diagnostic.message


FORMATS = ["date", "date-time", "time", "duration", "uuid", "uuid1", "uuid3", "uuid4", "uuid5"]
FORMATS += ["email", "idn-email", "uri", "uri-reference", "iri", "hostname", "ipv4", "ipv6"]
FORMATS += ["ipv4-network", "ipv6-network", "decimal", "binary", "byte", "base64", "password"]
FORMATS += ["path", "ulid", "json-pointer", "regex", "date-time-local", "time-local"]


def test_every_class_name_the_models_module_imports_is_reserved(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A schema named like an import of the models module is renamed by the library, so the
    class the project imports would be missing: names.py gives it a `Model` suffix first. The
    library's imports for every format, enum and constraint kind are all reserved."""
    monkeypatch.setenv("ASYNCAPI_PYGEN_CACHE", "off")
    props: dict[str, Any] = {
        f"s{i}": {"type": "string", "format": f} for i, f in enumerate(FORMATS)
    }
    props |= {"n": {"type": "number", "format": "decimal"}, "k": {"const": "x"}}
    props |= {"u": {"type": "array", "items": {"type": "string"}, "uniqueItems": True}}
    props |= {"b": {"type": "string", "contentEncoding": "base64"}, "free": {"type": "object"}}
    ref = {"$ref": "#/components/schemas/Str"}
    schemas = {
        "Thing": {"type": "object", "properties": props, "additionalProperties": False},
        "Str": {"type": "string", "enum": ["a"]},
        "Int": {"type": "integer", "enum": [1]},
        "Mixed": {"enum": [1, "a", None]},
        "Texts": {"type": "array", "items": {"type": "string"}},
        "Either": {"oneOf": [ref, {"$ref": "#/components/schemas/Int"}]},
    }
    parts = payload_models.generate_models(schemas, set(schemas), "a.yaml")
    imported = {name for part in parts for _, name, _ in part.imports}
    assert {"StrEnum", "IntEnum", "UUID4", "IPv4Network", "NaiveDatetime"} <= imported
    assert {name for name in imported if name[:1].isupper()} <= names.MODELS_IMPORTS
    assert {names.pascal(name) for name in imported} & imported == set()


def test_schemas_named_like_imports_are_modelled(tmp_path: Path) -> None:
    """`StrEnum` was the library's `StrEnumModel`, and the payload fell back to `Any`."""
    spec = tmp_path / "a.yaml"
    document = {
        "asyncapi": "3.0.0",
        "info": {"title": "Clash", "version": "1.0.0"},
        "channels": {"c": {"address": "c", "messages": {"m": {"payload": {"$ref": "#/x"}}}}},
        "operations": {"onC": {"action": "receive", "channel": {"$ref": "#/channels/c"}}},
        "components": {
            "schemas": {
                "StrEnum": {"type": "object", "properties": {"m": {"$ref": "#/s/IntEnum"}}},
                "IntEnum": {"type": "integer", "enum": [1, 2]},
            }
        },
    }
    text = json.dumps(document).replace("#/x", "#/components/schemas/StrEnum")
    spec.write_text(text.replace("#/s/", "#/components/schemas/"), encoding="utf-8")
    result = run_cli("generate", str(spec), "--output", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    assert "could not be modelled" not in result.stderr
    (models,) = import_modules(tmp_path / "out", "clash.models")
    assert models.StrEnumModel.model_validate({"m": 2}).m is models.IntEnumModel.VALUE_2


def test_enum_values_python_cannot_tell_apart_are_a_clear_error(tmp_path: Path) -> None:
    """`[1, true]`: Python's Enum would make TRUE an alias of VALUE_1, and `true` would be read
    and sent back as `1`: refused, saying why, instead."""
    spec = tmp_path / "mixed.yaml"
    spec.write_text(
        "asyncapi: 3.0.0\ninfo: {title: Mixed, version: 1.0.0}\n"
        "channels:\n  c:\n    address: c\n    messages:\n      m:\n        payload:\n"
        "          properties: {mixed: {enum: [1, true, x]}, fine: {enum: [0, '0', null]}}\n"
        "operations:\n  r: {action: receive, channel: {$ref: '#/channels/c'}}\n"
    )
    result = run_cli("generate", str(spec), "--output", str(tmp_path / "out"))
    assert result.returncode == 1, result.stderr
    assert "1 and true are one value to Python" in result.stderr
    assert result.stderr.count("one value to Python") == 1  # 0, "0" and null: three values
    assert "Traceback" not in result.stderr
