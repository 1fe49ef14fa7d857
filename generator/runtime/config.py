"""What the runtime needs to know, as plain values: the service maps its settings onto these."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from typing import Literal

from .errors import ConnectError


@dataclass(frozen=True)
class TlsConfig:
    """TLS towards the broker. Without `ca_file` the system's trusted certificates are used."""

    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    insecure: bool = False

    def context(self) -> ssl.SSLContext:
        try:
            context = ssl.create_default_context(cafile=self.ca_file)
            if self.cert_file:
                context.load_cert_chain(self.cert_file, self.key_file)
        except (OSError, ssl.SSLError) as exc:
            raise ConnectError(f"cannot load the TLS files: {exc}") from None
        if self.insecure:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context


@dataclass(frozen=True)
class WillConfig:
    topic: str
    payload: bytes = b""
    qos: int = 0
    retain: bool = False


PACKET_HEADROOM = 64 * 1024  # the topic, properties and headers around the largest payload
MQTT_MAX_PACKET = 268_435_460


@dataclass(frozen=True)
class ClientConfig:
    host: str = "localhost"
    port: int = 1883
    client_id: str = ""
    username: str | None = None
    password: str | None = None
    protocol: Literal["5", "3.1.1"] = "5"
    transport: Literal["tcp", "websockets"] = "tcp"
    ws_path: str = "/mqtt"  # the HTTP path of the WebSocket endpoint
    keep_alive: int = 60
    clean_start: bool = False
    session_expiry: int = 3600  # seconds the broker keeps a persistent session (MQTT 5)
    tls: TlsConfig | None = None
    will: WillConfig | None = None
    max_pending: int = 1000
    max_pending_bytes: int = 16 << 20  # payload bytes of received messages held for handling
    max_payload_bytes: int = 0  # the largest payload the service takes; 0: no limit
    connect_timeout: float = 10.0
    publish_timeout: float = 10.0
    max_waiting_sends: int = 1000  # sends waiting for a connection at once; more fail at once
    reconnect_min_delay: float = 0.5
    reconnect_max_delay: float = 30.0

    @property
    def max_packet_size(self) -> int | None:
        """What CONNECT announces (MQTT 5), so the broker never sends us a message we would
        only reject: the largest payload plus room for the rest; None without a payload limit."""
        if not self.max_payload_bytes:
            return None
        return min(self.max_payload_bytes + PACKET_HEADROOM, MQTT_MAX_PACKET)

    @property
    def persistent(self) -> bool:
        """Does the broker keep the session after a disconnect (so sends can be resumed)?"""
        return not self.clean_start and (self.protocol == "3.1.1" or self.session_expiry > 0)

    @property
    def where(self) -> str:
        user = f"{self.username}@" if self.username else ""
        scheme = "ws" if self.transport == "websockets" else "mqtt"
        path = self.ws_path if self.transport == "websockets" else ""
        return f"{scheme}{'s' if self.tls else ''}://{user}{self.host}:{self.port}{path}"
