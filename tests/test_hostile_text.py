"""Spec text is data, never code: documents whose names, titles, descriptions, enum values,
defaults and addresses are hostile strings always generate code that compiles, runs nothing from
the spec, and means exactly the text (property-based, with hypothesis)."""

from __future__ import annotations

import enum
import itertools
import json
import keyword
import re
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from generator.pipeline import build
from tests.support import import_modules, write_files

TRAP = Path("/tmp/asyncapi-pygen-hostile-trap")
FRAGMENTS = [
    '"',
    "'",
    '"""',
    "'''",
    "\\",
    "\\n",
    "\n",
    "\r\n",
    "\t",
    "{{ 7 * 7 }}",
    "{% for x in y %}",
    "{# c #}",
    "${x}",
    "%s",
    "\x00",
    "\u2028",
    "é",
    "漢字",
    "🙂",
    "# comment",
    "*/",
    "-->",
    "`",
    f"__import__('os').system('touch {TRAP}')",
    "); import os; os.system('id'); (",
    "\\N{BULLET}",
    "class",
    "def",
    "None",
    "True",
    "self",
    "model_config",
    "mro",
    "return",
    "json",
    "field",
    "x" * 300,
]
texts = st.lists(
    st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=12)), min_size=1, max_size=5
).map("".join)
names = st.one_of(
    st.sampled_from(
        [
            *keyword.kwlist,
            *("model_config", "mro", "1st", "a-b", "ü"),
            # names the generated project uses itself, per namespace
            *("topics", "rawBytes", "raw_bytes", "subscriptions", "headers", "timeout", "topic"),
            *("message", "ctx", "params", "reply", "properties", "send", "payload", "self"),
        ]
    ),
    texts,
)
# the schema allows [A-Za-z0-9_-] in parameter names
param_names = names.filter(lambda n: n != "id" and re.fullmatch(r"[A-Za-z0-9_\-]+", n) is not None)
address_text = texts.map(lambda t: "".join(ch for ch in t if ch not in "{}+#\x00") or "x")


def document(title, description, prop, enum_values, default, address, channel, message, param):
    enum_values = list(dict.fromkeys(enum_values))
    return {
        "asyncapi": "3.0.0",
        "info": {"title": title, "version": "1.0.0", "description": description},
        "channels": {
            channel: {
                "address": f"{address}/{{id}}/{{{param}}}",
                "description": description,
                "parameters": {"id": {"description": description}, param: {}},
                "messages": {
                    "m": {
                        "name": message,
                        "summary": description,
                        "payload": {
                            "type": "object",
                            "description": description,
                            "properties": {
                                prop: {
                                    "type": "string",
                                    "description": description,
                                    "default": default,
                                },
                                "choice": {"type": "string", "enum": enum_values},
                            },
                        },
                    }
                },
            }
        },
        "operations": {
            "receiveIt": {
                "action": "receive",
                "summary": description,
                "channel": {"$ref": f"#/channels/{channel.replace('~', '~0').replace('/', '~1')}"},
            },
            "sendIt": {
                "action": "send",
                "summary": description,
                "channel": {"$ref": f"#/channels/{channel.replace('~', '~0').replace('/', '~1')}"},
            },
        },
    }


counter = itertools.count()


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    title=texts,
    description=texts,
    prop=names,
    enum_values=st.lists(texts, min_size=1, max_size=4),
    default=texts,
    address=address_text,
    channel=names,
    message=names,
    param=param_names,
)
def test_hostile_text_round_trips(
    tmp_path_factory,
    title,
    description,
    prop,
    enum_values,
    default,
    address,
    channel,
    message,
    param,
) -> None:
    root = tmp_path_factory.mktemp("hostile")
    doc = document(title, description, prop, enum_values, default, address, channel, message, param)
    spec = root / "spec.json"  # JSON escapes every character; YAML folds some (U+0085) to spaces
    spec.write_text(json.dumps(doc))
    package = f"hostile_{next(counter)}"
    result = build(spec, package)
    for relative, content in result.files.items():
        if relative.endswith(".py") and "/_runtime/" not in relative:  # the runtime is static
            compile(content, relative, "exec")
    write_files(result.files, root)
    _, models, topics = import_modules(
        root, *(f"{package}.{m}" for m in ("service", "models", "topics"))
    )
    assert not TRAP.exists(), "code from the spec ran"
    (payload_class,) = {m.class_name for c in result.api.channels for m in c.messages}
    model = getattr(models, payload_class)
    assert " ".join(description.split()) in " ".join((model.__doc__ or "").split())
    instance = model.model_validate({prop: default, "choice": enum_values[0]})
    dumped = instance.model_dump(mode="json", exclude_none=True)
    assert dumped[prop] == default
    assert model.model_validate({}).model_dump(mode="json", exclude_none=True).get(prop) == default
    enum_class = type(instance.choice)
    assert issubclass(enum_class, enum.Enum)
    assert [member.value for member in enum_class] == list(dict.fromkeys(enum_values))
    (template,) = [v for v in vars(topics).values() if isinstance(v, topics.TopicTemplate)]
    assert template.template == f"{address}/{{id}}/{{{param}}}"
    assert template.match(f"{address}/abc/def") == {"id": "abc", param: "def"}


def test_a_code_fence_the_description_leaves_open_is_closed_in_the_readme(tmp_path: Path) -> None:
    spec = tmp_path / "fence.yaml"
    spec.write_text(
        "asyncapi: 3.0.0\n"
        "info:\n  title: Fence\n  version: 1.0.0\n"
        "  description: |\n    Look:\n    ```python\n    x = 1\n"
        "channels: {}\n"
    )
    readme = build(spec, "fence").files["README.md"]
    after = readme.partition("x = 1\n")[2]
    assert after.startswith("```\n"), "the fence is closed right after the description"
    assert sum(line.startswith("```") for line in readme.splitlines()) % 2 == 0
