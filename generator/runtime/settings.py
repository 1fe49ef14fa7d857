"""The settings every generated service has; its `Settings` subclass sets the defaults the
document's servers give (host, port, client id, keep-alive, session, TLS, will)."""

from __future__ import annotations

from typing import Literal, Self

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_core import PydanticCustomError
from pydantic_settings import BaseSettings, SettingsConfigDict

TLS_FILES = ("mqtt_ca_file", "mqtt_cert_file", "mqtt_key_file")


class ServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", env_ignore_empty=True, extra="ignore"
    )

    mqtt_host: str = "localhost"
    mqtt_port: int = Field(default=1883, ge=1, le=65535)
    mqtt_client_id: str = "asyncapi-service"  # {hostname}, {pid} are filled in
    mqtt_shared_group: str = Field(default="", pattern=r"^[^/+#]*$")
    mqtt_keep_alive: int = Field(default=60, ge=0)
    mqtt_clean_session: bool | None = None
    mqtt_session_expiry: int = Field(default=3600, ge=0)
    mqtt_protocol: Literal["3.1.1", "5"] = "5"
    mqtt_transport: Literal["tcp", "websockets"] = "tcp"
    mqtt_ws_path: str = Field(default="/mqtt", pattern=r"^/")
    mqtt_username: str | None = None
    mqtt_password: SecretStr | None = None
    mqtt_tls: bool = False
    mqtt_ca_file: str | None = None
    mqtt_cert_file: str | None = None
    mqtt_key_file: str | None = None
    mqtt_tls_insecure: bool = False
    mqtt_will_topic: str | None = None
    mqtt_will_payload: str = ""
    mqtt_will_qos: int = Field(default=0, ge=0, le=2)
    mqtt_will_retain: bool = False
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    log_format: Literal["text", "json"] = "text"
    server_host: str = "0.0.0.0"  # the HTTP side: /healthz, /readyz, /metrics
    server_port: int | None = Field(default=None, ge=0, le=65535)  # unset: no HTTP side
    max_concurrent_handlers: int = Field(default=16, ge=1)
    max_pending_messages: int = Field(default=1000, ge=1, le=65535)
    max_pending_bytes: int = Field(default=16 * 1024 * 1024, ge=1)
    max_waiting_sends: int = Field(default=1000, ge=0)
    max_payload_bytes: int = Field(default=1_048_576, ge=0)
    connect_timeout: float = Field(default=10.0, gt=0)
    reconnect_min_delay: float = Field(default=0.5, gt=0)
    reconnect_max_delay: float = Field(default=30.0, gt=0)
    publish_timeout: float = Field(default=10.0, gt=0)
    shutdown_timeout: float = Field(default=30.0, gt=0)

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
