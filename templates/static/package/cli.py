"""`python -m <package>`: run the service, `check-config` to try the settings once, `simulate`,
`--version` (`_runtime.cli`)."""

from __future__ import annotations

from . import DISTRIBUTION, TITLE, __version__
from ._runtime.cli import Program
from ._runtime.cli import main as _main
from .app_settings import AppSettings
from .routes import ROUTES, SUBSCRIPTIONS
from .service import Service
from .settings import Settings

PROGRAM = Program(
    __name__.removesuffix(".cli"),
    DISTRIBUTION,
    TITLE,
    __version__,
    Settings,
    AppSettings,
    Service,
    ROUTES,
    SUBSCRIPTIONS,
)


def main(argv: list[str] | None = None) -> None:
    _main(PROGRAM, argv)
