"""The service: the document's routes, settings and send methods (`routes.py`, `settings.py`,
`publisher.py`) on the runtime's engine (`_runtime.service`), with your lifespan (`lifecycle.py`).
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager

from ._runtime.service import Service as _Service
from .app_settings import AppSettings
from .lifecycle import State, lifespan
from .publisher import Publisher
from .routes import ROUTES, SUBSCRIPTIONS
from .settings import Settings


class Service(_Service[Settings, AppSettings, State, Publisher]):
    """`await Service().run()` serves until SIGINT/SIGTERM or `request_stop()`."""

    def __init__(
        self, settings: Settings | None = None, app_settings: AppSettings | None = None
    ) -> None:
        super().__init__(
            settings if settings is not None else Settings(),
            app_settings if app_settings is not None else AppSettings(),
            ROUTES,
            SUBSCRIPTIONS,
            Publisher,
        )

    def lifespan(self) -> AbstractAsyncContextManager[State]:
        return lifespan(self)
