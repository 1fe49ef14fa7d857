"""Remote `$ref`s: refused with the URL named unless --allow-remote-refs; then fetched (from a
local HTTP server on loopback), relative references inside them followed, errors located."""

from __future__ import annotations

import contextlib
import http.server
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import run_cli

REQUESTS: list[str] = []


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    REQUESTS.clear()
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

        def do_GET(self) -> None:
            REQUESTS.append(self.path)
            super().do_GET()

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


def test_each_url_is_fetched_once_per_run(tmp_path: Path, server: str) -> None:
    spec = spec_with(tmp_path, f"{server}/schemas/thing.json#/Thing")
    text = spec.read_text() + (
        "components:\n  schemas:\n"
        f"    Again: {{$ref: '{server}/schemas/thing.json#/Thing'}}\n"
        f"    Part: {{$ref: '{server}/schemas/part.json'}}\n"
    )
    spec.write_text(text)
    result = run_cli("validate", str(spec), "--allow-remote-refs")
    assert result.returncode == 0, result.stderr
    assert sorted(REQUESTS) == ["/schemas/part.json", "/schemas/thing.json"]


def test_unreachable_url_is_a_located_error(tmp_path: Path, server: str) -> None:
    spec = spec_with(tmp_path, f"{server}/schemas/missing.json")
    result = run_cli("validate", str(spec), "--allow-remote-refs")
    assert result.returncode == 1
    assert "spec.yaml:8:18: $ref" in result.stderr and "HTTP 404" in result.stderr
    assert "Traceback" not in result.stderr


class Hostile(http.server.BaseHTTPRequestHandler):
    """A server that drips, redirects to ftp:, never stops sending, or serves a document whose
    own reference is an ftp: URL."""

    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:
        REQUESTS.append(self.path)
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # the generator hung up
            getattr(self, "serve_" + self.path.strip("/").split(".")[0])()

    def serve_drip(self) -> None:
        """One byte a second: each read is well under a 10 s socket timeout."""
        self.send_response(200)
        self.send_header("Content-Length", "1000")
        self.end_headers()
        for _ in range(120):
            self.wfile.write(b" ")
            self.wfile.flush()
            time.sleep(1)

    def serve_ftp(self) -> None:
        self.send_response(302)
        self.send_header("Location", "ftp://127.0.0.1/thing.json")
        self.end_headers()

    def serve_endless(self) -> None:
        self.send_response(200)
        self.end_headers()
        chunk = b" " * 65536
        for _ in range(2000):  # 125 MiB, far past any limit
            self.wfile.write(chunk)

    def serve_hop(self) -> None:
        body = json.dumps({"Thing": {"$ref": "ftp://127.0.0.1/thing.json"}}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def hostile() -> Iterator[str]:
    REQUESTS.clear()
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hostile)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_a_dripping_server_meets_one_deadline_for_the_whole_fetch(
    tmp_path: Path, hostile: str
) -> None:
    spec = spec_with(tmp_path, f"{hostile}/drip.json")
    result = run_cli("validate", str(spec), "--allow-remote-refs")
    assert result.returncode == 1
    assert f"spec.yaml:8:18: $ref '{hostile}/drip.json'" in result.stderr
    assert "no complete answer within 10 s" in result.stderr
    assert REQUESTS == ["/drip.json"]  # not again by a later stage: one deadline per run


def test_a_redirect_to_another_scheme_is_refused(tmp_path: Path, hostile: str) -> None:
    spec = spec_with(tmp_path, f"{hostile}/ftp.json")
    result = run_cli("validate", str(spec), "--allow-remote-refs")
    assert result.returncode == 1
    assert (
        "redirected to 'ftp://127.0.0.1/thing.json': only http and https URLs are fetched"
        in result.stderr
    )


def test_a_remote_document_cannot_reach_another_scheme(tmp_path: Path, hostile: str) -> None:
    spec = spec_with(tmp_path, f"{hostile}/hop.json#/Thing")
    result = run_cli("validate", str(spec), "--allow-remote-refs")
    assert result.returncode == 1
    assert "$ref 'ftp://127.0.0.1/thing.json'" in result.stderr
    assert "only http and https URLs are fetched" in result.stderr


def test_a_fetch_stops_at_the_size_limit(tmp_path: Path, hostile: str) -> None:
    spec = spec_with(tmp_path, f"{hostile}/endless.json")
    result = run_cli("validate", str(spec), "--allow-remote-refs", "--max-size", "1")
    assert result.returncode == 1
    assert f"$ref '{hostile}/endless.json'" in result.stderr
    assert "bytes left of the size limit (--max-size MIB raises it)" in result.stderr
