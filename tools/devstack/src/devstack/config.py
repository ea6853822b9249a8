"""What the embedded stack runs with: the contract variables, with development defaults."""

from __future__ import annotations

import os
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.engine import make_url
from workflow_store.db import redact_url

__all__ = ["DEV_API_KEY", "DevConfig", "absolute_sqlite_url"]

DEV_API_KEY = "dev-api-key"
"""The key the API accepts in development when ``API_KEYS`` is unset (customer-api README)."""

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


def _csv(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


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
        env = dict(os.environ if environ is None else environ)
        cwd = (cwd or Path.cwd()).resolve()
        data_dir = Path(env.get("DEV_DATA_DIR") or "var")
        data_dir = data_dir if data_dir.is_absolute() else (cwd / data_dir)
        database_url = (
            env.get("DATABASE_URL") or f"sqlite+aiosqlite:///{data_dir / 'zuora-sync.db'}"
        )
        try:
            database_url = absolute_sqlite_url(database_url, cwd)
        except Exception as exc:  # sqlalchemy.exc.ArgumentError and friends
            raise ValueError(f"DATABASE_URL is not a valid SQLAlchemy URL: {exc}") from None
        api_port_text = env.get("API_PORT") or "8000"
        sandbox_port_text = env.get("SANDBOX_PORT") or ""
        try:
            api_port = int(api_port_text)
            sandbox_port = int(sandbox_port_text) if sandbox_port_text else None
        except ValueError:
            raise ValueError("API_PORT and SANDBOX_PORT must be port numbers") from None
        if not 1 <= api_port <= 65535:
            raise ValueError(f"API_PORT must be between 1 and 65535, not {api_port}")
        return cls(
            cwd=cwd,
            database_url=database_url,
            data_dir=data_dir.resolve(),
            app_env=env.get("APP_ENV") or "development",
            api_host=env.get("API_HOST") or "127.0.0.1",
            api_port=api_port,
            api_keys=_csv(env.get("API_KEYS", "")),
            kafka_bootstrap=env.get("KAFKA_BOOTSTRAP_SERVERS") or None,
            sandbox_port=sandbox_port,
            allowed_base_urls=_csv(env.get("ZUORA_ALLOWED_BASE_URLS", "")),
            encryption_keys_given=bool(_csv(env.get("ENCRYPTION_KEYS", ""))),
            base_env=env,
        )

    @property
    def is_development(self) -> bool:
        return self.app_env.strip().lower() == "development"

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
        # Tansu reads these from the environment too; never let a stray one reach it.
        for key in ("LISTENER_URL", "ADVERTISED_LISTENER_URL", "STORAGE_ENGINE", "CLUSTER_ID"):
            env.pop(key, None)
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
