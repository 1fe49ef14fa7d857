"""The service: the MQTT client, the route table, the lifespan and the HTTP side put together.

Delivery is at least once for QoS 1 and 2: a message is acknowledged only after its handler
returned (and what it passed to `ctx.ack_after` is done), or after it was rejected as invalid
(acknowledged and counted, so it is not redelivered forever). A handler that raises is logged,
counted and acknowledged too: redelivering a message that fails the same way every time would
stall its topic. Handlers must be idempotent.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Coroutine
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from pydantic import ValidationError
from pydantic_settings import BaseSettings

from . import http
from .client import MqttClient
from .context import Context
from .errors import PublishError
from .message import Incoming, Outgoing
from .metrics import ChannelCounts, Gauges, Metrics, Stats
from .publishing import PublisherBase
from .ratelimit import RateLimitedLog
from .replies import Requests, answer, read
from .routing import Route, Subscription, misfits, route_for
from .settings import ServiceSettings, client_config, subscriptions, warn_about

logger = logging.getLogger(__name__)
rejections = RateLimitedLog(logger)

C = TypeVar("C", bound=ServiceSettings)
A = TypeVar("A", bound=BaseSettings)
S = TypeVar("S")
P = TypeVar("P", bound=PublisherBase)

Found = tuple[Route[Any], dict[str, str], ChannelCounts] | None
ROUTE_CACHE_SIZE = 10_000


@dataclass(frozen=True)
class Outcome:
    """What became of a received message."""

    handled: bool
    rejected: str | None = None  # a reason from `metrics.REASONS`
    handler_error: bool = False


HANDLED, FAILED = Outcome(True), Outcome(False, handler_error=True)
IGNORED = Outcome(False)
Acknowledge = Awaitable[object] | None  # what the acknowledgement waits for (`ctx.ack_after`)


def _broken_parameter(routes: tuple[Route[Any], ...], topic: str) -> tuple[str, str] | None:
    """The channel whose address `topic` has but whose parameter rules it breaks, and why."""
    for route in routes:
        problem = route.topic.explain(topic)
        if problem is not None:
            return route.channel, problem
    return None


def _summary(exc: ValidationError) -> tuple[bool, str]:
    """(is it a JSON syntax error, a one-line reason that never echoes the whole payload)."""
    errors = exc.errors(include_input=False, include_url=False)
    first = errors[0] if errors else {"msg": str(exc), "loc": (), "type": ""}
    where = ".".join(str(part) for part in first.get("loc", ()))
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    text = str(first["msg"]).removeprefix("Invalid JSON: ")
    reason = f"{where}: {text}" if where else text
    return first.get("type") == "json_invalid", reason + more


class HandlersDoNotFit(Exception):
    """Handlers that no longer fit their channels; one line each."""


class Service(Generic[C, A, S, P]):
    """A generated service's engine; the generated `Service` names the document's routes, the
    settings classes, the publisher and the user's lifespan."""

    def __init__(
        self,
        settings: C,
        app_settings: A,
        routes: tuple[Route[Any], ...],
        wanted: tuple[Subscription, ...],
        publisher: type[P],
    ) -> None:
        self.settings = settings
        self.app_settings = app_settings
        self.routes = routes
        self.mqtt = MqttClient(
            client_config(settings, wanted),
            subscriptions(settings, wanted),
            self.handle_message,
            max_concurrent=settings.max_concurrent_handlers,
            too_large=self.dropped_while_reading,
        )
        self._wanted = wanted
        self.metrics = Metrics()
        dispatcher = self.mqtt.dispatcher
        self.metrics.gauges = Gauges(
            lambda: self.mqtt.is_connected,
            lambda: self.mqtt.connections,
            lambda: dispatcher.running,
            lambda: dispatcher.pending,
            lambda: dispatcher.deferred,
        )
        self.requests = Requests()
        self.publisher = publisher(self, self.requests)
        self._state: list[S] = []  # what the lifespan yielded, once it did
        self._stop = asyncio.Event()
        self._background: set[asyncio.Task[Any]] = set()
        self._routes: dict[str, Found] = {}  # topic -> its route: devices repeat their topics

    def lifespan(self) -> AbstractAsyncContextManager[S]:
        """The user's start-up and shutdown code (`lifecycle.lifespan`)."""
        raise NotImplementedError

    @property
    def state(self) -> S:
        """What the lifespan yielded; there is none before it did."""
        if not self._state:
            raise RuntimeError("the lifespan has not started: no state yet")
        return self._state[0]

    @property
    def stats(self) -> Stats:
        """The totals of the per-channel counters, now."""
        return self.metrics.totals()

    @contextlib.asynccontextmanager
    async def living(self) -> AsyncIterator[S]:
        """The lifespan running, its state kept for the handlers."""
        async with self.lifespan() as state:
            self._state[:] = [state]
            yield state

    def request_stop(self) -> None:
        """Stop gracefully: no new messages, in-flight handlers finish, then disconnect."""
        self._stop.set()

    def start_background(self, coroutine: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        """Run a task for the life of the service (cancelled at shutdown; failures logged)."""
        task = asyncio.create_task(coroutine, name=name)
        self._background.add(task)
        task.add_done_callback(self._background_done)
        return task

    async def run(self) -> None:
        """Serve until stopped. Raises `HandlersDoNotFit` before connecting when a handler
        cannot take what its channel passes."""
        misfit = misfits(self.routes)
        if misfit:
            raise HandlersDoNotFit("\n".join(misfit))
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self.request_stop)
        warn_about(self.mqtt.config, self._wanted)
        web = await self._start_http()
        serving: asyncio.Task[None] | None = None
        left = 0
        try:
            async with self.living():  # set up before the first message can arrive
                # What start-up made (modules, models, the lifespan's resources) lives as long as
                # the process: frozen, the collector's full passes stop scanning it on every
                # few thousand messages.
                gc.freeze()
                serving = asyncio.create_task(self.mqtt.serve(), name="mqtt")
                stopping = asyncio.create_task(self._stop.wait())
                await asyncio.wait({stopping, serving}, return_when=asyncio.FIRST_COMPLETED)
                stopping.cancel()
                left = await self.mqtt.stop(self.settings.shutdown_timeout)
        finally:
            if web is not None:
                web.close()
            await self.stop_background()
            if serving is not None:
                if not serving.done():
                    await self.mqtt.stop(0)
                await serving
            logger.info("stopped; %d received message(s) left for redelivery; %s", left, self.stats)

    async def publish(self, message: Outgoing, channel: str = "") -> None:
        """Send through the MQTT client, counted per channel (the publisher's transport)."""
        counts = self.metrics.channel(channel or "(other)")
        try:
            await self.mqtt.publish(message)
        except PublishError:
            counts.publish_failures += 1
            raise
        counts.sent += 1

    async def _start_http(self) -> asyncio.Server | None:
        port = self.settings.server_port
        if port is None:
            return None
        registry = CollectorRegistry(auto_describe=True)
        registry.register(self.metrics)

        def ready() -> http.Response:
            if self.mqtt.is_connected:
                return 200, "text/plain", b"ready\n"
            return 503, "text/plain", b"not connected to the broker\n"

        metrics = http.Cached(lambda: generate_latest(registry))
        endpoints: dict[str, http.Endpoint] = {
            "/healthz": lambda: (200, "text/plain", b"ok\n"),
            "/readyz": ready,
            "/metrics": lambda: (200, CONTENT_TYPE_LATEST, metrics()),
        }
        return await http.start(self.settings.server_host, port, endpoints)

    async def handle_message(self, incoming: Incoming) -> Acknowledge:
        """The runtime's callback for each received message: returns what the handler asked
        the acknowledgement to wait for (`Context.ack_after`), if any."""
        return (await self._process(incoming))[1]

    async def process(self, incoming: Incoming) -> Outcome:
        """What became of a message, once it was handled or rejected and what the handler
        passed to `ctx.ack_after` is done (the harness's delivery). If that failed, it is
        logged, as the runtime does before acknowledging the message, and the outcome is a
        handler error."""
        outcome, acknowledge_after = await self._process(incoming)
        if acknowledge_after is not None:
            try:
                await acknowledge_after
            except Exception as exc:
                logger.error(
                    "what the handler of a message on %r handed back failed: %r",
                    incoming.topic,
                    exc,
                )
                return FAILED
        return outcome

    async def _process(self, incoming: Incoming) -> tuple[Outcome, Acknowledge]:
        """The whole path of one received message: route, check, decode, call, count."""
        found = self._route(incoming.topic)
        if found is None:
            return self._reject_unrouted(incoming.topic), None
        route, params, counts = found
        counts.received += 1
        limit = self.settings.max_payload_bytes
        if limit and len(incoming.payload) > limit:
            return (
                self._reject_too_large(incoming.topic, len(incoming.payload), route.channel),
                None,
            )
        if incoming.retain and not incoming.payload:
            counts.retained_clears += 1  # someone cleared a retained message: nothing to do
            return IGNORED, None
        try:
            message = route.decode(incoming.payload)
            headers = route.headers(incoming.user_properties) if route.headers else None
        except (ValidationError, UnicodeDecodeError) as exc:
            return self._reject_invalid(incoming.topic, route.channel, counts, exc), None
        started = time.perf_counter()
        context = Context(
            self.publisher,
            self.state,
            self.settings,
            self.app_settings,
            incoming,
            route.channel,
            headers,
        )
        try:
            await self._call(route, message, context, params)
        except Exception:
            counts.handler_errors += 1
            logger.exception(
                "handler for %s failed on %r",
                route.channel,
                incoming.topic,
                extra={"topic": incoming.topic, "channel": route.channel},
            )
            return FAILED, context.acknowledge_after
        finally:
            counts.observe(time.perf_counter() - started)
        counts.handled += 1
        return HANDLED, context.acknowledge_after

    async def _call(
        self,
        route: Route[Any],
        message: Any,
        context: Context[Any, Any, Any, Any],
        params: dict[str, str],
    ) -> None:
        if route.resolves:
            self._resolve(route, message, context.message)
            return
        reply = await route.call(message, context, params)
        if route.answer is not None and reply is not None:
            await self._answer(route, message, reply, context.message, params)

    def _resolve(self, route: Route[Any], message: Any, incoming: Incoming) -> None:
        """A reply: handed to the request waiting for it."""
        correlation = read(route.correlation, message, incoming.user_properties)
        if correlation is None and incoming.correlation_data is not None:
            correlation = incoming.correlation_data.decode("utf-8", "replace")
        if not self.requests.resolve(incoming.topic, correlation, message):
            logger.warning("reply on %s answers no waiting request: dropped", incoming.topic)

    async def _answer(
        self,
        route: Route[Any],
        request: Any,
        reply: Any,
        incoming: Incoming,
        params: dict[str, str],
    ) -> None:
        """Send a handler's reply where the requester listens: the request's MQTT 5 Response
        Topic when it has one."""
        rule = route.answer
        assert rule is not None
        properties = answer(
            request, incoming.user_properties, reply, rule.request_id, rule.reply_id
        )
        topic: Any = incoming.response_topic
        if not topic and rule.address is not None:
            topic = read(rule.address, request, incoming.user_properties)
            if not isinstance(topic, str) or not topic or any(ch in topic for ch in "+#\x00"):
                raise ValueError(f"the request names no usable reply topic: {topic!r}")
        elif not topic and rule.topic is not None:
            topic = rule.topic.build({name: params[name] for name in rule.topic.params})
        await self.publisher.publish(
            topic,
            reply,
            qos=rule.qos,
            retain=False,
            properties=properties,
            correlation_data=incoming.correlation_data,
            channel=rule.channel,
        )

    def _reject_invalid(
        self, topic: str, channel: str, counts: ChannelCounts, exc: Exception
    ) -> Outcome:
        if isinstance(exc, UnicodeDecodeError):
            bad_json, kind, reason = False, "not UTF-8", exc.reason
            text = "rejected message on %r: not UTF-8 text: %s"
            args: tuple[Any, ...] = (topic, reason)
        else:
            assert isinstance(exc, ValidationError)
            bad_json, reason = _summary(exc)
            kind = "invalid JSON" if bad_json else "invalid payload"
            text = "rejected message on %r: %s: %s"
            args = (topic, kind, reason)
        why = "invalid_json" if bad_json else "invalid_payload"
        counts.rejected[why] += 1
        extra: dict[str, object] = {"topic": topic, "channel": channel}
        rejections.log(logging.WARNING, kind, text, *args, extra=extra)
        return Outcome(False, why)

    def dropped_while_reading(self, topic: str, size: int) -> None:
        """The runtime read past a message over the maximum packet size (from a broker that
        ignored it) without keeping it: counted as received and rejected like any other."""
        found = self._route(topic)
        channel = found[0].channel if found is not None else "(unknown)"
        self.metrics.channel(channel).received += 1
        self._reject_too_large(topic, size, channel)

    def _reject_unrouted(self, topic: str) -> Outcome:
        """No channel takes `topic`: either it has a channel's address but a parameter breaks
        its enum or pattern (invalid, counted on that channel), or no channel has its address."""
        broken = _broken_parameter(self.routes, topic)
        if broken is None:
            counts = self.metrics.channel("(unknown)")
            counts.received += 1
            counts.rejected["unknown_topic"] += 1
            rejections.log(
                logging.WARNING,
                "unknown topic",
                "dropped message on %r: no channel has this address",
                topic,
                extra={"topic": topic},
            )
            return Outcome(False, "unknown_topic")
        channel, problem = broken
        counts = self.metrics.channel(channel)
        counts.received += 1
        counts.rejected["invalid_parameter"] += 1
        rejections.log(
            logging.WARNING,
            "invalid parameter",
            "rejected message on %r: %s",
            topic,
            problem,
            extra={"topic": topic, "channel": channel},
        )
        return Outcome(False, "invalid_parameter")

    def _reject_too_large(self, topic: str, size: int, channel: str) -> Outcome:
        self.metrics.channel(channel).rejected["too_large"] += 1
        rejections.log(
            logging.WARNING,
            "too large",
            "rejected message on %r: %d bytes, more than MAX_PAYLOAD_BYTES=%d",
            topic,
            size,
            self.settings.max_payload_bytes,
            extra={"topic": topic, "channel": channel},
        )
        return Outcome(False, "too_large")

    def _route(self, topic: str) -> Found:
        """The route, parameters and counters of a topic, worked out once per topic."""
        try:
            return self._routes[topic]
        except KeyError:
            pass
        if len(self._routes) >= ROUTE_CACHE_SIZE:
            self._routes.clear()
        routed = route_for(self.routes, topic)
        found = None if routed is None else (*routed, self.metrics.channel(routed[0].channel))
        self._routes[topic] = found
        return found

    def _background_done(self, task: asyncio.Task[Any]) -> None:
        self._background.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("background task %s failed", task.get_name(), exc_info=task.exception())

    async def stop_background(self) -> None:
        """Cancel background tasks, again if one swallowed its cancellation (a library's
        `asyncio.wait_for` can, before Python 3.12), giving up after the shutdown timeout."""
        pending = set(self._background)
        deadline = asyncio.get_running_loop().time() + self.settings.shutdown_timeout
        while pending and asyncio.get_running_loop().time() < deadline:
            for task in pending:
                task.cancel()
            _, pending = await asyncio.wait(pending, timeout=0.2)
        for task in pending:
            logger.error("background task %s ignored cancellation", task.get_name())
