"""Every root document of the official AsyncAPI examples (`ASYNCAPI_PYGEN_CORPUS`, default
../shared/corpus): valid ones generate a
project that imports, passes ruff and mypy --strict, and whose models accept the document's own
message examples; the ones the corpus README lists as invalid are rejected with a located error."""

from __future__ import annotations

import csv
import importlib
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import TypeAdapter

from generator.checks import payload_validator
from generator.errors import Failed
from generator.pipeline import Build, analyse, build
from generator.refs import Access
from tests.support import CORPUS, write_files

MANIFEST = CORPUS / "MANIFEST.tsv"
if not MANIFEST.is_file():
    pytest.skip(
        f"no AsyncAPI corpus at {CORPUS} (set ASYNCAPI_PYGEN_CORPUS)", allow_module_level=True
    )
with MANIFEST.open(encoding="utf-8") as manifest:
    ROOTS = [row["path"] for row in csv.DictReader(manifest, delimiter="\t")]
MISSING_SCHEMA = "'./schemas.yaml#/commentChanged'"
INVALID = {
    "2.4.0/operation-security.yml": "expected array, got object",
    "2.5.0/operation-security.yml": "expected array, got object",
    "3.0.0/adeo-kafka-request-reply-asyncapi.yml": "remote reference 'https://",
    "3.1.0/adeo-kafka-request-reply-asyncapi.yml": "remote reference 'https://",
}
INVALID.update(
    {
        f"2.5.0/social-media/{service}/asyncapi.yaml": "unexpected property 'tags'"
        for service in ("backend", "comments-service", "notification-service", "public-api")
    }
)
INVALID.update(
    {
        f"{version}/social-media/{service}/asyncapi.yaml": f"{MISSING_SCHEMA} points at nothing"
        for version in ("2.3.0", "2.4.0")
        for service in ("backend", "comments-service")
    }
)
VALID = [p for p in ROOTS if p not in INVALID]
# The social-media examples share `../common/`, outside each document's own folder: they are
# read as a user would read them, naming the corpus as a root (--allow-ref-root).
ACCESS = Access(roots=(CORPUS,))
TALLY: dict[str, int] = {"generated": 0, "rejected as expected": 0, "examples checked": 0}


def package_for(path: str) -> str:
    return "corpus_" + "".join(ch if ch.isalnum() else "_" for ch in path)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("corpus")
    sys.path.insert(0, str(root))
    yield root
    sys.path.remove(str(root))


def test_the_corpus_is_all_there() -> None:
    assert len(ROOTS) == 169
    assert len(VALID) == 157


@pytest.mark.parametrize("path", sorted(INVALID), ids=str)
def test_invalid_documents_are_rejected_with_a_location(path: str) -> None:
    with pytest.raises(Failed) as caught:
        build(CORPUS / path, access=ACCESS)
    rendered = [d.render() for d in caught.value.diagnostics]
    assert any(INVALID[path] in line for line in rendered), rendered
    assert all(line.split(":")[1].isdigit() and line.split(":")[2].isdigit() for line in rendered)
    TALLY["rejected as expected"] += 1


def test_a_shared_folder_outside_the_document_needs_a_named_root() -> None:
    with pytest.raises(Failed) as caught:
        analyse(CORPUS / "3.1.0" / "social-media" / "backend" / "asyncapi.yaml")
    assert "'../common/servers.yaml#/websiteWebSocketServer' points outside" in str(caught.value)


def generate(path: str, workdir: Path) -> Build:
    """Build one corpus document into `workdir`, once per module run."""
    if path not in BUILT:
        BUILT[path] = build(CORPUS / path, package_for(path), access=ACCESS)
        write_files(BUILT[path].files, workdir)
    return BUILT[path]


BUILT: dict[str, Build] = {}


@pytest.mark.parametrize("path", VALID, ids=str)
def test_valid_document_generates_an_importable_project(path: str, workdir: Path) -> None:
    package = package_for(path)
    result = generate(path, workdir)
    importlib.import_module(f"{package}.service")
    models = importlib.import_module(f"{package}.models")
    for channel in result.api.channels:
        for message in channel.messages:
            if message.class_name is None or not message.is_json:
                continue
            adapter = TypeAdapter(getattr(models, message.class_name))
            schema = payload_validator(result.api, message.class_name)
            for example in message.examples:
                if schema.is_valid(example):
                    adapter.validate_python(example)
                    TALLY["examples checked"] += 1
                else:
                    warned = [d.message for d in result.diagnostics if message.name in d.message]
                    assert warned, "an example that breaks its schema must be reported"

    TALLY["generated"] += 1


def test_generated_corpus_passes_ruff_and_mypy(workdir: Path) -> None:
    for path in VALID:
        generate(path, workdir)
    packages = sorted(package_for(path) for path in VALID)
    ruff = subprocess.run(
        [
            sys.executable,
            "-m",
            "ruff",
            "check",
            "--select",
            "E,F,W,B,UP",
            "--ignore",
            "E501",
            "--target-version",
            "py311",
            "--line-length",
            "100",
            *packages,
        ],
        cwd=workdir,
        capture_output=True,
        text=True,
    )
    assert ruff.returncode == 0, ruff.stdout[-3000:]
    mypy = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--python-version",
            "3.11",
            "--cache-dir",
            str(workdir / ".mypy_cache"),
            *packages,
        ],
        cwd=workdir,
        capture_output=True,
        text=True,
    )
    assert mypy.returncode == 0, mypy.stdout[-5000:]
