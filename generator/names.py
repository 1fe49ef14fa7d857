"""Python names derived from spec names: computed once, deterministic, never invalid.

Every name the generator composes from the document comes from here, so the rules live in one
place: split words on case changes and punctuation, never start with a digit, never a keyword,
never shadow a builtin or what the target module binds itself. The field and enum member names
inside `models.py` too: the models stage hands them to datamodel-code-generator and checks it
used them (model_names.py).
"""

from __future__ import annotations

import ast
import builtins
import functools
import hashlib
import json
import keyword
import re
import sys
import unicodedata
from pathlib import Path
from typing import Any, TypeVar

_WORD = re.compile(r"[A-Z]+(?=[A-Z][a-z0-9])|[A-Z]?[a-z0-9]+|[A-Z]+|[^\W_]+", re.UNICODE)
# Keywords, builtins, and the names pycodestyle calls ambiguous (E741: `l`, `I`, `O`; a field's
# snake_case can only be `l`), which would fail the generated project's own `ruff check`.
_RESERVED = (
    frozenset(keyword.kwlist)
    | frozenset(keyword.softkwlist)
    | frozenset(dir(builtins))
    | frozenset({"l", "I", "O"})
)
# Names generated code uses for itself; a spec name equal to one gets a trailing underscore.
_GENERATED = frozenset({"self", "cls", "context", "ctx", "message", "payload", "topic", "logger"})
# What `routes.py` binds at its top level beside the handler module of each channel: the helpers it
# imports from `_runtime.routing` and `_runtime.topics` (render imports exactly these, no others),
# the rest of its imports, and its own tables. A test checks every top-level name of a generated
# `routes.py` is one of these or a channel's module.
ROUTING_HELPERS = (
    "Answer",
    "Handler",
    "Route",
    "by_tag",
    "no_handler",
    "raw_bytes",
    "subscriptions_of",
    "utf8_text",
)
TOPIC_HELPERS = ("one_of",)
ROUTES_GLOBALS = frozenset(ROUTING_HELPERS + TOPIC_HELPERS) | frozenset(
    {"topics", "Mapping", "Any", "Annotated", "Field", "TypeAdapter", "Context", "Route"}
    | {"ROUTES", "SUBSCRIPTIONS"}
)
# Reserved by earlier releases (helpers and modules since moved or renamed): kept, so a channel's
# module (and the user's handler file) keeps its name across versions.
_KEPT_MODULE_NAMES = frozenset(
    {"json", "logging", "answer", "read", "subscriptions", "routes", "models", "service"}
    | {"settings", "context", "publisher"}
)
# Channel names become handler modules imported into `routes.py`: none may be named like what it
# binds itself. Parameter names become keyword arguments of handlers and send methods (beside
# their own arguments and locals: a test checks those of the kitchen-sink golden record).
MODULE_NAMES = ROUTES_GLOBALS | _KEPT_MODULE_NAMES


@functools.cache
def runtime_attributes(module: str, cls: str) -> frozenset[str]:
    """What class `cls` of the runtime's `module` defines (methods, class attributes, slots),
    read from its source: the generator never imports the runtime (asyncio, the MQTT library)."""
    source = Path(__file__).with_name("runtime") / f"{module}.py"
    found: set[str] = set()
    for node in ast.parse(source.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.ClassDef) and node.name == cls:
            for item in node.body:
                found |= _defines(item)
    return frozenset(found)


def _defines(item: ast.stmt) -> set[str]:
    if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef):
        return {item.name}
    if isinstance(item, ast.AnnAssign):
        return {item.target.id} if isinstance(item.target, ast.Name) else set()
    if not isinstance(item, ast.Assign):
        return set()
    found = {target.id for target in item.targets if isinstance(target, ast.Name)}
    if "__slots__" in found and isinstance(item.value, ast.Tuple | ast.List):
        found |= {str(e.value) for e in item.value.elts if isinstance(e, ast.Constant)}
    return found


# The public methods of the runtime's PublisherBase (`publish`, `request`), which the generated
# Publisher subclasses: a send operation named like one gets a suffix.
PUBLISHER_METHODS = frozenset(
    name for name in runtime_attributes("publishing", "PublisherBase") if not name.startswith("_")
)
PARAMETER_NAMES = frozenset(
    {"headers", "timeout", "params", "properties", "correlation", "reply", "reply_topic", "send"}
)
# Names beside an enum parameter's named type (`Room = Literal[...]`): `topics.py` defines it and
# handler stubs and the publisher import it next to these; a type named like one gets a number.
# A test checks every class-like name those modules bind in the golden records is here.
TOPIC_TYPE_NAMES = frozenset(
    {"Context", "ParamRule", "TopicError", "TopicTemplate", "Publisher", "PublishError"}
    | {"PublisherBase", "RequestTimeout", "Settings", "State", "AppSettings", "Mapping"}
    | {"AbstractAsyncContextManager", "Route", "Handler", "Answer"}
)
# What a models module may import (datamodel-code-generator's imports under the models stage's
# options: the types of the string formats, enums, constraints) and `Model`, which the library
# treats specially: a class named like one of these (or like a builtin) gets a `Model` suffix
# instead. A test models every format and checks each import is here.
MODELS_IMPORTS = frozenset(
    {"Annotated", "Any", "ClassVar", "Literal", "Optional", "Union", "Dict", "List", "TypeAlias"}
    | {"BaseModel", "RootModel", "ConfigDict", "Field", "WireModel", "Model"}
    | {"Enum", "IntEnum", "StrEnum", "Decimal", "Path", "ULID"}
    | {"UUID", "UUID1", "UUID3", "UUID4", "UUID5", "AnyUrl", "EmailStr", "SecretStr", "Base64Str"}
    | {"IPv4Address", "IPv6Address", "IPv4Network", "IPv6Network", "AwareDatetime"}
    | {"NaiveDatetime", "date", "datetime", "time", "timedelta"}
)
_CLASS_RESERVED = _RESERVED | MODELS_IMPORTS


@functools.lru_cache(maxsize=65536)  # a big document names `deviceId` a thousand times
def _words(text: str) -> tuple[str, ...]:
    return tuple(words(text))


def words(text: str) -> list[str]:
    """Split `deviceId`, `device_id`, `Device-ID`, `devices/{id}.x` into lower-case words.

    A lone capital after a short capitalised word joins it, so `IoT` stays one word.
    """
    found: list[str] = []
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    for word in _WORD.findall(ascii_text):
        previous = found[-1] if found else ""
        if len(word) == 1 and word.isupper() and len(previous) == 2 and previous[0].isupper():
            found[-1] = previous + word
        else:
            found.append(word)
    return [w.lower() for w in found]


MAX_LENGTH = 60


def _bounded(name: str, source: str, separator: str = "_") -> str:
    """Long names (file names too) are cut, with a hash of the full text to stay unique."""
    if len(name) <= MAX_LENGTH:
        return name
    digest = hashlib.sha256(source.encode()).hexdigest()[:8]
    return f"{name[: MAX_LENGTH - 9].rstrip('_')}{separator}{digest}"


def _safe_identifier(name: str, fallback: str) -> str:
    name = "".join(ch if (ch.isalnum() or ch == "_") else "_" for ch in name) or fallback
    if not name.isidentifier():
        name = f"{fallback}_{name}"
    if not name.isidentifier():
        name = fallback
    return name


def _joined(text: str, fallback: str) -> str:
    name = "_".join(_words(text))
    if name[:1].isdigit():
        name = f"{fallback}_{name}"
    return _safe_identifier(_bounded(name, text), fallback)


def snake(text: str, *, fallback: str = "value", reserved: frozenset[str] = frozenset()) -> str:
    """`deviceTelemetry` -> `device_telemetry`; keywords, builtins and the `reserved` names of the
    target namespace get a trailing `_`."""
    name = _joined(text, fallback)
    if name in _RESERVED or name in _GENERATED or name in reserved:
        name += "_"
    return name


def pascal(text: str, *, fallback: str = "Model") -> str:
    """`telemetry data` -> `TelemetryData`; a leading digit gets the fallback in front."""
    parts = _words(text)
    name = "".join(p[:1].upper() + p[1:] for p in parts)
    if not name or name[:1].isdigit():
        name = fallback + name
    name = _safe_identifier(_bounded(name, text, separator="H"), fallback)
    if name in _CLASS_RESERVED:
        name += "Model"
    return name


def unique(name: str, taken: set[str]) -> str:
    """`name`, or `name2`, `name3`, ... : the first not in `taken`, which is updated."""
    candidate, counter = name, 2
    while candidate in taken:
        candidate = f"{name}{counter}"
        counter += 1
    taken.add(candidate)
    return candidate


# The generated project runs with its own folder first on sys.path (`python -m <package>`, its
# tests), so a package named like a module it imports would be imported in that module's place:
# the standard library, what the project depends on, and its `tests` folder beside the package.
DEPENDENCY_MODULES = frozenset(
    {"pydantic", "pydantic_core", "pydantic_settings", "annotated_types", "typing_extensions"}
    | {"typing_inspection", "dotenv", "email_validator", "dns", "idna", "mqtt5", "paho"}
    | {"prometheus_client", "polyfactory", "faker", "sqlalchemy", "aiosqlite", "asyncpg"}
    | {"greenlet", "pytest", "_pytest", "pluggy", "iniconfig", "mypy", "ruff", "black"}
    | {"setuptools", "pkg_resources", "_distutils_hack", "pip", "wheel"}
)
# Gone from the standard library in 3.12 and 3.13 but still in 3.11's, which generated projects
# support: reserved whatever Python runs the generator, so a name never depends on it.
_REMOVED_STDLIB = frozenset(
    {"distutils", "asynchat", "asyncore", "imp", "smtpd", "aifc", "audioop", "cgi", "cgitb"}
    | {"chunk", "crypt", "imghdr", "mailcap", "msilib", "nis", "nntplib", "ossaudiodev", "pipes"}
    | {"sndhdr", "spwd", "sunau", "telnetlib", "uu", "xdrlib", "lib2to3"}
)
_STDLIB = frozenset(sys.stdlib_module_names) | _REMOVED_STDLIB
_PACKAGE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def package_problem(name: str) -> str | None:
    """Why `name` cannot be the generated package (one importable name that shadows nothing the
    project imports), or None when it can."""
    if "." in name:
        return f"the project has one top-level package, not a dotted name: try {snake(name)!r}"
    if not _PACKAGE.fullmatch(name):
        return "not a Python identifier (ASCII letters, digits and _, not starting with a digit)"
    if keyword.iskeyword(name):
        return "a Python keyword"
    if name in _STDLIB:
        return f"it would shadow the standard library's {name}"
    if name in DEPENDENCY_MODULES:
        return f"it would shadow {name}, which the generated project imports"
    if name == "tests":
        return "it would be the project's tests folder"
    return None


def package_from_title(title: str) -> tuple[str, str | None]:
    """The package of a document titled `title` (snake_case, `_service` added when that would
    shadow a module), and why it was adjusted (None when it was not)."""
    name = snake(title, fallback="service")
    problem = package_problem(name)
    return (name, None) if problem is None else (f"{name}_service", problem)


def type_alias(text: str, taken: set[str]) -> str:
    """A named type for `text` (`room` -> `Room`), not in `taken`, which is updated."""
    return unique(pascal(text, fallback="Param"), taken)


# Composed names: each kind of name the output holds is made by one function here, so the rules
# (and the namespace each name must not clash in) are read in one place.


def channel_module(key: str, taken: set[str]) -> tuple[str, str]:
    """A channel's module (its handler file, route and topic constant are named after it),
    unique in `taken` (updated), and the name it wanted."""
    wanted = snake(key, fallback="channel", reserved=MODULE_NAMES)
    return unique(wanted, taken), wanted


def channel_class(module: str) -> str:
    """The channel's class-name stem, for the classes of its messages."""
    return pascal(module, fallback="Channel")


def topic_constant(module: str) -> str:
    """`topics.DEVICE_TELEMETRY`; param_types keeps enum type names clear of these."""
    return module.upper()


def route_function(module: str) -> str:
    """`routes.py`'s adapter to the channel's `handle` (private: the handler module owns
    `module`)."""
    return f"_{module}"


def parameter(name: str) -> str:
    """A channel parameter as a keyword argument of the handler and the send methods."""
    return snake(name, fallback="param", reserved=PARAMETER_NAMES)


def operation(key: str, send: bool, taken: set[str]) -> str:
    """A send operation's publisher method (unique in `taken`, updated) or a receive
    operation's name."""
    name = snake(key, fallback="operation")
    return unique(name, taken) if send else name


def unnamed_operation(module: str, send: bool, taken: set[str]) -> str:
    """A 2.x operation without an operationId: `send_<channel>` or `on_<channel>`."""
    name = f"{'send' if send else 'on'}_{module}"
    return unique(name, taken) if send else name


def sender(send: str, message: str, taken: set[str]) -> str:
    """`send_x_<message>`: one method for each of an operation's several messages."""
    return unique(f"{send}_{snake(message, fallback='message')}", taken)


def request(send: str, taken: set[str]) -> str:
    """`<send>_and_wait`: the method that sends and awaits the reply."""
    return unique(f"{send}_and_wait", taken)


def payload_class(message: str) -> str:
    return pascal(f"{message} payload", fallback="Message")


def headers_class(message: str) -> str:
    return pascal(f"{message} headers", fallback="Message")


def message_class(channel_class: str, field: str) -> str:
    """A 2.x channel's unnamed message: `<Channel>PublishMessage`, `<Channel>SubscribeMessage`."""
    return f"{channel_class}{field.title()}Message"


def nested_class(parent: str, part: str, *, fixed: bool = False) -> str:
    """The class of a schema inside `parent`'s: `TelemetrySensors` for property `sensors`;
    a `fixed` part (`Item`, `OneOf2`) is used as given. A class the models module imports
    (`Email` + `Str`) gets a `Model` suffix."""
    name = parent + (part if fixed else pascal(part, fallback="Field"))
    return name + "Model" if name in _CLASS_RESERVED else name


def distribution(package: str) -> str:
    """The project's distribution name in `pyproject.toml`."""
    return package.replace("_", "-")


# pydantic's BaseModel attributes (its v1 API, deprecated, is still there) and its metaclass's
# (`mro`, `register`): a field named like one would shadow it. A test checks this is every
# public attribute a model class has.
BASEMODEL_ATTRIBUTES = frozenset(
    {"mro", "register", "construct", "copy", "dict", "from_orm", "json", "parse_file"}
    | {"parse_obj", "parse_raw", "schema", "schema_json", "update_forward_refs", "validate"}
    | {"model_computed_fields", "model_config", "model_construct", "model_copy", "model_dump"}
    | {"model_dump_json", "model_extra", "model_fields", "model_fields_set", "model_json_schema"}
    | {"model_parametrized_name", "model_post_init", "model_rebuild", "model_validate"}
    | {"model_validate_json", "model_validate_strings"}
)
# Builtins a field's annotation may name (`list[str]`): a field named like one would hide it from
# the annotations of the fields after it.
_ANNOTATION_BUILTINS = frozenset(
    {"bool", "bytes", "dict", "float", "frozenset", "int", "list", "set", "str", "tuple"}
)
_FIELD_RESERVED = (
    frozenset(keyword.kwlist) | BASEMODEL_ATTRIBUTES | _ANNOTATION_BUILTINS | frozenset({"l"})
)


def _field(prop: str) -> str:
    name = _joined(prop, "field")
    return f"{name}_" if name in _FIELD_RESERVED else name


def field_names(properties: list[str], taken: frozenset[str] = frozenset()) -> dict[str, str]:
    """The fields of a model with these properties (wire names): snake_case, never a keyword,
    a BaseModel attribute or a builtin an annotation names (other builtins, `id`, `type`, are
    fine as attributes); of two properties with one name, the first in the document keeps it
    and the next gets `_1` (`aB`, `a_b`: `a_b`, `a_b_1`), as datamodel-code-generator numbered
    them before we decided: a project regenerated keeps what each name reads. `taken`: the
    names of the fields the model inherits, which its own are numbered after."""
    wanted = {prop: _field(prop) for prop in properties}
    return _distinct(wanted, list(properties), taken, start=1)


_ENUM_FALLBACK = "VALUE"


def _member(value: Any) -> str:
    number = isinstance(value, int | float) and not isinstance(value, bool)
    text = value if isinstance(value, str) else json.dumps(value)
    name = "_".join(_words(text.replace("-", " minus ") if number else text))
    if not name:
        return _ENUM_FALLBACK if value != "" else "EMPTY"
    if number or name[0].isdigit():
        name = f"{_ENUM_FALLBACK}_{name}"
    return _safe_identifier(_bounded(name, text), _ENUM_FALLBACK).upper()


def enum_members(values: list[Any]) -> list[str]:
    """The members of an enum with these values, in order: UPPER_SNAKE_CASE of the value's
    words (`a-b` -> `A_B`, `1` -> `VALUE_1`, `-3` -> `VALUE_MINUS_3`, `null` -> `NULL`), a
    clash numbered in order (null last)."""
    keys = list(range(len(values)))
    wanted = {i: _member(values[i]) for i in keys}
    first = sorted(keys, key=lambda i: values[i] is None)
    found = _distinct(wanted, first)
    return [found[i] for i in keys]


_Key = TypeVar("_Key")


def _distinct(
    wanted: dict[_Key, str],
    order: list[_Key],
    given: frozenset[str] = frozenset(),
    start: int = 2,
) -> dict[_Key, str]:
    """Each key's wanted name, or (when an earlier key in `order` has it, or it is `given`)
    the name with `_<start>`, and on: every wanted name is given out before any numbered one,
    so a numbered name never takes one that is wanted."""
    found: dict[_Key, str] = {}
    taken: set[str] = set(given)
    for key in order:
        if wanted[key] not in taken:
            found[key] = wanted[key]
            taken.add(wanted[key])
    for key in order:
        if key not in found:
            counter = start
            while f"{wanted[key]}_{counter}" in taken:
                counter += 1
            found[key] = f"{wanted[key]}_{counter}"
            taken.add(found[key])
    return {key: found[key] for key in wanted}
