"""The parts every service's settings are made of, and the rules they share.

- :class:`EnvSettings`: the base of every settings class in the product. It reads the process
  environment, or the mapping given to :meth:`EnvSettings.from_environ` (the launcher of
  ``make run`` and tests load the same classes from a mapping; nested parts follow it).
- :func:`is_development`: what ``APP_ENV`` means, decided here only.
- :func:`comma_list`: the one parser of the comma-separated variables (``API_KEYS``,
  ``ENCRYPTION_KEYS``, ``ZUORA_ALLOWED_BASE_URLS``, ``KAFKA_BOOTSTRAP_SERVERS``).
- :class:`AppEnvSettings` (``APP_ENV``) and :class:`LogSettings` (``LOG_LEVEL``, ``LOG_FORMAT``).

Variable names are a contract (README "Configuration", ``.env.example``, deploy/, compose): a
class here may change shape, the names it reads may not.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Literal, Self

from pydantic import Field, field_validator
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)
from pydantic_settings.sources.utils import parse_env_vars

__all__ = [
    "DEVELOPMENT",
    "AppEnvSettings",
    "EnvSettings",
    "LogSettings",
    "comma_list",
    "is_development",
]

DEVELOPMENT = "development"

# The mapping EnvSettings.from_environ reads instead of os.environ, while it builds (nested
# settings are built inside the outer one's validation, so they see it too).
_ENVIRON: ContextVar[Mapping[str, str] | None] = ContextVar("settings_environ", default=None)


def comma_list(value: str) -> list[str]:
    """``"a, b,,c "`` -> ``["a", "b", "c"]``: stripped, empty parts dropped, order kept."""
    return [part.strip() for part in value.split(",") if part.strip()]


def is_development(app_env: str) -> bool:
    """``APP_ENV=development`` (any case, spaces ignored); anything else is production-like."""
    return app_env.strip().lower() == DEVELOPMENT


@contextmanager
def _reading(environ: Mapping[str, str] | None) -> Iterator[None]:
    token = _ENVIRON.set(environ)
    try:
        yield
    finally:
        _ENVIRON.reset(token)


class EnvSettings(BaseSettings):
    """A settings class read from the environment; ``from_environ`` reads a given mapping."""

    model_config = SettingsConfigDict(extra="ignore")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        environ = _ENVIRON.get()
        if environ is not None and isinstance(env_settings, EnvSettingsSource):
            env_settings.env_vars = parse_env_vars(
                environ,
                env_settings.case_sensitive,
                env_settings.env_ignore_empty,
                env_settings.env_parse_none_str,
            )
        return init_settings, env_settings, dotenv_settings, file_secret_settings

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None, **values: Any) -> Self:
        """The settings read from ``environ`` (``None``: the process environment) instead of
        ``os.environ``, nested parts included; ``values`` override by field name."""
        with _reading(environ):
            return cls(**values)


class AppEnvSettings(EnvSettings):
    """``APP_ENV``: ``development`` relaxes the key guards (a generated encryption key, the
    documented development API key) and defaults logs to text."""

    app_env: str = Field(
        default="production",
        validation_alias="APP_ENV",
        description="'development' allows a generated encryption key and the development API "
        "key, and defaults logs to text; anything else does not.",
    )

    @property
    def is_development(self) -> bool:
        return is_development(self.app_env)


class LogSettings(AppEnvSettings):
    """``LOG_LEVEL`` and ``LOG_FORMAT`` (json | text; unset: text in development, else json)."""

    model_config = SettingsConfigDict(env_prefix="LOG_", extra="ignore")

    level: str = Field(default="INFO", description="Root log level (LOG_LEVEL).")
    format: Literal["json", "text"] | None = Field(
        default=None, description="json | text (LOG_FORMAT); unset: by APP_ENV."
    )

    @field_validator("format", mode="before")
    @classmethod
    def _known_format(cls, value: Any) -> Any:
        if isinstance(value, str):
            chosen = value.strip().lower()
            if not chosen:
                return None
            if chosen not in ("json", "text"):
                raise ValueError(f"LOG_FORMAT must be 'json' or 'text', not {chosen!r}")
            return chosen
        return value

    @property
    def use_json(self) -> bool:
        """Whether logs are JSON lines (else readable text)."""
        if self.format is not None:
            return self.format == "json"
        return not self.is_development
