"""Models are made group by group: schemas that never reference each other are modelled apart
and cached by content, so a change to one payload re-models one group, and the result is the
same bytes as a run from scratch."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from generator import model_groups, payload_models
from generator.errors import Failed
from generator.pipeline import build
from tests.support import EXAMPLE_PACKAGE, EXAMPLE_SPEC, cli, import_modules, write_files

REF = "#/components/schemas/"


def test_schemas_that_reference_each_other_share_a_group() -> None:
    schemas = {
        "A": {"type": "object", "properties": {"b": {"$ref": REF + "B"}}},
        "C": {"type": "object"},
        "B": {"type": "array", "items": {"$ref": REF + "D"}},
        "D": {"type": "object", "properties": {"d": {"allOf": [{"$ref": REF + "A"}]}}},
        "E": {"type": "object", "properties": {"c": {"$ref": REF + "C"}}},
        "F": {"enum": ["x"]},
    }
    assert model_groups.groups(schemas, set()) == [["A", "B", "D"], ["C", "E"], ["F"]]


ID = {"type": "string", "pattern": "^[a-z]+$"}


def test_a_shared_scalar_is_copied_into_each_group_that_uses_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A device id shared by every payload would make one group of them all."""
    monkeypatch.setenv("ASYNCAPI_PYGEN_CACHE", "off")
    schemas = {
        "Id": ID,
        "A": {"type": "object", "properties": {"id": {"$ref": REF + "Id"}}},
        "B": {"type": "object", "properties": {"id": {"$ref": REF + "Id"}}},
    }
    assert model_groups.groups(schemas, model_groups.inlined(schemas, {"A", "B"})) == [["A"], ["B"]]
    parts = payload_models.generate_models(schemas, {"A", "B"}, "a.yaml")
    assert sorted(name for part in parts for name in part.names) == ["A", "B"]
    source = model_groups.module(parts, "# h", "pkg")
    assert source.count("pattern='^[a-z]+$'") == 2  # written into each field


def test_chunks_are_cut_by_name_so_an_edit_or_an_insertion_changes_one_or_two() -> None:
    groups = [[f"Reading{index}", f"Reading{index}State"] for index in range(1000)]
    before = model_groups.chunks(groups)
    assert [group for chunk in before for group in chunk] == groups
    sizes = sorted(len(chunk) for chunk in before)
    assert 3 <= sizes[len(sizes) // 2] <= 3 * model_groups.CHUNK  # about CHUNK groups each
    assert max(sizes) <= model_groups.CHUNK_MAX
    inserted = model_groups.chunks([*groups[:500], ["Inserted"], *groups[500:]])
    assert len([c for c in inserted if c not in before]) in (1, 2)
    removed = model_groups.chunks(groups[:300] + groups[301:])
    assert len([c for c in removed if c not in before]) in (1, 2)


def test_a_shared_scalar_that_becomes_a_class_is_defined_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """As an array's items the library makes the scalar a class: its users share a group."""
    monkeypatch.setenv("ASYNCAPI_PYGEN_CACHE", "off")
    schemas = {
        "Id": ID,
        "A": {
            "type": "object",
            "properties": {"ids": {"type": "array", "items": {"$ref": REF + "Id"}}},
        },
        "B": {"type": "object", "properties": {"id": {"$ref": REF + "Id"}}},
        "C": {"type": "object"},
    }
    parts = payload_models.generate_models(schemas, {"A", "B", "C"}, "a.yaml")
    names = [name for part in parts for name in part.names]
    assert sorted(names) == ["A", "B", "C", "Id"]
    assert model_groups.groups(schemas, set()) == [["Id", "A", "B"], ["C"]]  # Id a class: shared


def made_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every group the library models from here on (cache misses)."""
    calls: list[str] = []
    real = payload_models.make

    def counting(document: str, source: str) -> str:
        calls.append(document)
        return real(document, source)

    monkeypatch.setattr(payload_models, "make", counting)
    return calls


def add_field(spec: Path) -> None:
    data = yaml.safe_load(spec.read_text())
    sensors = data["components"]["schemas"]["TelemetryPayload"]["properties"]["sensors"]
    sensors["properties"]["signal"] = {"type": "integer", "minimum": -120}
    spec.write_text(yaml.safe_dump(data, sort_keys=False))


def test_a_field_added_to_one_payload_remodels_its_group_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ASYNCAPI_PYGEN_CACHE", str(tmp_path / "cache"))
    spec, out = tmp_path / "asyncapi.yaml", tmp_path / "service"
    shutil.copy(EXAMPLE_SPEC, spec)
    calls = made_calls(monkeypatch)
    assert cli("generate", str(spec), "--output", str(out)).returncode == 0
    assert len(calls) >= 1
    add_field(spec)
    calls.clear()
    again = cli("generate", str(spec), "--output", str(out))
    assert again.returncode == 0, again.stderr
    assert len(calls) == 1 and '"signal"' in calls[0]
    monkeypatch.setenv("ASYNCAPI_PYGEN_CACHE", "off")
    fresh = build(spec, output=out).files
    models = f"{EXAMPLE_PACKAGE}/models.py"
    assert (out / models).read_text() == fresh[models]  # incremental = from scratch
    assert "signal: Annotated[int | None, Field(ge=-120)] = None" in fresh[models]


# The library names a class of its own for a constrained array item: `Pair` gets `PairItem`,
# which is the bundle's name of another, independent schema, and `Other.pair` gets one too.
CLASHING: dict[str, Any] = {
    "Pair": {"type": "array", "items": {"type": "string", "pattern": "^[A-Z]+/[A-Z]+$"}},
    "Holder": {
        "type": "object",
        "description": "Holds a PairItem.",
        "properties": {"p": {"$ref": REF + "Pair"}},
    },
    "PairItem": {"type": "object", "properties": {"x": {"type": "integer"}}},
    "Other": {
        "type": "object",
        "properties": {"pair": {"type": "array", "items": {"type": "string", "maxLength": 3}}},
    },
}


def test_a_class_the_library_named_never_takes_a_bundle_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ASYNCAPI_PYGEN_CACHE", "off")
    parts = payload_models.generate_models(CLASHING, set(CLASHING), "a.yaml")
    source = model_groups.module(parts, "# h", "pkg")
    names = [name for part in parts for name in part.names]
    assert len(names) == len(set(names))
    assert "Holds a PairItem." in source  # text is not code: never renamed
    wire = "from pydantic import BaseModel\n\n\nclass WireModel(BaseModel):\n    pass\n"
    runtime = {"pkg/_runtime/__init__.py": "", "pkg/_runtime/wire.py": wire}
    write_files({"pkg/__init__.py": "", **runtime, "pkg/models.py": source}, tmp_path)
    (models,) = import_modules(tmp_path, "pkg.models")
    assert models.PairItem.model_validate({"x": 1}).x == 1  # the bundle's own schema
    holder = models.Holder.model_validate({"p": ["AB/CD"]})
    assert holder.p[0].root == "AB/CD"
    with pytest.raises(ValueError):
        models.Holder.model_validate({"p": ["lower"]})
    with pytest.raises(ValueError):
        models.Other.model_validate({"pair": ["long"]})


def test_no_schema_no_class() -> None:
    parts = payload_models.generate_models({}, set(), "a.yaml")
    assert model_groups.module(parts, "# h", "pkg") == "# h\n\nfrom __future__ import annotations\n"


def test_a_group_the_library_refuses_is_a_located_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASYNCAPI_PYGEN_CACHE", "off")
    refused = {"Reading": {"type": "object", "properties": {"x": {"$ref": "elsewhere.json#/X"}}}}
    with pytest.raises(Failed) as caught:
        payload_models.generate_models(refused, {"Reading"}, "a.yaml")
    [diagnostic] = caught.value.diagnostics
    assert diagnostic.render().startswith("a.yaml:")
    assert "cannot generate models for the payload schemas" in diagnostic.message
