"""The compiled validator (jsonschema-rs) decides whether a document is valid; the Python
validator only explains an invalid one. The two must agree on every document, or a valid document
would be refused (or an invalid one let through) without a located error. This checks them side
by side on every document the tests and the corpus hold, and on seeded mutations of each.
"""

from __future__ import annotations

import copy
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from generator import validate
from generator.errors import Failed
from generator.refs import Workspace
from tests.support import CORPUS, REPO

LOCAL = [
    *sorted((REPO / "tests").glob("specs/**/*.yaml")),
    *sorted((REPO / "tests" / "broken").glob("*.yaml")),
    *sorted((REPO / "tests" / "unsupported").glob("*.yaml")),
    REPO / "examples" / "mqtt" / "asyncapi.yaml",
]
MUTATIONS_PER_DOCUMENT = 12
CORPUS_MUTATIONS = 3  # per corpus document: there are many, and the Python validator is slow


def _instance(path: Path) -> tuple[str, Any] | None:
    try:
        ws = Workspace(path, path.name)
        version = validate.check_version(ws)
    except Failed:
        return None  # not parseable or no supported version: the validators never see it
    instance, _ = validate.inlined(ws, version)
    return version, instance


def _agree(version: str, instance: Any) -> bool:
    fast = validate._fast_validator(version).is_valid(instance)
    slow = next(iter(validate._validator(version).iter_errors(instance)), None) is None
    return fast == slow


def _containers(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if isinstance(value, dict):
        yield path
        for key, child in value.items():
            yield from _containers(child, (*path, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from _containers(child, (*path, index))


def _mutants(instance: Any, seed: int, count: int = MUTATIONS_PER_DOCUMENT) -> Iterator[Any]:
    """Copies of the document, each broken (or not) in one place: a key dropped, a value of the
    wrong type, an unknown key added."""
    rng = random.Random(seed)
    places = [p for p in _containers(instance) if p]
    for _ in range(count if places else 0):
        mutant = copy.deepcopy(instance)
        target = mutant
        for key in rng.choice(places):
            target = target[key]
        kind = rng.randrange(3)
        if kind == 0 and target:
            del target[rng.choice(sorted(target, key=str))]
        elif kind == 1 and target:
            target[rng.choice(sorted(target, key=str))] = rng.choice([7, "x", [], {}, None, True])
        else:
            target[rng.choice(["bogus", "x-extension", "description", "$ref"])] = "text"
        yield mutant


def _corpus() -> list[Path]:
    if not CORPUS.is_dir():
        return []
    return sorted(p for p in CORPUS.rglob("*") if p.suffix in (".yaml", ".yml", ".json"))


# Documents that never reach the validators (not parseable, no supported version) are left out.
VALIDATED = [path for path in LOCAL if _instance(path) is not None]


@pytest.mark.parametrize("path", VALIDATED, ids=lambda p: p.relative_to(REPO).as_posix())
def test_validators_agree_on_test_documents(path: Path) -> None:
    found = _instance(path)
    assert found is not None
    version, instance = found
    assert _agree(version, instance)
    for mutant in _mutants(instance, seed=len(path.name)):
        assert _agree(version, mutant), f"validators disagree on a mutation of {path.name}"


def test_validators_agree_on_the_corpus() -> None:
    documents = _corpus()
    if not documents:
        pytest.skip(f"the corpus is not at {CORPUS} (set ASYNCAPI_PYGEN_CORPUS)")
    checked = 0
    for path in documents:
        found = _instance(path)
        if found is None:
            continue
        version, instance = found
        assert _agree(version, instance), path.name
        for mutant in _mutants(instance, seed=checked, count=CORPUS_MUTATIONS):
            assert _agree(version, mutant), f"validators disagree on a mutation of {path.name}"
        checked += 1
    assert checked >= 20
