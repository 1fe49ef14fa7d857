"""Regenerate with nothing changed: the run is decided from hashes (no rebuild), reports what a
full run would, and falls back to a full run whenever anything that matters changed."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from generator import drift, pipeline
from tests.support import EXAMPLE_PACKAGE, EXAMPLE_SPEC, cli

PKG = EXAMPLE_PACKAGE


def generate(spec: Path, out: Path, *flags: str):
    return cli("generate", str(spec), "--output", str(out), *flags)


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    monkeypatch.setenv("ASYNCAPI_PYGEN_CACHE", str(tmp_path / "cache"))
    spec = tmp_path / "asyncapi.yaml"
    shutil.copy(EXAMPLE_SPEC, spec)
    out = tmp_path / "service"
    assert generate(spec, out).returncode == 0
    return spec, out


@pytest.fixture
def builds(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Every full build from here on, counted."""
    seen: list[Path] = []
    real = pipeline.build

    def counting(spec: Path, *args, **kwargs):  # type: ignore[no-untyped-def]
        seen.append(spec)
        return real(spec, *args, **kwargs)

    monkeypatch.setattr(pipeline, "build", counting)
    return seen


def _summary(output: str) -> str:
    return output.strip().splitlines()[-1].rsplit(" in ", 1)[0]


def test_a_rerun_with_nothing_changed_replays_the_report(project, builds) -> None:
    spec, out = project
    shutil.rmtree(spec.parent / "cache" / "runs")  # forgotten: the next run is a full one
    full = generate(spec, out)
    replayed = generate(spec, out)
    assert len(builds) == 1
    assert replayed.returncode == 0
    assert _summary(replayed.stdout) == _summary(full.stdout)
    assert replayed.stderr == full.stderr


def test_a_replay_after_a_removed_channel_reports_the_orphaned_files(project, builds) -> None:
    spec, out = project
    data = yaml.safe_load(spec.read_text())
    del data["channels"]["deviceStatus"]
    del data["operations"]["receiveStatus"]
    spec.write_text(yaml.safe_dump(data, sort_keys=False))
    generate(spec, out)  # the channel's handler and its test are now orphaned
    shutil.rmtree(spec.parent / "cache" / "runs")
    full = generate(spec, out)
    replayed = generate(spec, out)
    assert len(builds) == 2
    assert "2 orphaned" in _summary(full.stdout)
    assert _summary(replayed.stdout) == _summary(full.stdout)
    assert replayed.stderr == full.stderr


def test_warnings_are_replayed_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, builds) -> None:
    monkeypatch.setenv("ASYNCAPI_PYGEN_CACHE", str(tmp_path / "cache"))
    spec = tmp_path / "asyncapi.yaml"
    text = EXAMPLE_SPEC.read_text()
    unused = "    parameters:\n      unused:\n        description: not in the address\n"
    spec.write_text(text.replace("    parameters:\n", unused, 1))
    out = tmp_path / "service"
    first = generate(spec, out)
    second = generate(spec, out)
    assert len(builds) == 1
    assert "warning:" in first.stderr
    assert second.stderr == first.stderr


@pytest.mark.parametrize("change", ["spec", "app_settings", "generated", "handler-deleted"])
def test_any_change_means_a_full_run(project, builds, change: str) -> None:
    spec, out = project
    generate(spec, out)  # the replay record now exists
    builds.clear()
    if change == "spec":
        spec.write_text(spec.read_text().replace("title: ", "title: Renamed ", 1))
    elif change == "app_settings":
        settings = out / PKG / "app_settings.py"
        settings.write_text(settings.read_text() + "\n# a comment\n")
    elif change == "generated":
        (out / PKG / "topics.py").write_text("# edited\n")
    else:
        (out / PKG / "handlers" / "device_status.py").unlink()
    result = generate(spec, out)
    assert len(builds) == 1
    if change == "generated":
        assert result.returncode == 1
        assert "edited by hand" in result.stderr
    else:
        assert result.returncode == 0, result.stderr
    if change == "handler-deleted":
        assert (out / PKG / "handlers" / "device_status.py").is_file()


def test_handler_drift_is_checked_on_a_replay(project, builds) -> None:
    spec, out = project
    generate(spec, out)
    handler = out / PKG / "handlers" / "device_status.py"
    handler.write_text(handler.read_text().replace("device_id: str", "serial: str"))
    builds.clear()
    result = generate(spec, out, "--strict")
    assert builds == []  # a handler is the user's: editing one changes nothing generated
    assert "no longer match channel devices/{deviceId}/status" in result.stderr
    assert result.returncode == 1


def test_a_replay_repeats_the_checks_while_their_files_are_unchanged(
    project, builds, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The handlers and pyproject.toml as the last run left them: its findings again, without
    parsing every handler; either one edited: checked again."""
    spec, out = project
    handler = out / PKG / "handlers" / "device_status.py"
    handler.write_text(handler.read_text().replace("device_id: str", "serial: str"))
    full = generate(spec, out)  # a full run: the handler is not as the last run left it
    assert "no longer match channel devices/{deviceId}/status" in full.stderr
    checked: list[Path] = []
    real = drift.report
    monkeypatch.setattr(
        drift, "report", lambda output, *a: checked.append(output) or real(output, *a)
    )
    builds.clear()
    replayed = generate(spec, out)
    assert builds == [] and checked == []
    assert replayed.stderr == full.stderr
    pyproject = out / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('"paho-mqtt', '"paho-mqtt-fork', 1))
    again = generate(spec, out)
    assert builds == [] and checked == [out]
    assert "dependency paho-mqtt" in again.stderr and "is missing" in again.stderr


def test_without_a_cache_every_run_is_full(project, builds, monkeypatch) -> None:
    spec, out = project
    monkeypatch.setenv("ASYNCAPI_PYGEN_CACHE", "off")
    generate(spec, out)
    generate(spec, out)
    assert len(builds) == 2


# Documents a folder may be regenerated from, in any order: the example, the example plus a
# channel and a field, and the example under another title (another package).
def _plus_channel(data: dict) -> None:
    data["channels"]["deviceEvents"] = {
        "address": "devices/{deviceId}/events",
        "parameters": {"deviceId": {"$ref": "#/components/parameters/deviceId"}},
        "messages": {
            "event": {"payload": {"type": "object", "properties": {"k": {"type": "string"}}}}
        },
    }
    data["operations"]["receiveEvents"] = {
        "action": "receive",
        "channel": {"$ref": "#/channels/deviceEvents"},
        "messages": [{"$ref": "#/channels/deviceEvents/messages/event"}],
    }
    sensors = data["components"]["schemas"]["TelemetryPayload"]["properties"]["sensors"]
    sensors["properties"]["signal"] = {"type": "integer"}


def _retitled(data: dict) -> None:
    data["info"]["title"] = "Other Service"


def _documents() -> list[str]:
    texts = [EXAMPLE_SPEC.read_text()]
    for change in (_plus_channel, _retitled):
        data = yaml.safe_load(EXAMPLE_SPEC.read_text())
        change(data)
        texts.append(yaml.safe_dump(data, sort_keys=False))
    return texts


DOCUMENTS = _documents()
# document, its folder (run from there), its name, the output, --allow-remote-refs (no record)
Step = tuple[int, str, str, str, bool]


@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    st.lists(
        st.tuples(
            st.integers(0, len(DOCUMENTS) - 1),
            st.sampled_from(["specs", "other"]),
            st.sampled_from(["a.yaml", "b.yaml"]),
            st.sampled_from(["out", "out2"]),
            st.booleans(),
        ),
        min_size=2,
        max_size=5,
    )
)
@example(
    [
        (1, "specs", "b.yaml", "out", False),
        (0, "specs", "a.yaml", "out", False),
        (1, "specs", "b.yaml", "out", False),
    ]
)
@example(
    [
        (1, "specs", "a.yaml", "out", False),
        (0, "other", "a.yaml", "out", False),
        (1, "specs", "a.yaml", "out", False),
    ]
)
@example(
    [
        (1, "specs", "a.yaml", "out", False),
        (0, "specs", "b.yaml", "out", True),
        (1, "specs", "a.yaml", "out", False),
    ]
)
def test_no_sequence_of_runs_leaves_stale_output(steps: list[Step]) -> None:
    """After every run the folder holds exactly what a full run of that document would write
    (`--check` builds in full and never replays), whatever ran in it before (issue 21.1)."""
    with tempfile.TemporaryDirectory() as tmp, pytest.MonkeyPatch.context() as patch:
        root = Path(tmp)
        patch.setenv("ASYNCAPI_PYGEN_CACHE", str(root / "cache"))
        for document, folder, name, output, remote in steps:
            (root / folder).mkdir(exist_ok=True)
            patch.chdir(root / folder)  # the same file name in two folders reads the same
            spec, out = Path(name), Path("..") / output
            spec.write_text(DOCUMENTS[document])
            ran = generate(spec, out, *(["--allow-remote-refs"] if remote else []))
            assert ran.returncode == 0, ran.stderr
            checked = generate(spec, out, "--check")
            assert checked.returncode == 0, f"stale after {steps}: {checked.stderr}"


def test_limits_tighter_than_the_defaults_are_checked_not_replayed(project, builds) -> None:
    """A run remembered with the default limits says nothing about tighter ones (a CI job that
    sets --max-nodes): those are always a full run, which enforces them."""
    spec, out = project
    assert generate(spec, out).returncode == 0 and builds == []  # replayed
    tight = generate(spec, out, "--max-nodes", "5")
    assert tight.returncode == 1 and "more than 5 nodes" in tight.stderr
    assert len(builds) == 1
