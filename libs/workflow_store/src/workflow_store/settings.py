"""Typed settings of the workflow store, read from the environment.

Services compose or subclass :class:`StoreSettings`; nothing here is instantiated at import.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from observability.settings import AppEnvSettings, comma_list
from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from .crypto import SecretBox, parse_keys
from .errors import ConfigurationError, InvalidEncryptionKeyError

__all__ = ["DEFAULT_DATABASE_URL", "DEV_KEY_FILENAME", "StoreSettings", "load_dev_key"]

logger = logging.getLogger(__name__)

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./var/zuora-sync.db"
DEV_KEY_FILENAME = "dev-encryption.key"


def load_dev_key(data_dir: Path) -> str:
    """Return the development encryption key in ``data_dir``, creating it (mode 0600) once."""
    path = data_dir / DEV_KEY_FILENAME
    try:
        existing = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        existing = ""
    if existing:
        return existing
    data_dir.mkdir(parents=True, exist_ok=True)
    key = SecretBox.generate_key()
    try:
        # O_EXCL: if two processes race, exactly one writes the key; the other reads it.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text(encoding="ascii").strip()
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(key + "\n")
    logger.warning(
        "ENCRYPTION_KEYS is not set: generated a development encryption key in %s "
        "(APP_ENV=development only; never use it in production)",
        path,
    )
    return key


class StoreSettings(AppEnvSettings):
    """Database and secret-encryption configuration (environment variables); ``APP_ENV`` and
    :attr:`is_development` come from :class:`~observability.settings.AppEnvSettings`."""

    model_config = SettingsConfigDict(env_prefix="", extra="ignore", case_sensitive=False)

    database_url: str = Field(
        default=DEFAULT_DATABASE_URL,
        validation_alias="DATABASE_URL",
        description="SQLAlchemy URL of the database (postgresql:// or sqlite:///).",
    )
    encryption_keys: SecretStr = Field(
        default=SecretStr(""),
        validation_alias="ENCRYPTION_KEYS",
        description="Comma-separated Fernet keys, newest first.",
    )
    zuora_allowed_base_urls: str = Field(
        default="",
        validation_alias="ZUORA_ALLOWED_BASE_URLS",
        description="Comma-separated base URLs allowed besides Zuora's official hosts.",
    )
    dev_data_dir: Path = Field(
        default=Path("./var"),
        validation_alias="DEV_DATA_DIR",
        description="Where development-only files (the generated key) are kept.",
    )

    @property
    def allowed_base_urls(self) -> tuple[str, ...]:
        """``ZUORA_ALLOWED_BASE_URLS`` as a tuple of stripped, non-empty URLs."""
        return tuple(comma_list(self.zuora_allowed_base_urls))

    def encryption_key_list(self) -> list[str]:
        """The configured keys (newest first); in development a persisted generated key.

        Raises :class:`ConfigurationError` when keys are missing or invalid outside
        development. The message names the variable, never its value.
        """
        keys = parse_keys(self.encryption_keys.get_secret_value())
        if not keys:
            if self.is_development:
                return [load_dev_key(self.dev_data_dir)]
            raise ConfigurationError(
                "ENCRYPTION_KEYS is not set: set it to one or more comma-separated Fernet keys "
                "(newest first); generate one with "
                "`python -c 'from cryptography.fernet import Fernet; "
                "print(Fernet.generate_key().decode())'`"
            )
        return keys

    def secret_box(self) -> SecretBox:
        """A :class:`SecretBox` over the configured keys (see :meth:`encryption_key_list`)."""
        keys = self.encryption_key_list()
        try:
            return SecretBox(keys)
        except InvalidEncryptionKeyError as exc:
            # Placeholders such as "changeme" land here too: they are not valid Fernet keys.
            raise ConfigurationError(
                f"ENCRYPTION_KEYS is invalid: {exc}; generate real keys, example values are refused"
            ) from None
