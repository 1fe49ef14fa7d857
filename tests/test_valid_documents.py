"""Valid documents that other tools emit and that used to give wrong code: nullable fields
(what pydantic, FastAPI and FastStream export for `Optional[...]`), optional constrained fields,
free-form objects, an empty parameter default. Each test generates, imports and uses the code."""

from __future__ import annotations

import inspect
import json
import os
from pathlib import Path
from types import ModuleType

import pytest
from dotenv import dotenv_values
from pydantic import ValidationError

from generator import payload_models
from generator.errors import Failed
from generator.format import format_python
from generator.model_groups import Part, module
from generator.pipeline import analyse, build
from tests.support import REPO, assert_type_checks, import_modules, write_files

SPEC = REPO / "tests" / "specs" / "nulls-3.0.yaml"
PACKAGE = "nulls_test"


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("nulls")
    write_files(build(SPEC, PACKAGE).files, root)
    return root


@pytest.fixture(scope="module")
def modules(project: Path) -> tuple[ModuleType, ModuleType]:
    models, publisher = import_modules(project, f"{PACKAGE}.models", f"{PACKAGE}.publisher")
    return models, publisher


def test_a_required_nullable_field_is_sent_as_null_and_read_back(modules) -> None:
    models, publisher = modules
    reading = models.ReadingPayload(value=None, humidity=None)
    wire = publisher.encode(reading)
    assert wire == b'{"value":null,"humidity":null}'
    assert models.ReadingPayload.model_validate_json(wire) == reading


def test_optional_fields_nobody_set_are_left_out_but_received_nulls_kept(modules) -> None:
    models, publisher = modules
    received = models.ReadingPayload.model_validate_json(b'{"value":1,"humidity":2,"note":null}')
    assert publisher.encode(received) == b'{"value":1,"humidity":2,"note":null}'
    assert publisher.encode(models.ReadingPayload(value=1, humidity=2)) == (
        b'{"value":1,"humidity":2}'
    )


def test_an_optional_constrained_field_is_a_plain_value(modules) -> None:
    models, _ = modules
    reading = models.ReadingPayload.model_validate({"value": 1, "humidity": 40, "level": 7})
    assert reading.humidity > 30 and isinstance(reading.level, int)
    with pytest.raises(ValidationError):
        models.ReadingPayload.model_validate({"value": 1, "humidity": 101})
    assert models.ReadingPayload.model_validate({"value": 1, "humidity": None}).humidity is None


def test_a_free_form_object_keeps_its_data(modules) -> None:
    models, publisher = modules
    data = {"anything": [1, {"nested": True}], "more": "text"}
    message = models.AnythingPayload.model_validate(data)
    assert message.model_dump() == data
    assert publisher.encode(message) == b'{"anything":[1,{"nested":true}],"more":"text"}'


def test_an_empty_parameter_default_makes_the_argument_required(modules) -> None:
    _, publisher = modules
    signature = inspect.signature(publisher.Publisher.send_reading)
    assert signature.parameters["sensor"].default is inspect.Parameter.empty


def test_the_project_type_checks(project: Path) -> None:
    assert_type_checks(project, PACKAGE)


def test_a_channel_only_on_a_kafka_server_is_not_served_over_mqtt() -> None:
    result = build(REPO / "tests" / "unsupported" / "kafka-only-channel.yaml", "mixed")
    assert "mixed/handlers/readings.py" in result.files
    assert "mixed/handlers/audit.py" not in result.files
    assert "send_audit" not in result.files["mixed/publisher.py"]
    assert "audit" not in result.files["mixed/routes.py"]
    assert any("only on servers the MQTT service does not speak" in d.message
               for d in result.diagnostics)  # fmt: skip


def test_names_the_generated_project_uses_itself_are_decided_away(tmp_path: Path) -> None:
    """Channels named `topics`, `rawBytes`, `subscriptions`; parameters named `headers`,
    `timeout`, `topic`, `message`, `params` on channels with headers and replies."""
    result = build(REPO / "tests" / "specs" / "clash-names-3.0.yaml", "clashing")
    write_files(result.files, tmp_path)
    service, topics = import_modules(tmp_path, "clashing.service", "clashing.topics")
    assert service.SUBSCRIPTIONS
    handlers = sorted(p for p in result.files if p.startswith("clashing/handlers/"))
    assert "clashing/handlers/topics_.py" in handlers
    params = inspect.signature(service.Publisher.send_topics).parameters
    assert {"headers_", "timeout_", "topic_", "message_", "headers"} <= set(params)
    assert topics.TOPICS_.build({"headers": "h", "timeout": "t", "topic": "x", "message": "m"}) == (
        "t/h/t/x/m"
    )
    assert_type_checks(tmp_path, "clashing")


def test_generated_code_that_would_not_compile_is_an_error_not_a_file() -> None:
    with pytest.raises(Failed, match="does not compile: duplicate argument"):
        format_python("def f(a, a):\n    pass\n", "pkg/broken.py")


@pytest.mark.parametrize(
    "payload",
    [
        "plain",
        'it\'s "quoted" # not a comment',
        "two\nlines $HOME ${HOME}",
        "a'b\n${HOME}",
        "C:\\dir\\ ends\\",
    ],
    ids=["plain", "quotes", "newline", "unwritable", "backslashes"],
)
def test_env_example_reads_back_as_the_documents_values(
    tmp_path: Path, payload: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = tmp_path / "spec.json"
    spec.write_text(
        json.dumps(
            {
                "asyncapi": "2.6.0",
                "info": {"title": "Env", "version": "1.0.0"},
                "servers": {
                    "prod": {
                        "url": "broker.example:1883",
                        "protocol": "mqtt",
                        "bindings": {"mqtt": {"lastWill": {"topic": "bye #1", "message": payload}}},
                    }
                },
                "channels": {"a": {"publish": {"message": {"payload": {"type": "string"}}}}},
            }
        )
    )
    package = f"env_{abs(hash(payload))}"
    result = build(spec, package)
    write_files(result.files, tmp_path)
    (tmp_path / ".env").write_text(result.files[".env.example"])
    monkeypatch.chdir(tmp_path)
    for name in [n for n in os.environ if n.startswith("MQTT_")]:
        monkeypatch.delenv(name)
    (settings,) = import_modules(tmp_path, f"{package}.settings")
    from_file = settings.Settings()
    assert from_file.mqtt_will_payload == payload
    assert from_file.mqtt_will_topic == "bye #1"
    assert from_file.mqtt_host == "broker.example"
    # a value written out reads back as itself (an unreadable line would fall back to the default)
    written = dotenv_values(tmp_path / ".env")
    if "MQTT_WILL_PAYLOAD" in written:
        assert written["MQTT_WILL_PAYLOAD"] == payload
    else:
        assert (
            "# MQTT_WILL_PAYLOAD: the document's value cannot be written"
            in result.files[".env.example"]
        )
    # every line of .env.example is the default it documents: copying it to .env changes nothing
    assert from_file.model_dump() == settings.Settings(_env_file=None).model_dump()


def test_a_spec_file_name_cannot_inject_code(tmp_path: Path) -> None:
    spec = tmp_path / "x\nimport os\nos.system('false')\n.yaml"
    spec.write_text((REPO / "tests" / "specs" / "nulls-3.0.yaml").read_text())
    result = build(spec, "named")
    for relative, content in result.files.items():
        first = content.splitlines()[0] if content else ""
        if relative.endswith((".py", ".toml", ".example")) and "generated by" in first:
            assert "import os" in first and "\\n" in first, relative
    assert "\nimport os" not in result.files["named/models.py"]


def test_overlapping_addresses_route_to_the_most_specific_at_the_highest_qos(
    tmp_path: Path,
) -> None:
    result = build(REPO / "tests" / "unsupported" / "ambiguous-addresses.yaml", "overlap")
    write_files(result.files, tmp_path)
    service, routing = import_modules(tmp_path, "overlap.service", "overlap._runtime.routing")
    route, params = routing.route_for(service.ROUTES, "user/alice.signedup")
    assert (route.channel, params) == ("signedUp", {"id": "alice"})
    route, _ = routing.route_for(service.ROUTES, "user/alice")
    assert route.channel == "user"
    assert [tuple(s) for s in service.SUBSCRIPTIONS] == [("user/+", 2, True)]
    assert any("receives the same topics as channel 'user'" in d.message
               for d in result.diagnostics)  # fmt: skip


def test_descriptions_referenced_from_prose_files_are_their_text() -> None:
    result = build(REPO / "tests" / "specs" / "prose" / "asyncapi.yaml", "prose")
    text = (REPO / "tests" / "specs" / "prose" / "doc.md").read_text()
    assert result.api.description == text.strip() or result.api.description == text
    assert result.api.channels[0].description.startswith("# Hello")
    assert not [d for d in result.diagnostics if "doc.md" in d.render()]


def test_a_payload_class_the_library_did_not_emit_is_reported_not_a_crash() -> None:
    api, _ = analyse(SPEC, "nulls_fallback")
    emitted = Part((), ("AnythingPayload",), "class AnythingPayload:\n    pass")
    parts, notes = payload_models.complete(api, [emitted], "x")
    models = module(parts, "# generated", "nulls_fallback")
    compile(models, "models.py", "exec")
    assert "ReadingPayload: _typing.TypeAlias = _typing.Any" in models
    assert "AnythingPayload: _typing" not in models
    [note] = notes
    assert "could not be modelled as ReadingPayload" in note.message
