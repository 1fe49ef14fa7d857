"""Every setting a generated service reads, for README.md and .env.example: the runtime's
(`runtime/settings.py`, with the document's defaults in place of its own) and the user's
(`<package>/app_settings.py`, user zone). Both are read with `ast`, never imported: the user's
code is not run, and the generator does not depend on pydantic-settings."""

from __future__ import annotations

import ast
import json
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path

from generator.model import Defaults

RUNTIME_CLASS = "ServiceSettings"
USER_CLASS = "AppSettings"
# What `.env.example` leaves empty although the default is `false`: a CA, certificate or key file
# switches TLS on, and MQTT_TLS=false written beside one would be refused at start.
EMPTY_WHEN_FALSE = frozenset({"MQTT_TLS"})


@dataclass(frozen=True)
class Setting:
    env: str  # the environment variable
    default: str  # as the environment would give it ("" for none), or the source expression
    description: str = ""
    literal: bool = True  # False: `default` is an expression, which .env.example leaves empty

    @property
    def env_value(self) -> str:
        """What `.env.example` sets it to: empty (the default) where the default is an
        expression the environment could not give back."""
        if not self.literal or (self.env in EMPTY_WHEN_FALSE and self.default == "false"):
            return ""
        return self.default


def table(defaults: Defaults, own: tuple[Setting, ...]) -> tuple[Setting, ...]:
    """The runtime's settings in their order, the document's defaults in, then the user's."""
    runtime = resources.files("generator").joinpath("runtime", "settings.py")
    document = _by_env(defaults)
    rows = tuple(
        Setting(s.env, document.get(s.env, s.default), s.description)
        for s in _fields(runtime.read_text(encoding="utf-8"), RUNTIME_CLASS)
    )
    return rows + own


def read(path: Path) -> tuple[Setting, ...]:
    """The fields of the user's `AppSettings` in `path`; nothing when the file or class is
    absent or does not parse (the drift report is where broken user code is reported)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return ()
    yours = f"Yours: `{path.parent.name}/{path.name}`."
    return tuple(replace(s, description=s.description or yours) for s in _fields(text, USER_CLASS))


def _by_env(defaults: Defaults) -> dict[str, str]:
    """The document's defaults, by the variable each one is the default of."""
    d = defaults
    found = {
        "MQTT_HOST": d.host,
        "MQTT_PORT": d.port,
        "MQTT_CLIENT_ID": d.client_id,
        "MQTT_KEEP_ALIVE": d.keep_alive,
        "MQTT_CLEAN_SESSION": d.clean_session,
        "MQTT_TLS": d.tls,
        "MQTT_TRANSPORT": d.transport,
        "MQTT_WS_PATH": d.ws_path,
    }
    if d.will is not None:
        found |= {
            "MQTT_WILL_TOPIC": d.will.topic,
            "MQTT_WILL_PAYLOAD": d.will.payload,
            "MQTT_WILL_QOS": d.will.qos,
            "MQTT_WILL_RETAIN": d.will.retain,
        }
    return {env: _text(value) for env, value in found.items()}


def _fields(source: str, class_name: str) -> tuple[Setting, ...]:
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return ()
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == class_name:
            body = node.body
            return tuple(
                _field(item, body[i + 1] if i + 1 < len(body) else None)
                for i, item in enumerate(body)
                if _is_field(item)
            )
    return ()


def _is_field(item: ast.stmt) -> bool:
    return (
        isinstance(item, ast.AnnAssign)
        and isinstance(item.target, ast.Name)
        and not item.target.id.startswith("_")
        and item.target.id != "model_config"
        and "ClassVar" not in ast.unparse(item.annotation)
    )


def _field(item: ast.stmt, after: ast.stmt | None) -> Setting:
    """A field's variable, default and description: `Field(description=...)`, or the string
    under it (pydantic's `use_attribute_docstrings`)."""
    assert isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name)
    default, description = item.value, _docstring(after)
    if isinstance(default, ast.Call) and getattr(default.func, "id", "") == "Field":
        keywords = {k.arg: k.value for k in default.keywords if k.arg}
        text = keywords.get("description")
        if isinstance(text, ast.Constant) and isinstance(text.value, str):
            description = text.value
        default = keywords.get("default", default.args[0] if default.args else None)
    shown, literal = _source_text(default)
    return Setting(item.target.id.upper(), shown, " ".join(description.split()), literal)


def _docstring(node: ast.stmt | None) -> str:
    if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
        return node.value.value if isinstance(node.value.value, str) else ""
    return ""


def _source_text(node: ast.expr | None) -> tuple[str, bool]:
    """A default as the environment would give it, and whether it can: a constant, or a list
    or mapping of constants (as JSON, which pydantic-settings reads for them); else the source
    text of the expression (`Level.LOW`, `timedelta(seconds=5)`), which it cannot."""
    if node is None:
        return "", True
    if isinstance(node, ast.Constant):
        return _text(node.value), True
    try:
        value = ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return ast.unparse(node), False
    if isinstance(value, list | dict):
        return json.dumps(value), True
    if value is None or isinstance(value, str | int | float):  # `3 * 60`, `-1`
        return _text(value), True
    return ast.unparse(node), False


def _text(value: object) -> str:
    """A default as the environment would give it: booleans in lower case, none as empty."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)
