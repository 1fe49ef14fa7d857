"""The settings every generated service has, and the runtime's view of them; the generated
`Settings` subclass sets the defaults the document's servers give (host, port, client id,
keep-alive, session, TLS, will)."""

from __future__ import annotations

import logging
import os
import socket
from typing import Literal, Self

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_core import PydanticCustomError
from pydantic_settings import BaseSettings, SettingsConfigDict

from .config import ClientConfig, TlsConfig, WillConfig
from .routing import Subscription

logger = logging.getLogger(__name__)
TLS_FILES = ("mqtt_ca_file", "mqtt_cert_file", "mqtt_key_file")


class ServiceSettings(BaseSettings):
    """Every setting is an environment variable (its name in upper case) or a line of `.env`;
    the docstring under each is its meaning, which README.md and .env.example show."""

    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        env_ignore_empty=True,
        extra="ignore",
        use_attribute_docstrings=True,
    )

    mqtt_host: str = "localhost"
    """Broker host."""
    mqtt_port: int = Field(default=1883, ge=1, le=65535)
    """Broker port."""
    mqtt_client_id: str = "asyncapi-service"
    """MQTT client identifier; `{hostname}` and `{pid}` are filled in. Keep it stable across
    restarts: the persistent session is found by it."""
    mqtt_shared_group: str = Field(default="", pattern=r"^[^/+#]*$")
    """Empty: off. Else every subscription becomes `$share/<group>/<filter>`: instances with
    the same group share the load (give each its own client id)."""
    mqtt_keep_alive: int = Field(default=60, ge=0)
    """Keep-alive interval, seconds."""
    mqtt_clean_session: bool | None = None
    """Empty: a persistent session when the service subscribes at QoS 1 or 2 (messages wait in
    the broker while the service is down), a clean one otherwise."""
    mqtt_session_expiry: int = Field(default=3600, ge=0)
    """Seconds the broker keeps the session after a disconnect (MQTT 5)."""
    mqtt_protocol: Literal["3.1.1", "5"] = "5"
    """`5`, or `3.1.1` for brokers without MQTT 5 (no headers or message properties)."""
    mqtt_transport: Literal["tcp", "websockets"] = "tcp"
    """`tcp`, or `websockets` for MQTT over WebSockets (the default for `ws`/`wss` servers;
    `MQTT_TLS` makes it `wss`)."""
    mqtt_ws_path: str = Field(default="/mqtt", pattern=r"^/")
    """The WebSocket endpoint's path (from the server's URL)."""
    mqtt_username: str | None = None
    """Broker user name."""
    mqtt_password: SecretStr | None = None
    """Broker password (never logged; a warning when sent without TLS)."""
    mqtt_tls: bool = False
    """Connect with TLS (the default for `mqtts`/`secure-mqtt`/`wss` servers); on whenever a
    CA, certificate or key file is set, and `false` beside one is refused at start."""
    mqtt_ca_file: str | None = None
    """CA certificate(s) to trust; empty: the system's."""
    mqtt_cert_file: str | None = None
    """Client certificate (with `MQTT_KEY_FILE`)."""
    mqtt_key_file: str | None = None
    """Client certificate's key."""
    mqtt_tls_insecure: bool = False
    """Never in production: accept any certificate from the broker (logged as a warning)."""
    mqtt_will_topic: str | None = None
    """Last will topic (empty: none): what the broker publishes if the service disappears
    without disconnecting."""
    mqtt_will_payload: str = ""
    """The last will's message."""
    mqtt_will_qos: int = Field(default=0, ge=0, le=2)
    """The last will's QoS."""
    mqtt_will_retain: bool = False
    """The last will's retain flag."""
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    """`DEBUG`, `INFO`, `WARNING`, `ERROR` or `CRITICAL`."""
    log_format: Literal["text", "json"] = "text"
    """`text`, or `json` (one object per line)."""
    server_host: str = "0.0.0.0"
    """Where the HTTP side listens."""
    server_port: int | None = Field(default=None, ge=0, le=65535)
    """Port of `/healthz`, `/readyz` and `/metrics`; empty: no HTTP side."""
    max_concurrent_handlers: int = Field(default=16, ge=1)
    """Topics handled at once; one topic's messages are always handled in order."""
    max_pending_messages: int = Field(default=4000, ge=1, le=65535)
    """Received messages held at most; at this mark the service stops taking more and the
    backlog stays in the broker."""
    max_pending_bytes: int = Field(default=16_777_216, ge=1)
    """The same mark in payload bytes: whichever comes first."""
    max_waiting_sends: int = Field(default=1000, ge=0)
    """Sends that may wait for a connection at once; more fail at once."""
    max_payload_bytes: int = Field(default=1_048_576, ge=0)
    """Larger payloads are rejected (logged, counted, acknowledged) before decoding; 0: no limit.
    Under MQTT 5 it also sets the Maximum Packet Size (plus 64 KiB): the broker keeps larger
    messages, and one sent anyway is dropped while read."""
    connect_timeout: float = Field(default=10.0, gt=0)
    """Seconds to wait for the broker to accept a connection."""
    reconnect_min_delay: float = Field(default=0.5, gt=0)
    """Reconnection backoff, seconds: doubles from this..."""
    reconnect_max_delay: float = Field(default=30.0, gt=0)
    """...up to this."""
    publish_timeout: float = Field(default=10.0, gt=0)
    """Seconds a send waits for a connection and the broker's acknowledgement, in all."""
    shutdown_timeout: float = Field(default=30.0, gt=0)
    """Seconds shutdown waits for running handlers."""

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("log_format", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _tls_files_mean_tls(self) -> Self:
        """A CA, certificate or key file only makes sense over TLS, so it switches TLS on: a
        forgotten MQTT_TLS never sends the password in clear. MQTT_TLS=false beside one is a
        contradiction, refused."""
        given = [name.upper() for name in TLS_FILES if getattr(self, name)]
        if given and not self.mqtt_tls:
            if "mqtt_tls" in self.model_fields_set:
                raise PydanticCustomError(
                    "tls_conflict",
                    "MQTT_TLS is false but {files} is set: remove one of them",
                    {"files": " and ".join(given)},
                )
            self.mqtt_tls = True
        return self


def client_config(
    settings: ServiceSettings, subscriptions: tuple[Subscription, ...]
) -> ClientConfig:
    """The runtime's view of the settings. A persistent session is the default as soon as the
    service subscribes at QoS 1 or 2, so what arrives while it is down waits in the broker."""
    clean = settings.mqtt_clean_session
    if clean is None:
        clean = not any(s.qos > 0 for s in subscriptions)
    s = settings
    tls = None
    if s.mqtt_tls:
        tls = TlsConfig(s.mqtt_ca_file, s.mqtt_cert_file, s.mqtt_key_file, s.mqtt_tls_insecure)
    will = None
    if s.mqtt_will_topic:
        payload = s.mqtt_will_payload.encode("utf-8")
        will = WillConfig(s.mqtt_will_topic, payload, s.mqtt_will_qos, s.mqtt_will_retain)
    return ClientConfig(
        host=s.mqtt_host,
        port=s.mqtt_port,
        client_id=client_id(s.mqtt_client_id),
        username=s.mqtt_username,
        password=s.mqtt_password.get_secret_value() if s.mqtt_password is not None else None,
        protocol=s.mqtt_protocol,
        transport=s.mqtt_transport,
        ws_path=s.mqtt_ws_path,
        keep_alive=s.mqtt_keep_alive,
        clean_start=clean,
        session_expiry=s.mqtt_session_expiry,
        tls=tls,
        will=will,
        max_pending=s.max_pending_messages,
        max_pending_bytes=s.max_pending_bytes,
        max_payload_bytes=s.max_payload_bytes,
        max_waiting_sends=s.max_waiting_sends,
        connect_timeout=s.connect_timeout,
        publish_timeout=s.publish_timeout,
        reconnect_min_delay=s.reconnect_min_delay,
        reconnect_max_delay=s.reconnect_max_delay,
    )


def client_id(pattern: str) -> str:
    """`{hostname}` and `{pid}` filled in: one pattern for every instance of a fleet. Keep it
    stable across restarts (`{hostname}` in a StatefulSet) so the persistent session is found."""
    return pattern.replace("{hostname}", socket.gethostname()).replace("{pid}", str(os.getpid()))


def subscriptions(
    settings: ServiceSettings, wanted: tuple[Subscription, ...]
) -> list[tuple[str, int]]:
    """What to subscribe to; with MQTT_SHARED_GROUP the broker spreads each shareable filter's
    messages over the group's instances (`$share/<group>/<filter>`)."""
    group = settings.mqtt_shared_group
    return [
        (f"$share/{group}/{s.topic_filter}" if group and s.shared else s.topic_filter, s.qos)
        for s in wanted
    ]


def warn_about(config: ClientConfig, wanted: tuple[Subscription, ...]) -> None:
    """Say at start-up what would otherwise only show as lost messages or leaked secrets."""
    if config.clean_start and any(s.qos > 0 for s in wanted):
        logger.warning(
            "MQTT_CLEAN_SESSION is on: QoS 1/2 messages sent while the service is down are lost"
        )
    if config.password is not None and config.tls is None:
        logger.warning("MQTT_PASSWORD is sent without TLS (set MQTT_TLS=true)")
    if config.tls is not None and config.tls.insecure:
        logger.warning("MQTT_TLS_INSECURE is on: the broker's certificate is NOT checked")
