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
    logger.info("%s: %r", ctx.topic, message)
