"""Start-up and shutdown code, and resources shared by the handlers.

Yours to edit: asyncapi-pygen created this file once and never overwrites it.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kitchen_sink.service import Service


@contextlib.asynccontextmanager
async def lifespan(service: Service) -> AsyncIterator[None]:
    """Code before `yield` runs at start-up (the broker may still be connecting; sends wait for
    it); code after it runs at shutdown, once in-flight handlers have finished.

    Put shared resources in `service.state` (handlers see it as `ctx.state`) and long-running
    jobs in `service.start_background(...)`; send with `service.publisher`.
    """
    yield
