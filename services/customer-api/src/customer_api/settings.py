"""The one typed settings class of the customer API (environment variables).

Never instantiated at import: :func:`customer_api.app.create_app` (or ``main``) builds it.
"""

from __future__ import annotations

import hashlib
import logging

from event_bus.settings import KafkaSettings
from observability.settings import EnvSettings, LogSettings, comma_list
from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict
from workflow_store.errors import ConfigurationError
from workflow_store.settings import StoreSettings

__all__ = ["DEV_API_KEY", "ApiSettings", "hash_api_key"]

logger = logging.getLogger(__name__)

DEV_API_KEY = "dev-api-key"
"""The API key accepted in ``APP_ENV=development`` when ``API_KEYS`` is empty (never elsewhere)."""


def hash_api_key(key: str) -> bytes:
    """SHA-256 digest of an API key: the only form in which keys are kept in memory."""
    return hashlib.sha256(key.encode("utf-8")).digest()


class ApiSettings(EnvSettings):
    """Everything one API process reads: the shared parts (database, encryption, APP_ENV and Zuora
    hosts as :attr:`store`; ``KAFKA_*`` as :attr:`kafka`; ``LOG_*`` as :attr:`log`) and the
    API's own variables below."""

    model_config = SettingsConfigDict(env_prefix="", extra="ignore", case_sensitive=False)

    store: StoreSettings = Field(
        default_factory=StoreSettings,
        description="DATABASE_URL, ENCRYPTION_KEYS, ZUORA_ALLOWED_BASE_URLS, APP_ENV, DEV_DATA_DIR",
    )

    api_keys: SecretStr = Field(
        default=SecretStr(""),
        validation_alias="API_KEYS",
        description="Comma-separated API keys accepted as `Authorization: Bearer <key>`; "
        "several may be active at once for rotation. Only their SHA-256 hashes are kept.",
    )
    api_host: str = Field(default="127.0.0.1", validation_alias="API_HOST")
    api_port: int = Field(default=8000, ge=1, le=65535, validation_alias="API_PORT")
    api_workers: int = Field(
        default=1,
        ge=1,
        le=64,
        validation_alias="API_WORKERS",
        description="uvicorn worker processes (the read API is CPU-bound: about one per core).",
    )
    read_pool_size: int = Field(
        default=4,
        ge=1,
        le=64,
        validation_alias="API_READ_POOL_SIZE",
        description="PostgreSQL connections per API process for the workflow-list fast path "
        "(autocommit, prepared statements), on top of the SQLAlchemy pool.",
    )
    outbox_relay_enabled: bool = Field(
        default=True,
        validation_alias="OUTBOX_RELAY_ENABLED",
        description="Run the outbox relay (publishes outbox rows to Kafka) inside the API.",
    )
    outbox_max_attempts: int = Field(
        default=10,
        ge=1,
        le=1000,
        validation_alias="OUTBOX_MAX_ATTEMPTS",
        description="Failed publishes after which an outbox row is parked (only counted as the "
        "row's own fault while other rows are being published).",
    )
    outbox_ensure_topics: bool = Field(
        default=True,
        validation_alias="OUTBOX_ENSURE_TOPICS",
        description="Create missing Kafka topics (configured partitions) before relaying.",
    )
    zuora_validate_credentials: bool = Field(
        default=True,
        validation_alias="ZUORA_VALIDATE_CREDENTIALS",
        description="Check new/rotated credentials with a real token request. When false, "
        "requests are never checked, whatever their `validate_credentials` says.",
    )
    zuora_validate_timeout: float = Field(
        default=10.0,
        gt=0,
        validation_alias="ZUORA_VALIDATE_TIMEOUT",
        description="Seconds to wait for Zuora's token endpoint when checking credentials.",
    )
    zuora_token_requests_per_minute: float = Field(
        default=60.0,
        gt=0,
        validation_alias="ZUORA_TOKEN_REQUESTS_PER_MINUTE",
        description="Token requests per minute per Zuora host made by this process's "
        "credential checks (Zuora allows 100/min per IP).",
    )
    metrics_max_customers: int = Field(
        default=1000,
        ge=0,
        validation_alias="METRICS_MAX_CUSTOMERS",
        description="Most customers with a freshness series on /metrics (the stalest first).",
    )
    ui_session_secret: SecretStr = Field(
        default=SecretStr(""),
        validation_alias="UI_SESSION_SECRET",
        description="Key that signs the web UI's session cookies; empty: derived from the "
        "newest ENCRYPTION_KEYS key (so every API process agrees without more configuration).",
    )
    ui_session_hours: float = Field(
        default=12.0,
        gt=0,
        le=24 * 30,
        validation_alias="UI_SESSION_HOURS",
        description="How long a web UI sign-in lasts.",
    )
    sync_expected_interval_seconds: int = Field(
        default=3600,
        ge=60,
        validation_alias="SYNC_EXPECTED_INTERVAL_SECONDS",
        description="How often every customer is synced by the schedule (the hourly run): "
        "freshness is on time within 1x, late within 2x, stale beyond.",
    )
    worker_max_attempts: int = Field(
        default=3,
        ge=1,
        validation_alias="WORKER_MAX_ATTEMPTS",
        description="The workers' attempts per command (the UI waits for the last one).",
    )
    kafka: KafkaSettings = Field(
        default_factory=KafkaSettings,
        description="Kafka connection settings, read from the KAFKA_* variables.",
    )
    log: LogSettings = Field(
        default_factory=LogSettings, description="LOG_LEVEL and LOG_FORMAT (by APP_ENV if unset)."
    )

    def check_process_model(self) -> None:
        """Refuse ``API_WORKERS > 1`` on SQLite (a ``ConfigurationError``).

        Several processes would each run an outbox relay, and SQLite has no advisory lock to
        make them take turns: duplicates and interleaved order.
        """
        if self.api_workers > 1 and self.store.database_url.startswith("sqlite"):
            raise ConfigurationError(
                "API_WORKERS > 1 needs PostgreSQL: with SQLite run one API process"
            )

    def api_key_hashes(self) -> tuple[bytes, ...]:
        """SHA-256 hashes of the accepted API keys.

        With no keys: in development the documented :data:`DEV_API_KEY` (with a warning);
        anywhere else a :class:`ConfigurationError` that names the variable, never a value.
        """
        keys = comma_list(self.api_keys.get_secret_value())
        if not keys:
            if self.store.is_development:
                logger.warning(
                    "API_KEYS is not set: accepting the documented development API key "
                    "(see the README; APP_ENV=development only, never in production)"
                )
                keys = [DEV_API_KEY]
            else:
                raise ConfigurationError(
                    "API_KEYS is not set: set it to one or more comma-separated API keys "
                    "(e.g. `python -c 'import secrets; print(secrets.token_urlsafe(32))'`)"
                )
        return tuple(dict.fromkeys(hash_api_key(k) for k in keys))
