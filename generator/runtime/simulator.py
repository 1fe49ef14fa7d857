"""The simulator: plays the devices' side of a document against a broker.

Publishes valid messages to every channel the service receives on: the document's examples where
they are valid, otherwise payloads generated from the models (polyfactory, honouring ranges,
patterns, formats, enums and required fields), on topics whose parameters honour their enum and
pattern, one topic per device. Payloads are generated once into a pool per channel, so the run
itself is a load generator: many messages in flight per connection, over `--connections`, at
`--rate` or as fast as the broker takes them. Listens to what the service sends and prints a
summary with the rate achieved. `--seed` makes runs repeatable. The generated `simulate` module
lists the document's channels.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

from polyfactory.factories.base import BaseFactory
from polyfactory.factories.pydantic_factory import ModelFactory
from polyfactory.value_generators.regex import RegexFactory
from pydantic import AwareDatetime, BaseModel

from .client import MqttClient
from .load import publish_all
from .message import Incoming, Outgoing
from .publishing import encode, user_properties
from .settings import ServiceSettings, client_config
from .topics import TopicTemplate


@dataclass(frozen=True)
class Source:
    """A channel the service receives on, seen from the devices."""

    channel: str
    topic: TopicTemplate
    qos: int
    models: tuple[type[BaseModel], ...] = ()  # none: the payload is raw bytes or text
    examples: tuple[str, ...] = ()  # JSON examples from the document that match their schema
    headers: type[BaseModel] | None = None


EPOCH = datetime(2020, 1, 1, tzinfo=UTC)
POOL = 101  # payloads generated per channel; a prime, so most fleet sizes are prime to it


class _Factory(ModelFactory[Any]):
    """polyfactory with dates drawn from the seeded random, not from the clock (its own draw
    between a fixed start and now), so one seed gives the same messages whenever it runs."""

    __is_base_factory__ = True

    @classmethod
    def get_provider_map(cls) -> dict[Any, Callable[[], Any]]:
        providers = super().get_provider_map()

        def moment() -> datetime:
            return EPOCH + timedelta(seconds=cls.__random__.randrange(10**9))

        providers[datetime] = lambda: moment().replace(tzinfo=None)
        providers[AwareDatetime] = moment
        providers[date] = lambda: moment().date()
        return providers


class Generator:
    """Deterministic topics and payloads for the given seed."""

    def __init__(self, seed: int, devices: int) -> None:
        self._random = random.Random(seed)
        self._regex = RegexFactory(random=self._random)
        self._devices = max(1, devices)
        self._factories: dict[type[BaseModel], type[BaseFactory[Any]]] = {}
        self._seed = seed

    def topics(self, source: Source) -> list[str]:
        """One topic per device; a parameter with an enum cycles through its values."""
        values: dict[str, list[str]] = {}
        for name in source.topic.params:
            rule = source.topic.rules.get(name)
            if rule is not None and rule.enum:
                values[name] = [rule.enum[n % len(rule.enum)] for n in range(self._devices)]
            elif rule is not None and rule.pattern:
                values[name] = [self._matching(rule.pattern) for _ in range(self._devices)]
            else:
                values[name] = [f"device-{n}" for n in range(self._devices)]
        return [
            source.topic.build({name: found[n] for name, found in values.items()})
            for n in range(self._devices)
        ]

    def payloads(self, source: Source, size: int) -> list[bytes]:
        """The document's examples, then payloads generated from the models, `size` in all."""
        if not source.models:
            return [f"simulated {n}".encode() for n in range(size)]
        found = [example.encode("utf-8") for example in source.examples[:size]]
        for n in range(size - len(found)):
            model = source.models[n % len(source.models)]
            found.append(encode(self._factory(model).build()))
        return found

    def headers(self, source: Source, size: int) -> list[tuple[tuple[str, str], ...]]:
        if source.headers is None:
            return [()]
        factory = self._factory(source.headers)
        return [tuple((user_properties(factory.build()) or {}).items()) for _ in range(size)]

    def _factory(self, model: type[BaseModel]) -> type[BaseFactory[Any]]:
        if model not in self._factories:
            factory = _Factory.create_factory(model)
            factory.seed_random(self._seed)
            self._factories[model] = factory
        return self._factories[model]

    def _matching(self, pattern: str) -> str:
        for _ in range(100):
            value = str(self._regex(pattern))
            if value and not any(ch in value for ch in "/+#\x00"):
                return value
        raise ValueError(f"cannot make a topic level that matches {pattern!r}")


def pool_size(messages: int, devices: int) -> int:
    """How many payloads to generate for a channel: at most POOL (generating one takes
    milliseconds), and prime to the number of devices, so that device and payload repeat
    together only after devices x pool messages (a store keyed by device and time sees new rows)."""
    size = max(1, min(messages, POOL))
    while math.gcd(size, max(1, devices)) != 1:
        size += 1
    return size


Fleet = tuple[Source, list[str], list[bytes], list[tuple[tuple[str, str], ...]]]


class Simulator:
    """The document's side of the devices: the channels to send on (`sources`) and those the
    service sends on (`sent`, by channel), where the simulator listens."""

    def __init__(
        self, sources: tuple[Source, ...], sent: tuple[tuple[str, TopicTemplate], ...]
    ) -> None:
        self.sources = sources
        self.sent = sent

    def plan(
        self, count: int, seed: int, devices: int, channel: str | None, qos: int | None = None
    ) -> Iterator[tuple[str, Outgoing]]:
        """The messages to send: (channel, message), round robin over the channels, each
        channel's devices in turn. `qos` overrides the document's."""
        return plan(self.sources, count, seed, devices, channel, qos)

    async def run(
        self,
        settings: ServiceSettings,
        count: int,
        rate: float,
        devices: int,
        seed: int,
        channel: str | None,
        qos: int | None = None,
        connections: int = 1,
    ) -> int:
        """Send, listen, report; 0 when every message was handed to the broker."""
        messages = self.plan(count, seed, devices, channel, qos)
        return await simulate(settings, self.sent, messages, rate, seed, connections)


def plan(
    sources_: tuple[Source, ...],
    count: int,
    seed: int,
    devices: int,
    channel: str | None,
    qos: int | None = None,
) -> Iterator[tuple[str, Outgoing]]:
    """The messages to send: (channel, message), round robin over the channels, each channel's
    devices in turn. `qos` overrides the document's."""
    sources = [s for s in sources_ if channel is None or s.channel == channel]
    if not sources:
        known = ", ".join(s.channel for s in sources_) or "none"
        raise SystemExit(f"no channel {channel!r} to simulate (channels: {known})")
    generator = Generator(seed, devices)
    size = pool_size(-(-count // len(sources)), devices)
    fleets = [
        (s, generator.topics(s), generator.payloads(s, size), generator.headers(s, size))
        for s in sources
    ]
    return _messages(count, fleets, qos)


def _messages(count: int, fleets: list[Fleet], qos: int | None) -> Iterator[tuple[str, Outgoing]]:
    for index in range(count):
        source, addresses, payloads, headers = fleets[index % len(fleets)]
        n = index // len(fleets)
        message = Outgoing(
            addresses[n % len(addresses)],
            payloads[n % len(payloads)],
            source.qos if qos is None else qos,
            False,
            headers[n % len(headers)],
        )
        yield source.channel, message


async def simulate(
    settings: ServiceSettings,
    sent: tuple[tuple[str, TopicTemplate], ...],
    messages: Iterator[tuple[str, Outgoing]],
    rate: float,
    seed: int,
    connections: int,
) -> int:
    received: Counter[str] = Counter()

    async def listen(message: Incoming) -> None:
        name = next((c for c, t in sent if t.match(message.topic) is not None), "(other)")
        received[name] += 1

    config = client_config(settings, ())
    filters = [(f, 1) for f in sorted({t.topic_filter for _, t in sent})]
    clients = [
        MqttClient(
            replace(config, client_id=f"{config.client_id}-simulator-{seed}-{n}", clean_start=True),
            filters if n == 0 else [],
            listen,
        )
        for n in range(max(1, connections))
    ]
    serving = [asyncio.create_task(client.serve()) for client in clients]
    try:
        tally = await publish_all(clients, messages, rate=rate)
        await asyncio.sleep(1.0)  # replies still on their way
    finally:
        for client in clients:
            await client.stop(1)
        await asyncio.gather(*serving)
    for error in tally.errors:
        print(error)
    summary = {
        "sent": dict(tally.sent),
        "failed": tally.failed,
        "received": dict(received),
        "rate": round(tally.rate, 1),
    }
    print(json.dumps(summary))
    return 1 if tally.failed else 0
