"""The ownership manifest: which files a generation wrote, in which zone, with which content.

It is what makes regeneration safe: a generated file is only rewritten or deleted while it still
holds exactly what the generator wrote, and a user file is never rewritten at all. It also records
what each handler is expected to look like, so drift can be reported on later runs.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import Any, Literal

from generator import __version__
from generator.errors import Diagnostic, Failed, Location

MANIFEST_NAME = ".asyncapi-pygen.json"
FORMAT = 1
Zone = Literal["generated", "user"]


def digest(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


@dataclass(frozen=True)
class Entry:
    zone: Zone
    sha256: str


@dataclass(frozen=True)
class HandlerShape:
    """What a handler module must define for its channel: checked on later runs (drift)."""

    channel: str
    message: str
    params: tuple[str, ...] = ()
    function: str = "handle"
    # enum parameters: (argument, its named type in topics.py, the values it stands for)
    enums: tuple[tuple[str, str, tuple[str, ...]], ...] = ()

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "channel": self.channel,
            "function": self.function,
            "message": self.message,
            "params": list(self.params),
        }
        if self.enums:
            data["enums"] = {arg: [name, *values] for arg, name, values in self.enums}
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> HandlerShape:
        params = data.get("params")
        enums = data.get("enums")
        return cls(
            channel=str(data.get("channel", "?")),
            message=str(data.get("message", "")),
            params=tuple(str(p) for p in params) if isinstance(params, list) else (),
            function=str(data.get("function", "handle")),
            enums=tuple(
                (str(arg), str(listed[0]), tuple(str(v) for v in listed[1:]))
                for arg, listed in (enums.items() if isinstance(enums, dict) else ())
                if isinstance(listed, list) and listed
            ),
        )


@dataclass
class Manifest:
    files: dict[str, Entry] = field(default_factory=dict)
    handlers: dict[str, HandlerShape] = field(default_factory=dict)  # path -> expected shape

    @property
    def lifecycles(self) -> list[str]:
        """The project's `<package>/lifecycle.py` (the user's start-up code)."""
        files = self.files
        return sorted(p for p in files if p.endswith("/lifecycle.py") and p.count("/") == 1)

    def to_json(self) -> str:
        data = {
            "format": FORMAT,
            "generator": f"asyncapi-pygen {__version__}",
            "note": "written by asyncapi-pygen: commit it, do not edit it",
            "files": {
                p: {"zone": e.zone, "sha256": e.sha256} for p, e in sorted(self.files.items())
            },
            "handlers": {p: self.handlers[p].to_json() for p in sorted(self.handlers)},
        }
        return json.dumps(data, indent=2, sort_keys=False) + "\n"


def _corrupt(path: Path, reason: str) -> Failed:
    message = (
        f"the manifest is unusable ({reason}); nothing was written. Restore it from version "
        f"control, or delete it and run again with --force (your handlers are never overwritten)"
    )
    return Failed([Diagnostic(message, Location(str(path)))])


def load(output: Path) -> Manifest | None:
    """The manifest in `output`, None if there is none; a damaged one raises Failed."""
    path = output / MANIFEST_NAME
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _corrupt(path, f"not readable JSON: {exc}") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise _corrupt(path, f"not a format-{FORMAT} manifest")
    files, handlers = data.get("files"), data.get("handlers", {})
    if not isinstance(files, dict) or not isinstance(handlers, dict):
        raise _corrupt(path, "'files' and 'handlers' must be objects")
    manifest = Manifest(
        handlers={
            str(k): HandlerShape.from_json(v) for k, v in handlers.items() if isinstance(v, dict)
        }
    )
    for relative, entry in files.items():
        if not _valid_entry(relative, entry):
            raise _corrupt(path, f"bad entry for {relative!r}")
        manifest.files[relative] = Entry(entry["zone"], entry["sha256"])
    return manifest


def _valid_entry(relative: Any, entry: Any) -> bool:
    if not isinstance(relative, str) or not isinstance(entry, dict):
        return False
    path = PurePath(relative)
    safe = not path.is_absolute() and ".." not in path.parts
    sha = entry.get("sha256")
    return (
        safe
        and entry.get("zone") in ("generated", "user")
        and isinstance(sha, str)
        and len(sha) == 64
    )
