"""Handler for pets/{petId} (channel pets).

Yours to edit: asyncapi-pygen created this file once and never overwrites it.
"""

from __future__ import annotations

import logging

from kitchen_sink.context import Context
from kitchen_sink.models import Cat, Dog

logger = logging.getLogger(__name__)


async def handle(message: Dog | Cat, ctx: Context, *, pet_id: str) -> None:
    """Handle a message on pets/{petId}"""
    logger.info("%s: %r", ctx.topic, message)
