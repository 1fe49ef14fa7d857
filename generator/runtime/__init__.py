"""The MQTT runtime of a generated service, copied verbatim into it as `<package>._runtime`.

Nothing here depends on the AsyncAPI document. Imports are relative, so the package works under
any name; `VERSION` says which runtime a project carries.
"""

from . import http
from .client import MqttClient
from .config import ClientConfig, TlsConfig, WillConfig
from .errors import ConnectError, ConnectionLost, MqttError, PublishError
from .message import Incoming, Outgoing, check_topic
from .ratelimit import RateLimitedLog

VERSION = "2.0"

__all__ = [
    "VERSION",
    "ClientConfig",
    "ConnectError",
    "ConnectionLost",
    "Incoming",
    "MqttClient",
    "MqttError",
    "Outgoing",
    "PublishError",
    "RateLimitedLog",
    "TlsConfig",
    "WillConfig",
    "check_topic",
    "http",
]
