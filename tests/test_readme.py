"""The README and docs tell the truth: every `console` session in them is run as shown and must
print what they show (times aside), every link leads somewhere, and the README leads with the
five-minute path. A session that goes stale (a count, a message, an exit status) fails here."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import EXAMPLE, EXAMPLE_SPEC, REPO

README = REPO / "README.md"
DOCS = sorted((REPO / "docs").glob("*.md"))
SESSION = re.compile(r"^```console\n(.*?)^```", re.S | re.M)
TIME = re.compile(r" in \d+\.\d+ s$", re.M)


def sessions() -> list[tuple[str, int, str]]:
    found = []
    for path in [README, *DOCS]:
        text = path.read_text(encoding="utf-8")
        for n, match in enumerate(SESSION.finditer(text)):
            found.append((path.relative_to(REPO).as_posix(), n, match.group(1)))
    return found


def transcript(session: str, cwd: Path) -> str:
    """Run each `$ command` of a session in one shell, echoing it as the docs show it."""
    script = ["status=0"]
    for line in session.splitlines():
        if line.startswith("$ "):
            # `$?` in a command is the previous command's status, as in a terminal
            script.append(f"printf '%s\\n' {shlex.quote(line)}; (exit $status)")
            if not line[2:].lstrip().startswith("#"):
                script.append(f"{{ {line[2:]}\n}} 2>&1; status=$?")
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONUNBUFFERED": "1",
        "ASYNCAPI_PYGEN_CACHE": str(cwd / ".cache"),
    }
    result = subprocess.run(
        ["bash", "-c", "\n".join(script)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    return result.stdout + result.stderr


@pytest.mark.parametrize("where,n,session", sessions(), ids=lambda v: str(v)[:30])
def test_each_console_session_prints_what_it_shows(
    where: str, n: int, session: str, tmp_path: Path
) -> None:
    (tmp_path / "examples" / "mqtt").mkdir(parents=True)
    shutil.copy(EXAMPLE_SPEC, tmp_path / "examples" / "mqtt" / "asyncapi.yaml")
    shown = TIME.sub(" in T s", session.rstrip("\n"))
    ran = TIME.sub(" in T s", transcript(session, tmp_path).rstrip("\n"))
    assert ran == shown, f"{where}, session {n + 1}, is stale; as it runs now:\n{ran}"


def test_there_are_sessions_to_check() -> None:
    assert {where for where, _, _ in sessions()} >= {"README.md", "docs/regeneration.md"}


def test_the_readme_leads_with_the_five_minute_path() -> None:
    text = README.read_text(encoding="utf-8")
    first = re.search(r"^## (.*)$", text, re.M)
    assert first is not None and first.group(1).startswith("Five minutes")
    lead = text[: text.index("## The whole repository")]
    for step in ("pip install", "generate", "edit", "python -m iot_device_management_service"):
        assert step in lead, step
    assert ".venv/bin/asyncapi-pygen" in lead and "source .venv/bin/activate" in lead
    assert len(text) < 8000, "reference material belongs in docs/"


def test_every_relative_link_leads_to_a_file() -> None:
    for path in [README, *DOCS]:
        for target in re.findall(r"\]\(([^)#]+)\)", path.read_text(encoding="utf-8")):
            if "://" not in target:
                assert (path.parent / target).exists(), f"{path.name}: {target}"


def test_the_generated_readme_links_no_page_that_does_not_exist() -> None:
    text = (EXAMPLE / "README.md").read_text(encoding="utf-8")
    assert "pypi.org" not in text
    assert re.findall(r"https?://[^\s)>]+", text) == []
