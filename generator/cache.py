"""A content-addressed disk cache for the two slow, pure stages: model generation and black.

Both are deterministic functions of their input text and the library versions, so a result keyed
by a hash of those can be reused by any later run, in any output folder. The cache lives in
`$ASYNCAPI_PYGEN_CACHE` (or the user cache folder); `ASYNCAPI_PYGEN_CACHE=off` disables it. A
cache that cannot be read or written is silently skipped: it only ever saves time.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import os
import tempfile
from pathlib import Path

from generator import __version__


def _root() -> Path | None:
    configured = os.environ.get("ASYNCAPI_PYGEN_CACHE")
    if configured == "off":
        return None
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "asyncapi-pygen"


@functools.cache
def fingerprint(module: str) -> str:
    """Identifies an installed library's code without importing it or parsing its metadata
    (both cost more than the cache saves): its file, size and modification time."""
    spec = importlib.util.find_spec(module)
    origin = spec.origin if spec is not None and spec.origin else module
    try:
        stat = os.stat(origin)
    except OSError:
        return origin
    return f"{origin}:{stat.st_size}:{stat.st_mtime_ns}"


def directory(kind: str) -> Path | None:
    """A folder of the cache for a library's own cache (Jinja's compiled templates)."""
    root = _root()
    if root is None:
        return None
    folder = root / kind
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    return folder


def _path(kind: str, parts: tuple[str, ...]) -> Path | None:
    root = _root()
    if root is None:
        return None
    digest = hashlib.sha256("\0".join((__version__, kind, *parts)).encode("utf-8")).hexdigest()
    return root / kind / digest[:2] / digest


def lookup(kind: str, parts: tuple[str, ...]) -> str | None:
    path = _path(kind, parts)
    if path is None:
        return None
    try:
        return path.read_bytes().decode("utf-8")  # bytes: text mode would translate "\r"
    except (OSError, UnicodeDecodeError):
        return None


def store(kind: str, parts: tuple[str, ...], text: str) -> None:
    path = _path(kind, parts)
    if path is None:
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("wb", dir=path.parent, delete=False) as tmp:
            tmp.write(text.encode("utf-8"))
        os.replace(tmp.name, path)
    except OSError:
        pass
