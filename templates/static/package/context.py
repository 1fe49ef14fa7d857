"""What a handler receives besides the message (`_runtime.context`): `ctx.publisher` (the typed
send methods), `ctx.state` (what `lifecycle.lifespan` yielded), `ctx.settings`,
`ctx.app_settings`, `ctx.logger`, and the message as it arrived (`ctx.topic`, `ctx.message`)."""

from __future__ import annotations

from ._runtime.context import Context as _Context
from .app_settings import AppSettings
from .lifecycle import State
from .publisher import Publisher
from .settings import Settings

Context = _Context[Publisher, State, Settings, AppSettings]
