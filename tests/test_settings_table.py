"""README.md's settings table and .env.example list every setting the service reads, from the
runtime's `ServiceSettings` (read with `ast`) and the user's `AppSettings`: checked here against
what pydantic itself reads from those classes."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from generator.pipeline import build
from generator.runtime.settings import ServiceSettings
from generator.settings_table import Setting, read
from tests.support import REPO, import_modules, run_cli

SPEC = REPO / "tests" / "specs" / "nulls-3.0.yaml"
ROW = re.compile(r"^\| `(?P<env>[A-Z0-9_]+)` \| (?P<default>.*?) \| (?P<meaning>.*) \|$")


def readme_rows(readme: str) -> dict[str, tuple[str, str]]:
    rows = {}
    for line in readme.splitlines():
        found = ROW.match(line)
        if found:
            rows[found["env"]] = (found["default"], found["meaning"])
    return rows


def test_every_runtime_setting_is_listed_with_pydantics_own_description() -> None:
    files = build(SPEC, "listed").files
    rows = readme_rows(files["README.md"])
    env_lines = [line.split("=")[0] for line in files[".env.example"].splitlines() if "=" in line]
    fields = ServiceSettings.model_fields
    assert list(rows) == [name.upper() for name in fields]
    assert [n for n in env_lines if not n.startswith("#")] == [name.upper() for name in fields]
    for name, info in fields.items():
        assert info.description, f"{name} has no docstring"
        meaning = rows[name.upper()][1]
        assert meaning == " ".join(info.description.split()), name


def test_the_documents_defaults_replace_the_runtimes(tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(textwrap.dedent("""\
            asyncapi: 3.0.0
            info: {title: Defaults, version: 1.0.0}
            servers:
              prod: {host: "broker.example:8883", protocol: mqtts}
            channels:
              a: {address: a}
            operations:
              get: {action: receive, channel: {$ref: "#/channels/a"}}
            """))
    files = build(spec, "defaults").files
    rows = readme_rows(files["README.md"])
    assert rows["MQTT_HOST"][0] == "`broker.example`"
    assert rows["MQTT_PORT"][0] == "`8883`"
    assert rows["MQTT_TLS"][0] == "`true`"
    assert rows["MQTT_SESSION_EXPIRY"][0] == "`3600`"  # the runtime's own
    env = files[".env.example"].splitlines()
    assert "MQTT_HOST=broker.example" in env and "MQTT_TLS=true" in env


def test_the_users_settings_follow_with_their_descriptions(tmp_path: Path) -> None:
    path = tmp_path / "pkg" / "app_settings.py"
    path.parent.mkdir()
    path.write_text(textwrap.dedent('''\
            from pydantic import Field
            from pydantic_settings import BaseSettings

            class AppSettings(BaseSettings):
                database_url: str = "sqlite:///x.db"
                """Where readings
                are stored."""
                batch: int = Field(default=500, description="Rows per commit.")
                debug: bool = False
                _private: int = 1
            '''))
    assert read(path) == (
        Setting("DATABASE_URL", "sqlite:///x.db", "Where readings are stored."),
        Setting("BATCH", "500", "Rows per commit."),
        Setting("DEBUG", "false", "Yours: `pkg/app_settings.py`."),
    )


def test_an_app_settings_file_that_does_not_parse_lists_nothing(tmp_path: Path) -> None:
    path = tmp_path / "app_settings.py"
    path.write_text("class AppSettings(:\n")
    assert read(path) == ()
    assert read(tmp_path / "absent.py") == ()


APP_SETTINGS = """\
from __future__ import annotations

import enum
from datetime import timedelta
from typing import ClassVar

from pydantic_settings import BaseSettings, SettingsConfigDict


class Level(enum.Enum):
    LOW = "low"
    HIGH = "high"


class AppSettings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_ignore_empty=True, extra="ignore")

    level: Level = Level.LOW
    flush: timedelta = timedelta(seconds=5)
    tags: list[str] = ["a", "b"]
    limits: dict[str, int] = {"x": 1}
    retries: int = 3 + 4
    offset: int = -3
    name: str = "it's \\\\ here"
    version: ClassVar[int] = 2
"""


def test_your_defaults_in_env_example_read_back_as_themselves(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Copied to `.env`, .env.example changes none of your settings: a list or mapping is
    written as JSON, a negative number as its value, an expression (an enum member, a call)
    left empty; a ClassVar is no setting."""
    out = tmp_path / "project"
    assert run_cli("generate", str(SPEC), "--output", str(out), "--package", "mine").returncode == 0
    (out / "mine" / "app_settings.py").write_text(APP_SETTINGS)
    assert run_cli("generate", str(SPEC), "--output", str(out), "--package", "mine").returncode == 0
    env = (out / ".env.example").read_text()
    assert 'TAGS=\'["a", "b"]\'' in env and "OFFSET=-3" in env and "VERSION" not in env
    assert "\nLEVEL=\n" in env and "\nFLUSH=\n" in env and "\nRETRIES=\n" in env
    rows = readme_rows((out / "README.md").read_text())
    assert rows["LEVEL"][0] == "`Level.LOW`" and rows["RETRIES"][0] == "`3 + 4`"
    monkeypatch.chdir(out)
    (app,) = import_modules(out, "mine.app_settings")
    assert app.AppSettings(_env_file=".env.example") == app.AppSettings(_env_file=None)
    # a value pydantic-settings cannot parse as JSON is a clear error, exit 2, no traceback
    bad = subprocess.run(
        [sys.executable, "-m", "mine", "check-config"],
        cwd=out,
        env={"PATH": os.environ["PATH"], "TAGS": "[not json"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 2 and "invalid settings" in bad.stderr, bad.stderr
    assert "Traceback" not in bad.stderr
