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
    # To send, the typed methods of ctx.publisher (publisher.py):
    #     await ctx.publisher.send_order(OrderPayload(...), headers_=...)
    #     await ctx.publisher.send_pet_dog(Dog(...), pet_id=...)
    #     await ctx.publisher.send_pet_cat(Cat(...), pet_id=...)
    #     await ctx.publisher.ask_ping(PingPayload(...), node=...)
    #     ... and 2 more in publisher.py
    logger.info("%s: %r", ctx.topic, message)
    return None
