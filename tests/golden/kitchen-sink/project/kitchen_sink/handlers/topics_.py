"""Handler for sink/{region}/{headers}/orders (channel topics).

Yours to edit: asyncapi-pygen created this file once and never overwrites it.
"""

from __future__ import annotations

import logging
from typing import Literal

from kitchen_sink.context import Context
from kitchen_sink.models import OrderHeaders, OrderPayload

logger = logging.getLogger(__name__)


async def handle(
    message: OrderPayload,
    ctx: Context,
    *,
    region: Literal["eu", "us"],
    headers_: str,
    headers: OrderHeaders,
) -> None:
    """Orders arrive at least once."""
    logger.info("%s: %r", ctx.topic, message)
