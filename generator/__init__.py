"""asyncapi-pygen: turn an AsyncAPI document into a typed asyncio MQTT service."""

__version__ = "0.1.0"
