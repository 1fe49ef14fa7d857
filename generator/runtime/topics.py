"""Topic templates: an address with parameters, its MQTT subscription filter, exact matching of
incoming topics and safe building of outgoing ones. The generated `topics` module holds one per
channel."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TypeVar

_PARAM = re.compile(r"\{([^{}]+)\}")
_FORBIDDEN = ("/", "+", "#", "\x00")
V = TypeVar("V", bound=str)


class TopicError(ValueError):
    """A parameter value would change the topic's structure, or breaks the parameter's rules."""


def check_topic(topic: str) -> None:
    """A topic given whole (for a channel without an address) must be a plain topic name."""
    if not topic or any(ch in topic for ch in ("+", "#", "\x00")):
        raise TopicError(f"not a topic one can publish to: {topic!r}")


def one_of(value: str, choices: tuple[V, ...]) -> V:
    """A matched parameter's value as its enum's type (the `Literal` handlers are given)."""
    for choice in choices:
        if value == choice:
            return choice
    raise TopicError(f"{value!r} is not one of {list(choices)!r}")


@dataclass(frozen=True)
class ParamRule:
    enum: tuple[str, ...] = ()
    pattern: str | None = None


@dataclass(frozen=True)
class TopicTemplate:
    """An address such as `devices/{deviceId}/telemetry`."""

    template: str
    topic_filter: str
    rules: Mapping[str, ParamRule] = field(default_factory=dict)
    _regex: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        parts: list[str] = []
        position = 0
        for match in _PARAM.finditer(self.template):
            parts.append(re.escape(self.template[position : match.start()]))
            parts.append("([^/+#\x00]+)")
            position = match.end()
        parts.append(re.escape(self.template[position:]))
        object.__setattr__(self, "_regex", re.compile("".join(parts)))

    @property
    def params(self) -> tuple[str, ...]:
        return tuple(_PARAM.findall(self.template))

    def match(self, topic: str) -> dict[str, str] | None:
        """The parameter values if `topic` is exactly this address, else None."""
        found = self._regex.fullmatch(topic)
        if found is None:
            return None
        values = dict(zip(self.params, found.groups(), strict=True))
        for name, value in values.items():
            if self._broken_rule(name, value):
                return None
        return values

    def explain(self, topic: str) -> str | None:
        """Why a topic shaped like this address is not one of its topics: the parameter whose
        enum or pattern it breaks. None when it has another shape, or is one."""
        found = self._regex.fullmatch(topic)
        if found is None:
            return None
        for name, value in zip(self.params, found.groups(), strict=True):
            problem = self._broken_rule(name, value)
            if problem:
                return f"parameter {name!r} of {self.template!r}: {problem}"
        return None

    def build(self, values: Mapping[str, str]) -> str:
        """The concrete topic; refuses values that are empty, contain `/ + #` or NUL, or break
        the parameter's enum or pattern."""
        for name in self.params:
            value = values[name]
            if not value:
                raise TopicError(f"parameter {name!r} of {self.template!r} must not be empty")
            if any(ch in value for ch in _FORBIDDEN):
                raise TopicError(
                    f"parameter {name!r} must not contain '/', '+', '#' or NUL: {value!r}"
                )
            problem = self._broken_rule(name, value)
            if problem:
                raise TopicError(f"parameter {name!r} of {self.template!r}: {problem}")
        return _PARAM.sub(lambda m: values[m.group(1)], self.template)

    def _broken_rule(self, name: str, value: str) -> str | None:
        rule = self.rules.get(name)
        if rule is None:
            return None
        if rule.enum and value not in rule.enum:
            return f"{value!r} is not one of {list(rule.enum)!r}"
        if rule.pattern is not None and re.search(rule.pattern, value) is None:
            return f"{value!r} does not match {rule.pattern!r}"
        return None


def matches(topic_filter: str, topic: str) -> bool:
    """Whether an MQTT filter (with `+` and `#`) matches a topic."""
    wanted, levels = topic_filter.split("/"), topic.split("/")
    for index, part in enumerate(wanted):
        if part == "#":
            return True
        if index >= len(levels) or part not in ("+", levels[index]):
            return False
    return len(wanted) == len(levels)
