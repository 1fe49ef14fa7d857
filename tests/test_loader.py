"""Loading: positions, duplicate keys, YAML quirks, JSON by content, references across files."""

from __future__ import annotations

from pathlib import Path

import pytest

from generator.errors import Failed
from generator.loader import parse
from generator.pipeline import analyse
from generator.refs import Workspace


def doc(text: str):
    return parse(text, Path("mem.yaml"), "mem.yaml")


def test_positions_are_one_based_per_pointer() -> None:
    loaded = doc("a:\n  b: 1\n  c: [x, y]\n")
    assert loaded.location("/a/b").line == 2 and loaded.location("/a/b").col == 6
    assert loaded.location("/a/c/1").line == 3
    assert loaded.location("/a/c", key=True).col == 3


def test_timestamps_stay_strings_and_yes_is_not_a_boolean() -> None:
    loaded = doc("when: 2024-01-15T10:30:00Z\nday: 2024-01-15\nanswer: yes\nflag: true\n")
    assert loaded.data == {
        "when": "2024-01-15T10:30:00Z",
        "day": "2024-01-15",
        "answer": "yes",
        "flag": True,
    }


def test_duplicate_keys_are_errors_with_both_lines() -> None:
    with pytest.raises(Failed) as caught:
        doc("a: 1\nb: 2\na: 3\n")
    (error,) = caught.value.diagnostics
    assert "duplicate key 'a' (first defined at line 1)" in error.message
    assert error.location.line == 3


def test_json_is_recognised_by_content_not_extension(tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        '{"asyncapi": "3.0.0", "info": {"title": "J", "version": "1"},\n "channels": {}}'
    )
    api, _ = analyse(spec)
    assert api.title == "J"
    spec.write_text('{"asyncapi": "3.0.0",\n "info": {"title": "J" "version": "1"}}')
    with pytest.raises(Failed) as caught:
        analyse(spec)
    assert caught.value.diagnostics[0].message.startswith("invalid JSON")
    assert caught.value.diagnostics[0].location.line == 2


def test_relative_refs_chain_across_folders_and_cycles_stay_cycles(tmp_path: Path) -> None:
    (tmp_path / "schemas").mkdir()
    (tmp_path / "api.yaml").write_text("""asyncapi: 3.0.0
info: {title: Refs, version: '1'}
channels:
  tree:
    address: tree
    messages:
      node:
        payload:
          $ref: './schemas/node.yaml#/Node'
operations:
  receiveTree:
    action: receive
    channel: {$ref: '#/channels/tree'}
""")
    (tmp_path / "schemas" / "node.yaml").write_text(
        "Node:\n  type: object\n  properties:\n    label: {$ref: 'common/label.yaml'}\n"
        "    children:\n      type: array\n      items: {$ref: '#/Node'}\n"
    )
    (tmp_path / "schemas" / "common").mkdir()
    (tmp_path / "schemas" / "common" / "label.yaml").write_text("type: string\nmaxLength: 5\n")
    api, _ = analyse(tmp_path / "api.yaml")
    assert set(api.schemas) == {"Node", "Label"}
    node = api.schemas["Node"]
    assert node["properties"]["children"]["items"] == {"$ref": "#/components/schemas/Node"}
    assert node["properties"]["label"] == {"$ref": "#/components/schemas/Label"}
    assert api.schemas["Label"] == {"type": "string", "maxLength": 5}


def test_a_referenced_file_that_is_broken_is_reported_in_that_file(tmp_path: Path) -> None:
    (tmp_path / "api.yaml").write_text(
        "asyncapi: 3.0.0\ninfo: {title: X, version: '1'}\ncomponents:\n  schemas:\n"
        "    A: {$ref: 'other.yaml'}\n"
    )
    (tmp_path / "other.yaml").write_text("type: object\nproperties: [unclosed\n")
    ws_error = None
    try:
        Workspace(tmp_path / "api.yaml")
        analyse(tmp_path / "api.yaml")
    except Failed as exc:
        ws_error = exc.diagnostics[0]
    assert ws_error is not None and ws_error.location.file.endswith("other.yaml")
    assert "invalid YAML" in ws_error.message


def test_json_surrogate_pairs_become_the_character() -> None:
    assert doc('{"smile": "\\ud83d\\ude00", "plain": "\\u00e9"}').data == {
        "smile": "\U0001f600",
        "plain": "é",
    }


def test_the_tags_of_yamls_json_schema_are_data() -> None:
    loaded = doc(
        "a: !!str 1\nb: !!float 2\nc: !!int '3'\nd: ! {e: !!null ''}\nf: !!seq [!!bool true]\n"
    )
    assert loaded.data == {"a": "1", "b": 2.0, "c": 3, "d": {"e": None}, "f": [True]}


def test_an_alias_repeats_data_and_positions_and_merge_keys_fill_in() -> None:
    loaded = doc("base: &b\n  x: 1\n  y: [1, 2]\nother: *b\nm:\n  <<: *b\n  y: 3\n")
    assert loaded.data == {
        "base": {"x": 1, "y": [1, 2]},
        "other": {"x": 1, "y": [1, 2]},
        "m": {"x": 1, "y": 3},
    }
    assert loaded.data["other"] is not loaded.data["base"]  # a copy of its own
    assert loaded.location("/other/y/1").line == 3  # where the repeated node is written
    assert loaded.location("/m/y").line == 7


@pytest.mark.parametrize(
    ("text", "message", "line"),
    [
        ("a: &r\n  b: *r\n", "recursive YAML alias", 1),
        ("a: 1\n---\nb: 2\n", "invalid YAML: expected a single document", 2),
        ("a: *nope\n", "invalid YAML: found undefined alias 'nope'", 1),
        ("x: 1\ny: !foo bar\n", "the YAML tag !foo is not allowed", 2),
        ("x: 1\ny: !custom {}\n", "the YAML tag !custom is not allowed", 2),
        ("y: !!set {a, b}\n", "the YAML tag !!set is not allowed", 1),
        ("y: !!omap [a: 1]\n", "the YAML tag !!omap is not allowed", 1),
        ("y: !!binary aGVsbG8=\n", "the YAML tag !!binary is not allowed", 1),
        ("y: !!python/name:os.system x\n", "the YAML tag !!python/name:os.system is not", 1),
        ("y: !!seq {a: 1}\n", "the YAML tag !!seq is not allowed", 1),
        ("y: !!int abc\n", "'abc' is no !!int", 1),
        ("y: !!float x\n", "'x' is no !!float", 1),
        ("y: .nan\n", ".nan is not a JSON number", 1),
        ("a: 1\ny: [-.inf]\n", "-.inf is not a JSON number", 2),
        ("s: &s 1\nm:\n  <<: *s\n", "a merge key (<<) takes a mapping or a list", 3),
        ("m:\n  <<: [{a: 1}, 2]\n", "a merge key (<<) takes a mapping or a list", 2),
        ("? [1, 2]\n: v\n", "mapping keys must be plain strings", 1),
        ("# nothing\n", "the document is empty", 1),
    ],
)
def test_what_cannot_be_data_is_a_located_error(text: str, message: str, line: int) -> None:
    with pytest.raises(Failed) as caught:
        doc(text)
    (error,) = caught.value.diagnostics
    assert error.message.startswith(message) and error.location.line == line
