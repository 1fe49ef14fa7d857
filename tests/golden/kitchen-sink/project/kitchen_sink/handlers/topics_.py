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
    logger.info("%s: %r", ctx.topic, message)
