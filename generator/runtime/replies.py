"""Request/reply: awaiting the answer to a request, and addressing the answer to one.

A request waits for the first reply on its reply topic that carries its correlation id (when the
messages declare one in the payload); without one, requests on the same reply topic take turns,
so each reply still answers exactly one request.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import BaseModel


class RequestTimeout(Exception):
    """No reply arrived in time."""


def _field(model: BaseModel, alias: str) -> str | None:
    for name, info in type(model).model_fields.items():
        if alias in (info.alias, name):
            return name
    return None


def get_path(model: Any, path: tuple[str, ...]) -> Any:
    """The value at a wire-name path in a model (None when absent)."""
    value = model
    for alias in path:
        name = _field(value, alias) if isinstance(value, BaseModel) else None
        if name is None:
            return None
        value = getattr(value, name)
    return value


def set_path(model: Any, path: tuple[str, ...], value: Any) -> bool:
    """Set the value at a wire-name path in a model; False when the path does not exist."""
    *parents, last = path
    target = get_path(model, tuple(parents)) if parents else model
    name = _field(target, last) if isinstance(target, BaseModel) else None
    if name is None:
        return False
    setattr(target, name, value)
    return True


Where = tuple[str, tuple[str, ...]] | None  # ("payload" | "header", path), from the spec


def read(where: Where, message: Any, properties: dict[str, str]) -> Any:
    """The value a runtime expression names: a payload field, or a header (user property)."""
    if where is None:
        return None
    source, path = where
    if source == "header":
        return properties.get(path[0])
    return get_path(message, path)


def correlate(request: Any, where: Where) -> tuple[str | None, dict[str, str]]:
    """The request's correlation id (a fresh one when the field is empty), and the user
    properties to send with it (a header-located id travels as one)."""
    if where is None:
        return None, {}
    source, path = where
    if source == "header":
        fresh = str(uuid.uuid4())
        return fresh, {path[0]: fresh}
    current = get_path(request, path)
    if current is None:
        current = str(uuid.uuid4())
        set_path(request, path, current)
    return str(current), {}


def answer(
    request: Any, properties: dict[str, str], reply: Any, request_id: Where, reply_id: Where
) -> dict[str, str]:
    """Copy the request's correlation id into the reply (unless the handler set one); returns
    the user properties to send with the reply."""
    value = read(request_id, request, properties)
    if value is None or reply_id is None:
        return {}
    source, path = reply_id
    if source == "header":
        return {path[0]: str(value)}
    if get_path(reply, path) is None:
        set_path(reply, path, value)
    return {}


class Requests:
    """The requests waiting for their replies, by (reply topic, correlation id)."""

    def __init__(self) -> None:
        self._waiting: dict[tuple[str, str | None], asyncio.Future[Any]] = {}
        self._turns: dict[str, asyncio.Lock] = {}

    async def request(
        self,
        send: Callable[[], Awaitable[None]],
        reply_topic: str,
        correlation: str | None,
        timeout: float,
    ) -> Any:
        if correlation is not None:
            return await self._await(send, (reply_topic, correlation), timeout)
        async with self._turns.setdefault(reply_topic, asyncio.Lock()):
            return await self._await(send, (reply_topic, None), timeout)

    async def _await(
        self, send: Callable[[], Awaitable[None]], key: tuple[str, str | None], timeout: float
    ) -> Any:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiting[key] = future
        try:
            await send()
            done, _ = await asyncio.wait({future}, timeout=timeout)
            if not done:
                raise RequestTimeout(f"no reply on {key[0]!r} within {timeout:g} s")
            return future.result()
        finally:
            self._waiting.pop(key, None)

    def resolve(self, topic: str, correlation: Any, reply: Any) -> bool:
        """Hand a reply to the request waiting for it; False when none is."""
        key = (topic, None if correlation is None else str(correlation))
        future = self._waiting.get(key)
        if future is None or future.done():
            return False
        future.set_result(reply)
        return True
