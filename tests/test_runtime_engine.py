"""The runtime's engine without a broker: the route table's handler check, one set of counters
with outcomes, the typed state and what a handler's context carries (fakes only for the user's
handler modules)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import types
from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any

import pytest
from pydantic_settings import BaseSettings

from generator.runtime import Incoming
from generator.runtime.harness import run
from generator.runtime.publishing import PublisherBase
from generator.runtime.routing import Handler, Route, misfits, subscriptions_of, utf8_text
from generator.runtime.service import Service
from generator.runtime.settings import ServiceSettings
from generator.runtime.topics import TopicTemplate

TOPIC = TopicTemplate("rooms/{room}/temp", "rooms/+/temp")
SIGNATURE = "async def handle(message: str, ctx: Context, *, room: str) -> None"


def module(source: str) -> types.ModuleType:
    found = types.ModuleType("demo.handlers.rooms")
    exec(source, found.__dict__)
    return found


@pytest.mark.parametrize(
    "source,why",
    [
        ("", "it has no function handle()"),
        ("def handle(message, ctx, *, room): pass", "handle() is not `async def`"),
        (
            "async def handle(message, ctx, *, device): pass",
            "handle() does not fit: missing a required argument: 'device'",
        ),
        (
            "async def handle(message, ctx): pass",
            "handle() does not fit: got an unexpected keyword argument 'room'",
        ),
    ],
)
def test_a_handler_that_does_not_fit_is_one_line(source: str, why: str) -> None:
    route = Route(
        "rooms", TOPIC, 1, utf8_text, _call, handler=Handler(module(source), SIGNATURE, ("room",))
    )
    assert misfits((route,)) == [
        f"demo/handlers/rooms.py: {why}; channel rooms/{{room}}/temp needs `{SIGNATURE}`"
    ]


def test_handlers_that_fit_say_nothing() -> None:
    fits = module("async def handle(message, ctx, *, room, **more): pass")
    route = Route("rooms", TOPIC, 1, utf8_text, _call, handler=Handler(fits, SIGNATURE, ("room",)))
    assert misfits((route,)) == []


@dataclass
class State:
    seen: list[tuple[str, str]]


class Demo(Service[ServiceSettings, BaseSettings, State, PublisherBase]):
    def __init__(self, settings: ServiceSettings, app_settings: BaseSettings) -> None:
        super().__init__(settings, app_settings, ROUTES, subscriptions_of(ROUTES), PublisherBase)

    def lifespan(self) -> AbstractAsyncContextManager[State]:
        return _lifespan()


@contextlib.asynccontextmanager
async def _lifespan() -> AsyncIterator[State]:
    yield State([])


async def _call(message: str, ctx: Any, params: Mapping[str, str]) -> None:
    if message == "boom":
        raise RuntimeError("boom")
    if message == "commit fails":
        refused = asyncio.get_running_loop().create_future()
        refused.set_exception(OSError("disk full"))
        ctx.ack_after(refused)
        return
    ctx.state.seen.append((params["room"], message))
    ctx.logger.info("handled %s", message)


ROUTES = (Route("rooms", TOPIC, 1, utf8_text, _call),)


def test_outcomes_come_from_the_one_set_of_counters(caplog: pytest.LogCaptureFixture) -> None:
    async def scenario() -> None:
        async with run(Demo, ServiceSettings, BaseSettings, {}) as h:
            with caplog.at_level(logging.INFO):
                handled = await h.publish("rooms/a/temp", "21.5")
            record = next(r for r in caplog.records if r.getMessage() == "handled 21.5")
            assert (record.topic, record.channel) == ("rooms/a/temp", "rooms")  # type: ignore[attr-defined]
            assert handled.handled and handled.rejected is None
            assert h.service.state.seen == [("a", "21.5")]
            assert (await h.publish("elsewhere", "x")).rejected == "unknown_topic"
            assert (await h.publish("rooms/a/temp", b"\xff")).rejected == "invalid_payload"
            assert (await h.publish("rooms/b/temp", "boom")).handler_error
            stats = h.stats
            assert (stats.received, stats.handled, stats.unknown_topic) == (4, 1, 1)
            assert (stats.invalid_payload, stats.handler_errors, stats.rejected) == (1, 1, 2)
            rooms = h.service.metrics.channels["rooms"]
            assert (rooms.received, rooms.handled, rooms.handler_errors) == (3, 1, 1)

    asyncio.run(scenario())


def test_there_is_no_state_before_the_lifespan_yields_it() -> None:
    service = Demo(ServiceSettings(), BaseSettings())
    with pytest.raises(RuntimeError, match="no state yet"):
        _ = service.state
    with pytest.raises(RuntimeError, match="no state yet"):  # Service.run serves only after it
        asyncio.run(service.process(Incoming("rooms/a/temp", b"1")))


def test_the_harness_reports_a_failed_ack_after_as_the_runtime_does(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The runtime logs what a handler handed to `ctx.ack_after` when it fails, then
    acknowledges; the harness logs it the same way and says so, instead of raising."""

    async def scenario() -> None:
        async with run(Demo, ServiceSettings, BaseSettings, {}) as h:
            with caplog.at_level(logging.ERROR):
                outcome = await h.publish("rooms/a/temp", "commit fails")
            assert outcome.handler_error and not outcome.handled
            assert "handed back failed: OSError('disk full')" in caplog.text

    asyncio.run(scenario())
