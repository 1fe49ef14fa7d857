"""Your own settings, read from the environment and `.env` like the generated ones.

Yours to edit: asyncapi-pygen created this file once and never overwrites it. Each field is an
environment variable (its name in upper case); the generator reads this class, without running
it, to list them in README.md and .env.example (a `Field(description=...)` is shown there).
Handlers reach them as `ctx.app_settings`, lifecycle code as `service.app_settings`.
"""

from __future__ import annotations

from pydantic_settings import BaseSettings, SettingsConfigDict


class AppSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", env_ignore_empty=True, extra="ignore"
    )
