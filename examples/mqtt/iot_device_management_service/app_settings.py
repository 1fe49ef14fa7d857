"""Your own settings, read from the environment and `.env` like the generated ones.

Yours to edit: asyncapi-pygen created this file once and never overwrites it. Each field is an
environment variable (its name in upper case); the generator reads this class, without running
it, to list them in README.md and .env.example (a `Field(description=...)` is shown there).
Handlers reach them as `ctx.app_settings`, lifecycle code as `service.app_settings`.
"""

from __future__ import annotations

import re

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

_DURATION = re.compile(r"(\d+(?:\.\d+)?)([smhdw]?)")
_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def seconds(duration: str) -> float:
    """`7d`, `12h`, `30m`, `90s` or `90` in seconds; `0` means never."""
    match = _DURATION.fullmatch(duration.strip())
    if match is None:
        raise ValueError(f"not a duration like 7d, 12h, 30m or 90s: {duration!r}")
    return float(match.group(1)) * _SECONDS[match.group(2)]


class AppSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", env_ignore_empty=True, extra="ignore"
    )

    heartbeat_interval: float = Field(
        default=30.0, gt=0, description="Seconds between two SystemHeartbeat messages"
    )
    active_window: float = Field(
        default=300.0, gt=0, description="Seconds a device counts as active after its last message"
    )
    max_tracked_devices: int = Field(
        default=100_000, ge=1, description="Devices kept in memory for the heartbeat at most"
    )
    database_url: str = Field(
        default="sqlite:///telemetry.db",
        description="Where telemetry is stored: sqlite:///FILE or postgresql://USER:PASSWORD@HOST/DB",
    )
    telemetry_batch_rows: int = Field(
        default=5000, ge=1, description="Rows written in one transaction at most"
    )
    telemetry_flush_interval: float = Field(
        default=0.0,
        ge=0,
        description="Seconds a row may wait for others to share its transaction (0: none)",
    )
    telemetry_retention: str = Field(
        default="7d", description="Telemetry older than this is deleted (e.g. 7d, 12h; 0: never)"
    )
    retention_check_interval: float = Field(
        default=600.0, gt=0, description="Seconds between two deletions of old telemetry"
    )

    @field_validator("telemetry_retention")
    @classmethod
    def _duration(cls, value: str) -> str:
        seconds(value)
        return value
