"""Handler for ping/{node} (channel ping).

Yours to edit: asyncapi-pygen created this file once and never overwrites it.
"""

from __future__ import annotations

import logging

from kitchen_sink.context import Context
from kitchen_sink.models import PingPayload, PongPayload

logger = logging.getLogger(__name__)


async def handle(message: PingPayload, ctx: Context, *, node: str) -> PongPayload | None:
    """Handle a message on ping/{node}

    Return the reply to send (or None to send none).
    """
    logger.info("%s: %r", ctx.topic, message)
    return None
