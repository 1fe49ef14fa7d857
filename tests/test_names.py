"""Python names from spec names: valid, deterministic, never keywords, builtins or import names."""

from __future__ import annotations

import ast
import json
import keyword
import subprocess
import sys
from pathlib import Path

import pytest

from generator import drift, names
from generator.model import Address
from generator.names import (
    MODULE_NAMES,
    ROUTES_GLOBALS,
    ROUTING_HELPERS,
    TOPIC_HELPERS,
    package_from_title,
    package_problem,
    pascal,
    snake,
    unique,
)
from tests.support import REPO, run_cli


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("deviceTelemetry", "device_telemetry"),
        ("devices/{deviceId}/telemetry", "devices_device_id_telemetry"),
        ("IoT Device Management Service", "iot_device_management_service"),
        ("HTTPServer", "http_server"),
        ("class", "class_"),
        ("type", "type_"),
        ("message", "message_"),
        ("123go", "value_123go"),
        ("", "value"),
    ],
)
def test_snake(text: str, expected: str) -> None:
    assert snake(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("telemetry data", "TelemetryData"),
        ("Field", "FieldModel"),
        ("ConnectionError", "ConnectionErrorModel"),
        ("None", "NoneModel"),
        ("1st", "Model1st"),
    ],
)
def test_pascal(text: str, expected: str) -> None:
    assert pascal(text) == expected


def test_every_name_is_an_identifier() -> None:
    for text in ["a-b", "ü", "x.y", "$ref", "🙂", "def", "None", "__init__"]:
        for name in (snake(text), pascal(text)):
            assert name.isidentifier() and not keyword.iskeyword(name), (text, name)


def test_unique_is_predictable() -> None:
    taken: set[str] = set()
    assert [unique("a", taken) for _ in range(3)] == ["a", "a2", "a3"]


def test_address_filter_and_params() -> None:
    address = Address.parse("user/{id}.signedup/{kind}")
    assert address.mqtt_filter == "user/+/+"
    assert address.param_names == ["id", "kind"]


@pytest.mark.parametrize(
    ("title", "package"),
    [
        ("IoT Device Management Service", "iot_device_management_service"),
        ("Logging", "logging_service"),
        ("Pydantic", "pydantic_service"),
        ("json", "json_service"),
        ("typing", "typing_service"),
        ("Paho", "paho_service"),
        ("Tests", "tests_service"),
        ("Distutils", "distutils_service"),  # gone from 3.12's standard library, not from 3.11's
        ("class", "class_"),
        ("", "service"),
    ],
)
def test_a_package_named_from_the_title_never_shadows_a_module(title: str, package: str) -> None:
    assert package_from_title(title)[0] == package


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("x.y", "not a dotted name: try 'x_y'"),
        ("my-service", "not a Python identifier"),
        ("9lives", "not a Python identifier"),
        ("café", "not a Python identifier"),
        ("class", "a Python keyword"),
        ("json", "the standard library's json"),
        ("asyncio", "the standard library's asyncio"),
        ("pydantic_settings", "pydantic_settings, which the generated project imports"),
        ("sqlalchemy", "sqlalchemy, which the generated project imports"),
        ("tests", "the project's tests folder"),
    ],
)
def test_an_unusable_package_name_says_why(name: str, problem: str) -> None:
    assert problem in (package_problem(name) or "")


def test_usable_package_names() -> None:
    for name in ("my_service", "iot2", "_private", "Pkg", "match"):
        assert package_problem(name) is None, name


def spec_titled(tmp_path: Path, title: str) -> Path:
    spec = tmp_path / "asyncapi.yaml"
    spec.write_text(
        "asyncapi: 3.0.0\n"
        f"info: {{title: {title}, version: '1'}}\n"
        "channels:\n  ping: {address: ping, messages: {m: {payload: {type: string}}}}\n"
        "operations:\n  onPing: {action: receive, channel: {$ref: '#/channels/ping'}}\n"
    )
    return spec


@pytest.mark.parametrize(
    ("title", "why"),
    [
        ("Logging", "the standard library's logging"),
        ("Pydantic", "pydantic, which the generated project imports"),
        ("typing", "the standard library's typing"),
    ],
)
def test_a_project_titled_like_a_module_imports(tmp_path: Path, title: str, why: str) -> None:
    out = tmp_path / "out"
    result = run_cli("generate", str(spec_titled(tmp_path, title)), "--output", str(out))
    assert result.returncode == 0, result.stderr
    package = f"{title.lower()}_service"
    assert (
        f"asyncapi.yaml:2:15: warning: the title makes the package {title.lower()!r}: it would"
        f" shadow {why}; it is {package!r} instead (--package NAME chooses another)"
        in result.stderr
    )
    imported = subprocess.run(
        [sys.executable, "-c", f"import {package}.service, {title.lower()}"],
        cwd=out,
        capture_output=True,
        text=True,
    )
    assert imported.returncode == 0, imported.stderr


@pytest.mark.parametrize("name", ["x.y", "json", "pydantic", "class"])
def test_an_unusable_package_option_is_an_error(tmp_path: Path, name: str) -> None:
    out = tmp_path / "out"
    spec = spec_titled(tmp_path, "Fine")
    result = run_cli("generate", str(spec), "--output", str(out), "--package", name)
    assert result.returncode == 1
    assert result.stderr.startswith(f"--package {name!r} cannot be used: ")
    assert "Traceback" not in result.stderr and not out.exists()


def top_level_names(module: Path) -> list[tuple[str, str | None]]:
    """Every name a module binds at its top level, with the module it imports it from."""
    bound: list[tuple[str, str | None]] = []
    for node in ast.parse(module.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            source = node.module if isinstance(node, ast.ImportFrom) else None
            bound += [((a.asname or a.name).split(".")[0], source) for a in node.names]
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            bound.append((node.name, None))
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            bound += [(t.id, None) for t in targets if isinstance(t, ast.Name)]
    return bound


def public_definitions(runtime_module: str) -> set[str]:
    tree = ast.parse((REPO / "generator" / "runtime" / runtime_module).read_text(encoding="utf-8"))
    kinds = ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef
    return {n.name for n in tree.body if isinstance(n, kinds) and not n.name.startswith("_")}


def test_the_helpers_routes_import_are_the_runtimes() -> None:
    assert set(ROUTING_HELPERS) <= public_definitions("routing.py")
    assert set(TOPIC_HELPERS) <= public_definitions("topics.py")
    assert set(ROUTES_GLOBALS) <= MODULE_NAMES


def assert_routes_names_come_from_the_table(routes: Path) -> None:
    """`routes.py` binds each name once, and each is in the table, a channel's handler module (and
    its route function), or a model."""
    package = routes.parent.name
    bound = top_level_names(routes)
    names = [name for name, _ in bound]
    assert sorted(names) == sorted(set(names)), f"{routes}: a name is bound twice"
    handlers = {name for name, source in bound if source == f"{package}.handlers"}
    assert handlers and not handlers & MODULE_NAMES
    decided = ROUTES_GLOBALS | handlers | {f"_{h}" for h in handlers} | {"annotations"}
    for name, source in bound:
        assert name in decided or source == f"{package}.models", (routes, name)


@pytest.mark.parametrize(
    "routes",
    [
        REPO / "tests/golden/kitchen-sink/project/kitchen_sink/routes.py",
        REPO / "examples/mqtt/iot_device_management_service/routes.py",
    ],
    ids=["kitchen-sink", "example"],
)
def test_every_name_routes_binds_comes_from_the_table(routes: Path) -> None:
    assert_routes_names_come_from_the_table(routes)


def test_channels_named_like_the_routing_helpers(tmp_path: Path) -> None:
    """A channel named like a helper `routes.py` imports gets its own module name, and the
    project still imports (it once replaced `subscriptions_of` and `one_of`)."""
    spec = tmp_path / "asyncapi.yaml"
    channels = ["one_of", "subscriptions_of", "no_handler", "raw_bytes"]
    spec.write_text(
        "asyncapi: 3.0.0\ninfo: {title: Helpers, version: '1'}\nchannels:\n"
        + "".join(
            f"  {c}: {{address: '{c}/{{room}}', parameters: {{room: {{enum: [x, y]}}}},"
            " messages: {m: {payload: {type: string}}}}\n"
            for c in channels
        )
        + "operations:\n"
        + "".join(
            f"  on_{c}: {{action: receive, channel: {{$ref: '#/channels/{c}'}}}}\n"
            for c in channels
        )
    )
    out = tmp_path / "out"
    result = run_cli("generate", str(spec), "--output", str(out))
    assert result.returncode == 0, result.stderr
    for channel in channels:
        assert (out / "helpers" / "handlers" / f"{channel}_.py").is_file(), channel
    assert_routes_names_come_from_the_table(out / "helpers" / "routes.py")
    imported = subprocess.run(
        [sys.executable, "-c", "import helpers.service; print(len(helpers.service.SUBSCRIPTIONS))"],
        cwd=out,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert imported.returncode == 0, imported.stderr


@pytest.mark.parametrize(
    ("parent", "part", "fixed", "expected"),
    [
        ("Telemetry", "sensors", False, "TelemetrySensors"),
        ("Telemetry", "field", False, "TelemetryFieldModel"),
        ("Telemetry", "Item", True, "TelemetryItem"),
        ("Email", "str", False, "EmailStrModel"),  # `EmailStr` is what models.py imports
        ("Aware", "Datetime", True, "AwareDatetimeModel"),
    ],
)
def test_a_nested_class_is_never_named_like_an_import(
    parent: str, part: str, fixed: bool, expected: str
) -> None:
    assert names.nested_class(parent, part, fixed=fixed) == expected


def test_composed_python_names() -> None:
    taken = {"publish", "request"}
    assert names.channel_module("devices/{id}/telemetry", set()) == ("devices_id_telemetry",) * 2
    assert names.channel_module("one_of", set()) == ("one_of_", "one_of_")
    assert names.operation("publish", True, taken) == "publish2"
    assert names.operation("sendTelemetry", True, taken) == "send_telemetry"
    assert names.sender("send_telemetry", "reading", taken) == "send_telemetry_reading"
    assert names.request("send_telemetry", taken) == "send_telemetry_and_wait"
    assert names.unnamed_operation("telemetry", True, taken) == "send_telemetry2"
    assert names.unnamed_operation("telemetry", False, taken) == "on_telemetry"
    assert names.topic_constant("devices_id_telemetry") == "DEVICES_ID_TELEMETRY"
    assert names.route_function("telemetry") == "_telemetry"
    assert names.parameter("timeout") == "timeout_"
    assert names.parameter("l") == "l_"  # E741: the project's ruff check would refuse `l`
    assert names.payload_class("telemetry") == "TelemetryPayload"
    assert names.headers_class("reading") == "ReadingHeaders"
    assert names.distribution("iot_service") == "iot-service"


@pytest.mark.parametrize(
    "package",
    [
        REPO / "tests/golden/kitchen-sink/project/kitchen_sink",
        REPO / "examples/mqtt/iot_device_management_service",
    ],
    ids=["kitchen-sink", "example"],
)
def test_no_generated_module_binds_a_name_twice(package: Path) -> None:
    modules = sorted(p for p in package.rglob("*.py") if "_runtime" not in p.parts)
    assert len(modules) > 10
    for module in modules:
        names_bound = [name for name, _ in top_level_names(module)]
        twice = {name for name in names_bound if names_bound.count(name) > 1}
        assert not twice, (module.relative_to(package), twice)


def test_payload_fields_named_like_pydantic_methods(tmp_path: Path) -> None:
    """The model generator renames a field that would shadow a BaseModel attribute (alias kept);
    importing the models warns about nothing and the wire names still round-trip."""
    spec = tmp_path / "asyncapi.yaml"
    fields = ["model_dump", "model_validate_json", "schema", "json", "copy"]
    spec.write_text(
        "asyncapi: 3.0.0\ninfo: {title: Odd, version: '1'}\n"
        "channels:\n  odd: {address: odd, messages: {m: {payload: {type: object, properties: {"
        + ", ".join(f"{f}: {{type: string}}" for f in fields)
        + "}}}}}\noperations:\n  onOdd: {action: receive, channel: {$ref: '#/channels/odd'}}\n"
    )
    out = tmp_path / "out"
    result = run_cli("generate", str(spec), "--output", str(out))
    assert result.returncode == 0, result.stderr
    script = (
        "import json, sys, odd.models as m; wire = {f: f.upper() for f in sys.argv[1:]};"
        " model = m.MPayload.model_validate(wire);"
        " assert json.loads(model.model_dump_json()) == wire, model.model_dump_json();"
        " print(json.dumps(sorted(m.MPayload.model_fields)))"
    )
    run = subprocess.run(
        [sys.executable, "-W", "error", "-c", script, *fields],
        cwd=out,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout) == [f"{f}_" for f in sorted(fields)]


def test_basemodel_attributes_are_those_of_a_model_class() -> None:
    """Every public attribute a payload model class has (BaseModel's and its metaclass's): a
    field named like one would shadow it. Fails when pydantic adds one."""
    from pydantic import BaseModel

    public = {n for n in [*dir(BaseModel), *dir(type(BaseModel))] if not n.startswith("_")}
    assert public == names.BASEMODEL_ATTRIBUTES


@pytest.mark.parametrize(
    ("properties", "expected"),
    [
        (["deviceId", "firmwareVersion"], ["device_id", "firmware_version"]),
        (["class", "from", "None", "true"], ["class_", "from_", "none", "true"]),
        (
            ["model_config", "json", "schema", "mro", "model"],
            ["model_config_", "json_", "schema_", "mro_", "model"],
        ),
        (["int", "list", "id", "type", "format"], ["int_", "list_", "id", "type", "format"]),
        (["l", "I", "O"], ["l_", "i", "o"]),  # E741 would fail the project's ruff check
        (["1st", "ünïcode", "", "_x", "日本"], ["field_1st", "unicode", "field", "x", "field_1"]),
        # first come keeps the name, as datamodel-code-generator numbered them before
        (["aB", "a_b"], ["a_b", "a_b_1"]),
        (["Foo", "foo"], ["foo", "foo_1"]),
        (["aB", "a-b", "a_b", "a_b_2"], ["a_b", "a_b_1", "a_b_3", "a_b_2"]),
    ],
)
def test_field_names(properties: list[str], expected: list[str]) -> None:
    decided = names.field_names(properties)
    assert list(decided) == properties
    assert list(decided.values()) == expected
    assert all(name.isidentifier() and not keyword.iskeyword(name) for name in expected)


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (
            ["reboot", "update_firmware", "changeInterval"],
            ["REBOOT", "UPDATE_FIRMWARE", "CHANGE_INTERVAL"],
        ),
        (
            ["1", "a-b", "A b", "", "None", "true"],
            ["VALUE_1", "A_B", "A_B_2", "EMPTY", "NONE", "TRUE"],
        ),
        ([None, "null", "ünïcode", "日本"], ["NULL_2", "NULL", "UNICODE", "VALUE"]),
        ([1, -3, 1.5, True], ["VALUE_1", "VALUE_MINUS_3", "VALUE_1_5", "TRUE"]),
        (["x" * 200], ["X" * 51 + "_AA20C23E"]),
    ],
)
def test_enum_members(values: list[object], expected: list[str]) -> None:
    assert names.enum_members(values) == expected


def test_publisher_methods_are_those_of_the_runtime() -> None:
    """Read from the runtime's source, equal to what the imported class has."""
    from generator.runtime.context import Context
    from generator.runtime.publishing import PublisherBase

    public = {name for name in dir(PublisherBase) if not name.startswith("_")}
    assert public == names.PUBLISHER_METHODS == {"publish", "request"}
    carried = {name for name in vars(Context) if not name.startswith("__")} | {"__init__"}
    assert names.runtime_attributes("context", "Context") - {"__slots__"} == carried


def _bound(path: Path) -> set[str]:
    """The names a module binds at its top level, as the drift report reads them."""
    return drift.top_level_names(ast.parse(path.read_text(encoding="utf-8")))


def _enum_types(path: Path) -> set[str]:
    """The enum parameters' types topics.py defines: `Region = Literal["eu", "us"]`."""
    return {
        target.id
        for node in ast.parse(path.read_text(encoding="utf-8")).body
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Subscript)
        for target in node.targets
        if isinstance(target, ast.Name) and ast.unparse(node.value.value) == "Literal"
    }


def test_topic_type_names_cover_what_their_modules_bind() -> None:
    """An enum parameter's type (`Region`) is defined in topics.py and imported into the
    publisher and the handler stubs: whatever else those modules bind (as the golden records
    show), a parameter named like it gets another type name."""
    sink = REPO / "tests/golden/kitchen-sink/project/kitchen_sink"
    example = REPO / "examples/mqtt/iot_device_management_service"
    modules = [sink / "topics.py", sink / "publisher.py", *sorted((sink / "handlers").glob("*.py"))]
    modules += [example / "topics.py", example / "publisher.py"]  # its handlers are user code
    assert "Region" in _enum_types(sink / "topics.py")
    for module in modules:
        package = module.parent if module.parent.name != "handlers" else module.parent.parent
        own = _bound(package / "models.py") | _enum_types(package / "topics.py")
        for name in _bound(module) - own:
            if name[:1].isupper() and not name.isupper():
                assert names.type_alias(name, set(names.TOPIC_TYPE_NAMES)) != name, (module, name)


def test_parameter_names_cover_the_arguments_and_locals_beside_them() -> None:
    """A channel parameter is a keyword argument of its handler, its route adapter and its send
    methods: whatever else those functions name (arguments, locals; the kitchen-sink golden
    record has them all), a parameter named like it gets another name."""
    from generator.pipeline import analyse

    golden = REPO / "tests/golden/kitchen-sink"
    api, _ = analyse(golden / "asyncapi.yaml", "kitchen_sink", None)
    params = {p.py_name for channel in api.channels for p in channel.parameters}
    package = golden / "project/kitchen_sink"
    publisher = ast.parse((package / "publisher.py").read_text(encoding="utf-8"))
    functions = [f for c in publisher.body if isinstance(c, ast.ClassDef) for f in c.body]
    for module in [package / "routes.py", *(package / "handlers").glob("*.py")]:
        functions += ast.parse(module.read_text(encoding="utf-8")).body
    seen: set[str] = set()
    for function in functions:
        if isinstance(function, ast.AsyncFunctionDef | ast.FunctionDef):
            seen |= {a.arg for a in ast.walk(function.args) if isinstance(a, ast.arg)}
            body = [n for statement in function.body for n in ast.walk(statement)]
            seen |= {n.id for n in body if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    assert {"headers", "timeout", "reply_topic"} <= seen and "region" in params
    for name in sorted(seen - params):
        assert names.parameter(name) != name, name
