"""Handler for sink/{region}/{headers}/orders (channel topics).

Yours to edit: asyncapi-pygen created this file once and never overwrites it.
"""

from __future__ import annotations

import logging

from kitchen_sink.context import Context
from kitchen_sink.models import OrderHeaders, OrderPayload
from kitchen_sink.topics import Region

logger = logging.getLogger(__name__)


async def handle(
    message: OrderPayload, ctx: Context, *, region: Region, headers_: str, headers: OrderHeaders
) -> None:
    """Orders arrive at least once."""
    # To send, the typed methods of ctx.publisher (publisher.py):
    #     await ctx.publisher.send_order(OrderPayload(...), headers_=...)
    #     await ctx.publisher.send_pet_dog(Dog(...), pet_id=...)
    #     await ctx.publisher.send_pet_cat(Cat(...), pet_id=...)
    #     await ctx.publisher.ask_ping(PingPayload(...), node=...)
    #     ... and 2 more in publisher.py
    logger.info("%s: %r", ctx.topic, message)
