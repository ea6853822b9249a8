"""Every documented environment variable is read, under its documented name, by a settings class.

The names are a contract (README "Configuration", ``.env.example``, deploy/k8s, docker-compose.yml):
each one is set here to a valid value that differs from its default, and the test checks that the
value lands in the field of the service settings that reads it. A renamed field, a dropped prefix
or a variable documented but read by nobody fails here.
"""

from __future__ import annotations

import re
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal, Union, cast, get_args, get_origin

import annotated_types
import pytest
from customer_api.settings import ApiSettings
from devstack.config import DevConfig, LauncherSettings
from observability.settings import EnvSettings
from pydantic import SecretStr
from pydantic_settings import BaseSettings
from sync_scheduler.settings import SchedulerSettings
from sync_worker.settings import SyncWorkerSettings
from zuora_sync_cli.settings import CliSettings

ROOT = Path(__file__).resolve().parents[3]
# The settings each process is built from (the launcher's includes the API's; the CLI's).
SERVICES: tuple[type[EnvSettings], ...] = (
    ApiSettings,
    SyncWorkerSettings,
    SchedulerSettings,
    CliSettings,
    LauncherSettings,
)
# Values a type cannot suggest (validated formats).
SAMPLES = {
    "SCHEDULER_HOURLY_CRON": "5 * * * *",
    "SCHEDULER_NIGHTLY_CRON": "0 3 * * *",
    "SCHEDULER_TIMEZONE": "Europe/Paris",
    "LOG_LEVEL": "DEBUG",
    "LOG_FORMAT": "text",
    "APP_ENV": "development",
    "DATABASE_URL": "postgresql+psycopg://contract@127.0.0.1:5432/contract",
}


def documented() -> set[str]:
    names = set(re.findall(r"^#? ?([A-Z][A-Z0-9_]+)=", (ROOT / ".env.example").read_text(), re.M))
    readme = (ROOT / "README.md").read_text()
    table = readme.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    for row in re.findall(r"^\| ([^|]+) \|", table, re.M):
        names |= set(re.findall(r"`([A-Z][A-Z0-9_]+)`", row))
    return names


def env_fields(cls: type[BaseSettings], path: tuple[str, ...] = ()) -> Iterator[tuple[str, Any]]:
    """``(VARIABLE, (path, field))`` for every field of ``cls`` and of its nested settings."""
    prefix = str(cls.model_config.get("env_prefix", "")).upper()
    for name, field in cls.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseSettings):
            yield from env_fields(annotation, (*path, name))
            continue
        alias = field.validation_alias
        variable = alias if isinstance(alias, str) else prefix + name.upper()
        yield variable, ((*path, name), field)


def read_by() -> dict[str, list[tuple[type[EnvSettings], tuple[str, ...], Any]]]:
    found: dict[str, list[tuple[type[EnvSettings], tuple[str, ...], Any]]] = {}
    for cls in SERVICES:
        for variable, (path, field) in env_fields(cls):
            found.setdefault(variable, []).append((cls, path, field))
    return found


def _bounds(field: Any) -> tuple[float, float]:
    low, high = float("-inf"), float("inf")
    for meta in field.metadata:
        if isinstance(meta, annotated_types.Ge):
            low = float(cast(float, meta.ge))
        if isinstance(meta, annotated_types.Gt):
            low = float(cast(float, meta.gt)) + 1e-9
        if isinstance(meta, annotated_types.Le):
            high = float(cast(float, meta.le))
    return low, high


def sample(variable: str, field: Any) -> tuple[str, Any]:
    """A valid value for ``field`` unlike its default, as text and as the field will hold it."""
    if variable in SAMPLES:
        return SAMPLES[variable], SAMPLES[variable]
    annotation, default = field.annotation, field.get_default(call_default_factory=True)
    if get_origin(annotation) in (Union, types.UnionType):  # e.g. ``int | None``
        annotation = next(a for a in get_args(annotation) if a is not type(None))
    if get_origin(annotation) is Literal:
        value = next(v for v in get_args(annotation) if v != default)
        return str(value), value
    if annotation is bool:
        return str(not default).lower(), not default
    if annotation in (int, float):
        low, high = _bounds(field)
        base = default if default is not None else 1000
        for candidate in (base + 1, base - 1, base / 2, base * 2):
            value = annotation(candidate)
            if value != default and low <= value <= high:
                return str(value), value
        raise AssertionError(f"no sample for {variable}")
    if annotation is SecretStr:
        return "contract-secret", "contract-secret"
    if annotation is Path:
        return "/tmp/contract-dir", Path("/tmp/contract-dir")
    return "contract-value", "contract-value"


def held(settings: Any, path: tuple[str, ...]) -> Any:
    for name in path:
        settings = getattr(settings, name)
    return settings.get_secret_value() if isinstance(settings, SecretStr) else settings


def test_every_documented_variable_is_read_by_a_service() -> None:
    unread = sorted(documented() - set(read_by()))
    assert unread == [], f"documented but read by no settings class: {unread}"


def test_the_contract_lists_are_not_empty() -> None:
    # The parsing above must keep finding the tables (a moved heading would empty them).
    names = documented()
    assert {"DATABASE_URL", "KAFKA_BOOTSTRAP_SERVERS", "WORKER_CONCURRENCY", "LOG_FORMAT"} <= names
    assert len(names) > 60


@pytest.mark.parametrize("variable", sorted(documented()))
def test_a_documented_variable_lands_where_it_is_read(
    variable: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    readers = read_by().get(variable, [])
    assert readers, f"{variable} is read by no settings class"
    for cls, path, field in readers:
        text, expected = sample(variable, field)
        monkeypatch.delenv(variable, raising=False)
        # From a mapping (what the launcher does): every nested part must follow it.
        from_mapping = cls.from_environ({variable: text})
        assert held(from_mapping, path) == expected, ("from_environ", cls.__name__, path)
        monkeypatch.setenv(variable, text)
        assert held(cls(), path) == expected, (cls.__name__, path)


def test_the_launcher_reads_the_same_classes(tmp_path: Path) -> None:
    env = {
        "API_KEYS": "k1,k2",
        "API_PORT": "8111",
        "APP_ENV": "production",
        "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9092",
    }
    config = DevConfig.from_env(env, cwd=tmp_path)
    api = ApiSettings.from_environ(env)
    assert (config.api_port, config.app_env) == (api.api_port, api.store.app_env)
    assert config.api_keys == ["k1", "k2"]
    assert not config.is_development and config.api_key == "k1"
