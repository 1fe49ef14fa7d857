"""The user's own settings (`<package>/app_settings.py`, user zone), read with `ast` and never
imported, so README.md and .env.example can list every setting the service reads."""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

CLASS_NAME = "AppSettings"


@dataclass(frozen=True)
class UserSetting:
    env: str  # the environment variable
    default: str  # as written in the source ("" when there is none)
    description: str = ""


def read(path: Path) -> tuple[UserSetting, ...]:
    """The fields of `AppSettings` in `path`; nothing when the file or class is absent or does
    not parse (the drift report is where broken user code is reported)."""
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, SyntaxError):
        return ()
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == CLASS_NAME:
            return tuple(_field(item) for item in node.body if _is_field(item))
    return ()


def _is_field(item: ast.stmt) -> bool:
    return (
        isinstance(item, ast.AnnAssign)
        and isinstance(item.target, ast.Name)
        and not item.target.id.startswith("_")
        and item.target.id != "model_config"
    )


def _field(item: ast.stmt) -> UserSetting:
    assert isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name)
    default, description = item.value, ""
    if isinstance(default, ast.Call) and getattr(default.func, "id", "") == "Field":
        keywords = {k.arg: k.value for k in default.keywords if k.arg}
        text = keywords.get("description")
        if isinstance(text, ast.Constant) and isinstance(text.value, str):
            description = text.value
        default = keywords.get("default", default.args[0] if default.args else None)
    return UserSetting(item.target.id.upper(), _literal(default), description)


def _literal(node: ast.expr | None) -> str:
    if node is None:
        return ""
    if isinstance(node, ast.Constant):
        return "" if node.value is None else str(node.value)
    return ast.unparse(node)
