"""README.md's settings table and .env.example list every setting the service reads, from the
runtime's `ServiceSettings` (read with `ast`) and the user's `AppSettings`: checked here against
what pydantic itself reads from those classes."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

from generator.pipeline import build
from generator.runtime.settings import ServiceSettings
from generator.settings_table import Setting, read
from tests.support import REPO

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
