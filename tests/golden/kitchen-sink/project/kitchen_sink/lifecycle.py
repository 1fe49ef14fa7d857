"""Start-up and shutdown code, and the state shared by the handlers.

Yours to edit: asyncapi-pygen created this file once and never overwrites it.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .service import Service


@dataclass
class State:
    """What the handlers share (`ctx.state`, typed as this class): clients, pools, caches."""


@contextlib.asynccontextmanager
async def lifespan(service: Service) -> AsyncIterator[State]:
    """Code before `yield` runs at start-up (the broker may still be connecting; sends wait for
    it); code after it runs at shutdown, once in-flight handlers have finished.

    Yield the `State` handlers see as `ctx.state`; start long-running jobs with
    `service.start_background(...)`; send with `service.publisher`.
    """
    yield State()
