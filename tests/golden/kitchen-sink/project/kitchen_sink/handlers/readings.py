"""Handler for readings/{timeout} (channel readings).

Yours to edit: asyncapi-pygen created this file once and never overwrites it.
"""

from __future__ import annotations

import logging

from kitchen_sink.context import Context
from kitchen_sink.models import ReadingPayload

logger = logging.getLogger(__name__)


async def handle(message: ReadingPayload, ctx: Context, *, timeout_: str) -> None:
    """Handle a message on readings/{timeout}"""
    # To send, the typed methods of ctx.publisher (publisher.py):
    #     await ctx.publisher.send_order(OrderPayload(...), headers_=...)
    #     await ctx.publisher.send_pet_dog(Dog(...), pet_id=...)
    #     await ctx.publisher.send_pet_cat(Cat(...), pet_id=...)
    #     await ctx.publisher.ask_ping(PingPayload(...), node=...)
    #     ... and 2 more in publisher.py
    logger.info("%s: %r", ctx.topic, message)
