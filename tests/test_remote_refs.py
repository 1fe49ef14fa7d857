"""Remote `$ref`s: refused with the URL named unless --allow-remote-refs; then fetched (from a
local HTTP server on loopback), relative references inside them followed, errors located."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import run_cli


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    root = tmp_path / "www"
    (root / "schemas").mkdir(parents=True)
    (root / "schemas" / "thing.json").write_text(
        json.dumps(
            {
                "Thing": {
                    "type": "object",
                    "required": ["id"],
                    "properties": {"id": {"type": "string"}, "part": {"$ref": "part.json"}},
                }
            }
        )
    )
    (root / "schemas" / "part.json").write_text(
        json.dumps({"type": "object", "properties": {"weight": {"type": "number", "minimum": 0}}})
    )

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(root), **kwargs)

        def log_message(self, *args) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def spec_with(tmp_path: Path, ref: str) -> Path:
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        "asyncapi: 3.0.0\ninfo: {title: Remote, version: '1'}\n"
        "channels:\n  things:\n    address: things\n    messages:\n      thing:\n"
        f"        payload: {{$ref: '{ref}'}}\n"
        "operations:\n  onThing: {action: receive, channel: {$ref: '#/channels/things'}}\n"
    )
    return spec


def test_refused_without_the_flag_naming_the_url(tmp_path: Path, server: str) -> None:
    url = f"{server}/schemas/thing.json#/Thing"
    result = run_cli("validate", str(spec_with(tmp_path, url)))
    assert result.returncode == 1
    assert (
        f"spec.yaml:8:18: remote reference '{server}/schemas/thing.json' is not fetched: "
        "pass --allow-remote-refs to fetch it" in result.stderr
    )


def test_fetched_with_the_flag_relative_refs_followed(tmp_path: Path, server: str) -> None:
    spec = spec_with(tmp_path, f"{server}/schemas/thing.json#/Thing")
    out = tmp_path / "out"
    result = run_cli("generate", str(spec), "--output", str(out), "--allow-remote-refs")
    assert result.returncode == 0, result.stderr
    models = (out / "remote" / "models.py").read_text()
    assert "class Thing(WireModel)" in models
    assert "weight: Annotated[float | None, Field(ge=0.0)]" in models


def test_unreachable_url_is_a_located_error(tmp_path: Path, server: str) -> None:
    spec = spec_with(tmp_path, f"{server}/schemas/missing.json")
    result = run_cli("validate", str(spec), "--allow-remote-refs")
    assert result.returncode == 1
    assert "spec.yaml:8:18: $ref" in result.stderr and "HTTP 404" in result.stderr
    assert "Traceback" not in result.stderr
