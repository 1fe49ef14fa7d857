"""One family of errors, so callers catch `MqttError` and never a library's own exceptions."""

from __future__ import annotations


class MqttError(Exception):
    """Base of every error the runtime raises."""


class ConnectError(MqttError):
    """A connection attempt failed; the message says why in one line."""


class ConnectionLost(MqttError):
    """An established connection ended."""


class SessionTakenOver(ConnectionLost):
    """The broker closed the connection because another client connected with the same client
    id (MQTT 5 reason code 0x8E): two instances sharing one id push each other off."""


class PublishError(MqttError):
    """A message was not handed to the broker, or the broker refused it."""
