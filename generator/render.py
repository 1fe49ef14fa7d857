"""The render stage: one Jinja template per output file; the templates hold layout, not logic.

Spec text only ever reaches a template as a value passed through an escaping filter (`pystr`,
`docstring`, `toml`, `md`), so it is data in the output, never code, and never Jinja syntax.
"""

from __future__ import annotations

import json
import os
import re
import textwrap
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2

from generator import names
from generator.cache import directory
from generator.format import LINE_LENGTH, PYTHON, TARGET
from generator.manifest import HandlerShape
from generator.model import Api, Channel, Locator, Message, Parameter, Route, payload_type
from generator.names import ROUTING_HELPERS
from generator.normalize.security import SERVED
from generator.settings_table import Setting

GENERATED_TEMPLATES = {
    "{pkg}/__init__.py": "package/__init__.py.jinja",
    "{pkg}/settings.py": "package/settings.py.jinja",
    "{pkg}/topics.py": "package/topics.py.jinja",
    "{pkg}/publisher.py": "package/publisher.py.jinja",
    "{pkg}/routes.py": "package/routes.py.jinja",
    "{pkg}/simulate.py": "package/simulate.py.jinja",
    "README.md": "README.md.jinja",
    ".env.example": "env.example.jinja",
}
# Generated modules that bind the document's parts to the runtime without naming anything of the
# document (relative imports): copied from `templates/static/` under the generated header.
STATIC_GENERATED_FILES = {
    "{pkg}/__main__.py": "package/__main__.py",
    "{pkg}/cli.py": "package/cli.py",
    "{pkg}/context.py": "package/context.py",
    "{pkg}/service.py": "package/service.py",
    "{pkg}/testing.py": "package/testing.py",
    "{pkg}/handlers/__init__.py": "package/handlers/__init__.py",
}
USER_TEMPLATES = {"Dockerfile": "Dockerfile.jinja"}
# The user's from the start and the same for every document: copied from `templates/static/`.
STATIC_USER_FILES = {
    "{pkg}/lifecycle.py": "lifecycle.py",
    "{pkg}/app_settings.py": "app_settings.py",
    ".gitignore": "gitignore",
    ".dockerignore": "dockerignore",
}
# What the generated code imports; the user's pyproject.toml is checked against it on every run.
REQUIREMENTS = (
    "pydantic>=2.11,<3",
    "pydantic-settings>=2.2,<3",
    "mqtt5>=0.8,<0.9",
    "paho-mqtt>=2.1,<3",
    "prometheus-client>=0.20,<1",
)
# Only `simulate` and the generated tests need these: an extra, so production images skip them.
SIMULATOR_REQUIREMENTS = ("polyfactory>=2.16,<4",)
PYPROJECT, PYPROJECT_TEMPLATE = "pyproject.toml", "pyproject.toml.jinja"  # user's, made last
HANDLER_TEMPLATE = "package/handlers/handler.py.jinja"
HANDLER_TEST_TEMPLATE = "project_tests/handler_test.py.jinja"


def _docstring(value: Any) -> str:
    """Text that stays text inside a triple-quoted docstring: backslashes and every double quote
    escaped (so no quote can end it), other unprintable characters as escapes."""
    text = str(value).replace("\r\n", "\n").strip()
    text = text.replace("\\", "\\\\").replace('"', '\\"')
    return "".join(ch if ch in "\n\t" or ch.isprintable() else repr(ch)[1:-1] for ch in text)


def _literal(value: Any) -> str:
    """A Python literal for a str, int or tuple of them; the formatter picks the quotes."""
    return repr(value)


def _where(locator: Locator | None) -> str:
    """A runtime expression as the generated code's `Where` literal."""
    if locator is None:
        return "None"
    return _literal(("header" if locator.in_header else "payload", tuple(locator.path)))


def _tuple_of(items: Any) -> str:
    """A tuple display of already-rendered items, one a line (a trailing comma keeps them so)."""
    items = list(items)
    return f"({items[0]},)" if len(items) == 1 else f"({''.join(f'{i}, ' for i in items)})"


def _call(args: Any, head: str) -> str:
    return f"{head}({', '.join(args)})"


def _import_from(names: Any, module: str) -> str:
    return f"from {module} import {', '.join(sorted(names, key=_member_order))}"


def _member_order(name: str) -> tuple[int, str, str]:
    """isort's order of imported names (ruff's default): constants, classes, the rest."""
    kind = 0 if name.isupper() and len(name) > 1 else 1 if name[:1].isupper() else 2
    return kind, name.lower(), name


_PLAIN_ENV = re.compile(r"[A-Za-z0-9._:/@+\-]*")


def _env_line(value: Any, name: str) -> str:
    """`NAME=value` for `.env.example`, quoted as python-dotenv reads it back unchanged; a
    value that cannot be written so (a quote with `${`, a control character) is left as a
    comment: the setting's default is the same value anyway."""
    text = str(value)
    if _PLAIN_ENV.fullmatch(text):
        return f"{name}={text}"
    if "'" not in text and "\\" not in text and text.isprintable():
        return f"{name}='{text}'"  # single quotes: no ${} expansion (python-dotenv reads \\)
    simple = text.replace("\n", "").replace("\r", "").replace("\t", "")
    if "${" not in text and simple.isprintable():
        escaped = text.replace("\\", "\\\\").replace('"', '\\"')
        escaped = escaped.replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")
        return f'{name}="{escaped}"'
    return f"# {name}: the document's value cannot be written here; it is the default"


def _comment(text: str) -> str:
    """Text as `#` comment lines of at most 100 characters (none for no text)."""
    return textwrap.fill(printable(text), 100, initial_indent="# ", subsequent_indent="# ")


def printable(text: str) -> str:
    """Text for a one-line comment: control characters as escapes, so none ends the line."""
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)


def _markdown_cell(value: Any) -> str:
    """Our own text (or the user's) in a table cell: its markup kept, on one line."""
    return re.sub(r"\s+", " ", str(value)).replace("|", "\\|").strip()


def _markdown(value: Any) -> str:
    """The document's text inline: on one line, and no backtick to end a code span early."""
    return _markdown_cell(value).replace("`", "'")


def _markdown_block(value: Any) -> str:
    """The document's Markdown as written, HTML quoted, and a code fence it left open closed,
    so the rest of README.md is not swallowed into it."""
    text = str(value).strip().replace("<", "&lt;")
    fences = sum(1 for line in text.splitlines() if line.lstrip().startswith(("```", "~~~")))
    return text + "\n```" if fences % 2 else text


def _compiled_templates(templates: Path) -> jinja2.BytecodeCache | None:
    """Compiled templates are kept beside them, as Python keeps its bytecode: they depend on
    nothing else, and compiling costs a fifth of a small project's first run. In the user cache
    when the package is read-only."""
    beside = templates / "__pycache__" / "jinja"
    try:
        beside.mkdir(parents=True, exist_ok=True)
        writable = os.access(beside, os.W_OK)
    except OSError:
        writable = False
    folder = beside if writable else directory("jinja")
    return jinja2.FileSystemBytecodeCache(str(folder)) if folder is not None else None


def _environment() -> jinja2.Environment:
    templates = Path(str(resources.files("generator.templates")))
    env = jinja2.Environment(
        bytecode_cache=_compiled_templates(templates),
        loader=jinja2.FileSystemLoader(str(templates)),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )
    env.filters.update(
        pystr=lambda v: _literal(str(v)),
        literal=_literal,
        where=_where,
        import_from=_import_from,
        tuple_of=_tuple_of,
        call=_call,
        docstring=_docstring,
        toml=lambda v: json.dumps(str(v), ensure_ascii=False),
        md=_markdown,
        md_block=_markdown_block,
        md_cell=_markdown_cell,
        envline=_env_line,
        comment=_comment,
    )
    return env


@dataclass(frozen=True)
class ChannelRow:
    address: str
    direction: str
    message: str
    target: str
    qos: int


def _rows(api: Api) -> list[ChannelRow]:
    rows = []
    for op in api.operations:
        message = ", ".join(m.py_type for m in op.messages) or "bytes"
        if op.action == "receive":
            target = f"handlers/{op.channel.py_name}.py: handle"
        else:
            target = ", ".join(f"ctx.publisher.{sender.py_name}()" for sender in op.senders)
        rows.append(ChannelRow(op.channel.title, op.action, message, target, op.qos))
    return rows


SEND_HINTS = 5  # a handler stub lists this many send methods, then says how many more


def _send_hints(api: Api) -> list[str]:
    """How a handler sends, one call per typed send method of `ctx.publisher`, for the stubs'
    comment: a newcomer finds them without reading publisher.py."""
    calls = []
    for op in api.send_operations:
        keywords = [] if op.channel.address is not None else ["topic=..."]
        keywords += [f"{p.py_name}=..." for p in op.channel.parameters if p.default is None]
        for sender in op.senders:
            calls.append(_call_hint(sender.py_name, sender.payload_type, keywords, ""))
        if op.request_py_name and op.reply is not None:
            calls.append(_call_hint(op.request_py_name, op.payload_type, keywords, "reply = "))
    if len(calls) > SEND_HINTS:
        more = len(calls) - SEND_HINTS + 1
        calls[SEND_HINTS - 1 :] = [f"... and {more} more in publisher.py"]
    return calls


def _call_hint(method: str, payload: str, keywords: list[str], result: str) -> str:
    """`await ctx.publisher.send_command(CommandPayload(...), region=...)`, shortened to
    `(...)` when it would not fit a comment line."""
    example = {"bytes": 'b"..."', "str": '"..."'}.get(payload, f"{payload.split(' | ')[0]}(...)")
    call = f"{result}await ctx.publisher.{method}({', '.join([example, *keywords])})"
    return call if len(call) <= 88 else f"{result}await ctx.publisher.{method}(...)"


def _model_types(messages: tuple[Message, ...]) -> list[str]:
    return sorted({m.py_type for m in messages if m.py_type not in ("bytes", "str")})


# What a name the models import needs installed beyond REQUIREMENTS.
MODEL_EXTRAS = {"EmailStr": "email-validator>=2", "NameEmail": "email-validator>=2"}


def _security(api: Api) -> list[tuple[str, str]]:
    """(scheme, the settings that carry it) for each scheme the MQTT server asks for."""
    server = api.mqtt_server
    return [(kind, SERVED[kind]) for kind in server.security] if server else []


def requirements(imported: set[str]) -> tuple[str, ...]:
    """The project's dependencies, given the names the models stage reported importing."""
    extras = sorted({MODEL_EXTRAS[name] for name in imported if name in MODEL_EXTRAS})
    return (*REQUIREMENTS, *extras)


def _dist_version(version: str) -> str:
    return version if re.fullmatch(r"\d+(\.\d+){0,3}", version) else "0.1.0"


def _imports(api: Api, routes: tuple[Route, ...]) -> dict[str, Any]:
    """What each generated module must import: exactly what it uses (ruff checks the output)."""
    send_messages = tuple(m for op in api.send_operations for m in op.messages) + tuple(
        m
        for op in api.send_operations
        if op.request_py_name and op.reply
        for m in op.reply.messages
    )
    send_headers = {
        s.headers_class for op in api.send_operations for s in op.senders if s.headers_class
    }
    route_messages = tuple(m for r in routes for m in r.messages) + tuple(
        m for r in routes if r.answers and r.answers.reply for m in r.answers.reply.messages
    )
    route_headers = {r.headers_class for r in routes if r.headers_class}
    kinds = {r.decoder.kind for r in routes}
    routing = {
        "Answer": any(r.answers for r in routes),
        "Handler": any(not r.resolves for r in routes),
        "Route": True,
        "by_tag": any(r.decoder.tags for r in routes),
        "no_handler": any(r.resolves for r in routes),
        "raw_bytes": "bytes" in kinds,
        "subscriptions_of": True,
        "utf8_text": "text" in kinds,
    }
    return {
        "send_types": sorted(set(_model_types(send_messages)) | send_headers),
        "receive_types": sorted(set(_model_types(route_messages)) | route_headers),
        "adapter_types": any(r.decoder.kind == "model" for r in routes),
        "union_routes": any(r.decoder.union for r in routes),
        "has_requests": any(op.request_py_name for op in api.send_operations),
        "handled_routes": any(not r.resolves for r in routes),
        "routing_imports": [name for name in ROUTING_HELPERS if routing[name]],
        "routed_enums": any(p.enum for r in routes if not r.resolves for p in r.channel.parameters),
        "sent_param_types": _param_types(
            p for op in api.send_operations for p in op.channel.parameters
        ),
        "param_types": _param_types(p for c in api.channels for p in c.parameters),
    }


def _param_types(parameters: Iterable[Parameter]) -> list[Parameter]:
    """Parameters with a named type, one for each name, in name order."""
    named = {p.type_name: p for p in parameters if p.type_name}
    return [named[name] for name in sorted(named)]


def _simulated(api: Api) -> list[dict[str, Any]]:
    """What the simulator sends: every channel the service receives on, with its models and
    the document's examples that match them."""
    found = []
    for route in api.routes:
        if route.resolves or route.channel.address is None:
            continue
        models = [m.class_name for m in route.messages if m.class_name and m.is_json]
        examples = [
            json.dumps(e, sort_keys=True)
            for m in route.messages
            if (e := api.example(m)) is not None
        ]
        headers = route.headers_class
        found.append(
            {
                "channel": route.channel,
                "qos": route.qos,
                "models": models,
                "examples": examples,
                "headers": headers,
            }
        )
    return found


def _context(api: Api, source: str, header: str) -> dict[str, Any]:
    routes = api.routes
    simulated = _simulated(api)
    sent = {op.channel.key: op.channel for op in api.send_operations if op.channel.address}
    return {
        "simulated": simulated,
        "simulated_types": sorted(
            {c for s in simulated for c in s["models"]}
            | {s["headers"] for s in simulated if s["headers"]}
        ),
        "sent_channels": list(sent.values()),
        "api": api,
        "pkg": api.package,
        "header": header,
        "source": source,
        "settings": {**vars(api.defaults), "security": _security(api)},
        "channels": [c for c in api.channels if c.address is not None],
        "send_operations": api.send_operations,
        "receive_channels": api.receive_channels,
        "routes": routes,
        "channel_rows": _rows(api),
        "send_hints": _send_hints(api),
        "other_servers": api.other_servers,
        "dist_name": names.distribution(api.package),
        "dist_version": _dist_version(api.version),
        # what the format stage formats to, for the project's own tools
        "line_length": LINE_LENGTH,
        "target": TARGET,
        "python": PYTHON,
        **_imports(api, routes),
    }


def _handler(
    env: jinja2.Environment, api: Api, channel: Channel, context: dict[str, Any]
) -> tuple[str, HandlerShape]:
    """A handler stub, and the shape the drift report expects of it."""
    messages = api.received_messages(channel)
    answers = next((r.answers for r in api.routes if r.channel.key == channel.key), None)
    replies = answers.reply.messages if answers and answers.reply else ()
    headers = api.headers_class(messages)
    ops = api.receive_operations(channel)
    text = env.get_template(HANDLER_TEMPLATE).render(
        context,
        channel=channel,
        payload_type=payload_type(messages),
        reply_type=payload_type(replies) if replies else None,
        headers_class=headers,
        model_types=sorted(
            set(_model_types(messages + replies)) | ({headers} if headers else set())
        ),
        param_types=[p.type_name for p in _param_types(channel.parameters)],
        summary=next((op.summary for op in ops if op.summary), channel.description),
    )
    params = tuple(p.py_name for p in channel.parameters) + (("headers",) if headers else ())
    enums = tuple((p.py_name, p.type_name, p.enum) for p in channel.parameters if p.type_name)
    return text, HandlerShape(channel.title, payload_type(messages), params, enums=enums)


def _handler_test(
    env: jinja2.Environment, api: Api, channel: Channel, context: dict[str, Any]
) -> str:
    """An example test per receive channel, on the harness (the user's from then on)."""
    messages = api.received_messages(channel)
    first = messages[0] if messages else None
    example = api.example(first) if first is not None and not first.headers_class else None
    return env.get_template(HANDLER_TEST_TEMPLATE).render(
        context,
        channel=channel,
        topic=channel.example_topic,
        example=None if example is None else json.dumps(example, sort_keys=True),
        is_json=first is not None and first.is_json and first.class_name is not None,
    )


def _runtime_files(pkg: str, header: str) -> dict[str, str]:
    """The static runtime, copied verbatim (headed as generated) into `<pkg>/_runtime/`."""
    runtime = resources.files("generator").joinpath("runtime")  # not imported: no asyncio
    files = {
        f"{pkg}/_runtime/{item.name}": f"{header}\n{item.read_text(encoding='utf-8')}"
        for item in sorted(runtime.iterdir(), key=lambda item: item.name)
        if item.name.endswith(".py")
    }
    guide = runtime.joinpath("README.md").read_text(encoding="utf-8")  # says what it is itself
    return files | {f"{pkg}/_runtime/README.md": guide}


def _static_files(pkg: str, header: str) -> dict[str, str]:
    """The files that do not depend on the document: the user's as they are, generated ones
    under the header."""
    static = resources.files("generator.templates").joinpath("static")
    user = {
        path.format(pkg=pkg): static.joinpath(name).read_text(encoding="utf-8")
        for path, name in STATIC_USER_FILES.items()
    }
    return user | {
        path.format(pkg=pkg): f"{header}\n{static.joinpath(name).read_text(encoding='utf-8')}"
        for path, name in STATIC_GENERATED_FILES.items()
    }


class Renderer:
    """The project's files from the model: all but two before the payload models exist (so
    their formatting can start meanwhile), those two after. A view of the model: nothing is
    decided here."""

    def __init__(
        self, api: Api, source: str, header: str, settings: tuple[Setting, ...] = ()
    ) -> None:
        self.api = api
        self.env = _environment()
        self.context = {**_context(api, source, header), "settings_table": settings}

    def project(self) -> tuple[dict[str, str], frozenset[str], dict[str, HandlerShape]]:
        """Every file but the models and pyproject.toml (path -> unformatted content), which
        files belong to the user, and the shape each handler is expected to have (for the
        drift report)."""
        api, env, context = self.api, self.env, self.context
        pkg = api.package
        files = {
            path.format(pkg=pkg): env.get_template(t).render(context)
            for path, t in GENERATED_TEMPLATES.items()
        }
        files[f"{pkg}/py.typed"] = ""
        for path, template in USER_TEMPLATES.items():
            files[path.format(pkg=pkg)] = env.get_template(template).render(context)
        files.update(_static_files(pkg, context["header"]))
        user = {path.format(pkg=pkg) for path in USER_TEMPLATES | STATIC_USER_FILES} | {PYPROJECT}
        handlers: dict[str, HandlerShape] = {}
        for channel in api.receive_channels:
            path = f"{pkg}/handlers/{channel.py_name}.py"
            files[path], handlers[path] = _handler(env, api, channel, context)
            test = f"tests/test_{channel.py_name}.py"
            files[test] = _handler_test(env, api, channel, context)
            user |= {path, test}
        files.update(_runtime_files(pkg, context["header"]))
        return files, frozenset(user), handlers

    def with_models(self, models: str, requirements: tuple[str, ...]) -> dict[str, str]:
        """models.py, and pyproject.toml, whose dependencies depend on what the models use."""
        template = self.env.get_template(PYPROJECT_TEMPLATE)
        return {
            f"{self.api.package}/models.py": models,
            PYPROJECT: template.render(
                self.context,
                requirements=requirements,
                simulator_requirements=SIMULATOR_REQUIREMENTS,
            ),
        }
