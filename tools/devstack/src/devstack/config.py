"""What the embedded stack runs with: the contract variables, with development defaults.

The launcher reads them through the very classes the services run with (:class:`ApiSettings`,
which composes the store and Kafka parts), plus its own ``SANDBOX_PORT``: what ``make run`` shows
(the API URL, the key to use) is what the API will do.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from customer_api.settings import DEV_API_KEY, ApiSettings
from observability.settings import DEVELOPMENT, EnvSettings, comma_list, is_development
from pydantic import Field
from sqlalchemy.engine import make_url
from workflow_store.db import redact_url

__all__ = ["DEV_API_KEY", "DevConfig", "LauncherSettings", "absolute_sqlite_url"]

# Tansu: each consumer-group join waits session_timeout/2 (TOOLCHAIN.md); 4 partitions are plenty.
KAFKA_DEV_DEFAULTS = {
    "KAFKA_SESSION_TIMEOUT_MS": "2000",
    "KAFKA_HEARTBEAT_INTERVAL_MS": "300",
    "KAFKA_TOPIC_PARTITIONS": "4",
}


def absolute_sqlite_url(url: str, base: Path) -> str:
    """A SQLite URL with a relative file path made absolute against ``base`` (others unchanged),
    so the printed ``zuora-sync`` commands work from any directory."""
    parsed = make_url(url)
    database = parsed.database
    if parsed.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return url
    if database.startswith("file:") or Path(database).is_absolute():
        return url
    return parsed.set(database=str((base / database).resolve())).render_as_string(
        hide_password=False
    )


class LauncherSettings(EnvSettings):
    """What ``make run`` reads: the API's settings and the launcher's own ``SANDBOX_PORT``."""

    api: ApiSettings = Field(default_factory=ApiSettings)
    sandbox_port: int | None = Field(
        default=None,
        ge=0,
        le=65535,
        validation_alias="SANDBOX_PORT",
        description="Port of the Zuora sandbox (make run only); unset: a free port.",
    )


@dataclass
class DevConfig:
    """The launcher's configuration, read once from the environment."""

    cwd: Path
    database_url: str
    data_dir: Path
    app_env: str
    api_host: str
    api_port: int
    api_keys: list[str]
    kafka_bootstrap: str | None  # None: start the local broker
    sandbox_port: int | None  # None: a free port
    allowed_base_urls: list[str]
    encryption_keys_given: bool
    base_env: dict[str, str] = field(repr=False)

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, cwd: Path | None = None
    ) -> DevConfig:
        """Read ``environ`` (default: this process's environment, which is also what every
        child inherits). Raises ``ValueError`` naming the variable that is wrong."""
        env = dict(os.environ if environ is None else environ)
        cwd = (cwd or Path.cwd()).resolve()
        # An empty variable means "unset" here; make run is development unless told otherwise.
        given = {key: value for key, value in env.items() if value != ""}
        given.setdefault("APP_ENV", DEVELOPMENT)
        settings = LauncherSettings.from_environ(given)
        api, store = settings.api, settings.api.store
        given_dir = store.dev_data_dir
        data_dir = given_dir if given_dir.is_absolute() else cwd / given_dir
        if "database_url" in store.model_fields_set:
            database_url = store.database_url
        else:  # the services' default, anchored in the data directory
            database_url = f"sqlite+aiosqlite:///{data_dir / 'zuora-sync.db'}"
        try:
            database_url = absolute_sqlite_url(database_url, cwd)
        except Exception as exc:  # sqlalchemy.exc.ArgumentError and friends
            raise ValueError(f"DATABASE_URL is not a valid SQLAlchemy URL: {exc}") from None
        kafka = api.kafka
        return cls(
            cwd=cwd,
            database_url=database_url,
            data_dir=data_dir.resolve(),
            app_env=store.app_env,
            api_host=api.api_host,
            api_port=api.api_port,
            api_keys=comma_list(api.api_keys.get_secret_value()),
            kafka_bootstrap=(
                kafka.bootstrap_servers if "bootstrap_servers" in kafka.model_fields_set else None
            ),
            sandbox_port=settings.sandbox_port,
            allowed_base_urls=list(store.allowed_base_urls),
            encryption_keys_given=bool(comma_list(store.encryption_keys.get_secret_value())),
            base_env=env,
        )

    @property
    def is_development(self) -> bool:
        return is_development(self.app_env)

    @property
    def api_url(self) -> str:
        host = "127.0.0.1" if self.api_host in {"0.0.0.0", "::", ""} else self.api_host  # noqa: S104
        return f"http://{host}:{self.api_port}"

    @property
    def api_key(self) -> str | None:
        """The key the launcher uses: the first of ``API_KEYS``, else the dev key (development)."""
        if self.api_keys:
            return self.api_keys[0]
        return DEV_API_KEY if self.is_development else None

    @property
    def uses_dev_api_key(self) -> bool:
        return not self.api_keys and self.is_development

    @property
    def database_url_redacted(self) -> str:
        return redact_url(self.database_url)

    def child_env(self, *, kafka_bootstrap: str, sandbox_url: str) -> dict[str, str]:
        """The environment of every child: the caller's, plus the stack's wiring."""
        env = dict(self.base_env)
        for key, value in KAFKA_DEV_DEFAULTS.items():
            env.setdefault(key, value)
        allowed = list(self.allowed_base_urls)
        if sandbox_url not in allowed:
            allowed.append(sandbox_url)
        env.update(
            {
                "APP_ENV": self.app_env,
                "DATABASE_URL": self.database_url,
                "DEV_DATA_DIR": str(self.data_dir),
                "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
                "ZUORA_ALLOWED_BASE_URLS": ",".join(allowed),
                "API_HOST": self.api_host,
                "API_PORT": str(self.api_port),
                "PYTHONUNBUFFERED": "1",
                "LOG_FORMAT": env.get("LOG_FORMAT", "text"),  # human-readable in make run
            }
        )
        env.setdefault("WORKER_CONCURRENCY", "2")
        env.setdefault("LOG_LEVEL", "INFO")
        return env

    def cli_exports(self, *, kafka_bootstrap: str, sandbox_url: str) -> str:
        """``export ...`` lines that let ``uv run zuora-sync ...`` talk to this stack."""
        env = self.child_env(kafka_bootstrap=kafka_bootstrap, sandbox_url=sandbox_url)
        names = [
            "DATABASE_URL",
            "KAFKA_BOOTSTRAP_SERVERS",
            "APP_ENV",
            "DEV_DATA_DIR",
            "ZUORA_ALLOWED_BASE_URLS",
        ]
        return "\n".join(f"export {name}={shlex.quote(env[name])}" for name in names)
