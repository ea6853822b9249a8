"""StoreSettings: key rules per APP_ENV, the dev key file, URL lists."""

from __future__ import annotations

import logging
import stat
from pathlib import Path

import pytest
from workflow_store.crypto import SecretBox
from workflow_store.errors import ConfigurationError
from workflow_store.settings import DEFAULT_DATABASE_URL, DEV_KEY_FILENAME, StoreSettings

VARS = ("DATABASE_URL", "ENCRYPTION_KEYS", "ZUORA_ALLOWED_BASE_URLS", "APP_ENV", "DEV_DATA_DIR")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for var in VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(tmp_path)  # a stray ./var would land in the temp dir


def test_defaults() -> None:
    settings = StoreSettings()
    assert settings.database_url == DEFAULT_DATABASE_URL
    assert settings.app_env == "production"
    assert settings.allowed_base_urls == ()


def test_reads_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    key = SecretBox.generate_key()
    monkeypatch.setenv("DATABASE_URL", "postgresql://u@db/zs")
    monkeypatch.setenv("ENCRYPTION_KEYS", key)
    monkeypatch.setenv("APP_ENV", "staging")
    settings = StoreSettings()
    assert settings.database_url == "postgresql://u@db/zs"
    assert settings.app_env == "staging"
    assert key not in repr(settings)
    box = settings.secret_box()
    assert box.decrypt(SecretBox([key]).encrypt("x")) == "x"


def test_several_keys_newest_first(monkeypatch: pytest.MonkeyPatch) -> None:
    new, old = SecretBox.generate_key(), SecretBox.generate_key()
    monkeypatch.setenv("ENCRYPTION_KEYS", f"{new}, {old}")
    box = StoreSettings().secret_box()
    assert box.key_count == 2
    assert SecretBox([new]).decrypt(box.encrypt("x")) == "x"
    assert box.decrypt(SecretBox([old]).encrypt("y")) == "y"


@pytest.mark.parametrize("app_env", ["production", "staging", "test", ""])
def test_missing_key_is_refused_outside_development(
    monkeypatch: pytest.MonkeyPatch, app_env: str
) -> None:
    monkeypatch.setenv("APP_ENV", app_env)
    settings = StoreSettings()
    with pytest.raises(ConfigurationError, match="ENCRYPTION_KEYS") as info:
        settings.secret_box()
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    "placeholder",
    ["changeme", "change-me", "placeholder", "xxx", "CHANGE_ME", " , ", "not-a-fernet-key"],
)
def test_placeholder_key_is_refused_without_echoing_it(
    monkeypatch: pytest.MonkeyPatch, placeholder: str
) -> None:
    monkeypatch.setenv("ENCRYPTION_KEYS", placeholder)
    with pytest.raises(ConfigurationError, match="ENCRYPTION_KEYS") as info:
        StoreSettings().secret_box()
    message = str(info.value)
    assert "\n" not in message
    if placeholder.strip(" ,"):
        assert placeholder not in message


def test_one_bad_key_among_good_ones_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    good = SecretBox.generate_key()
    monkeypatch.setenv("ENCRYPTION_KEYS", f"{good},changeme")
    with pytest.raises(ConfigurationError, match="ENCRYPTION_KEYS") as info:
        StoreSettings().secret_box()
    assert "#2" in str(info.value)
    assert good not in str(info.value)
    assert "changeme" not in str(info.value)


def test_placeholder_is_refused_in_development_too(monkeypatch: pytest.MonkeyPatch) -> None:
    # development only excuses a *missing* key, not a wrong one
    monkeypatch.setenv("APP_ENV", "development")
    monkeypatch.setenv("ENCRYPTION_KEYS", "changeme")
    with pytest.raises(ConfigurationError, match="ENCRYPTION_KEYS"):
        StoreSettings().secret_box()


def test_development_generates_and_persists_a_key(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    data_dir = tmp_path / "dev-data"
    monkeypatch.setenv("APP_ENV", "development")
    monkeypatch.setenv("DEV_DATA_DIR", str(data_dir))

    with caplog.at_level(logging.WARNING, logger="workflow_store.settings"):
        box = StoreSettings().secret_box()
    key_file = data_dir / DEV_KEY_FILENAME
    assert key_file.exists()
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    key = key_file.read_text().strip()
    assert "ENCRYPTION_KEYS" in caplog.text
    assert key not in caplog.text

    token = box.encrypt("persisted")
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="workflow_store.settings"):
        again = StoreSettings().secret_box()  # a second process start reuses the file
    assert again.decrypt(token) == "persisted"
    assert key_file.read_text().strip() == key
    assert SecretBox([key]).decrypt(token) == "persisted"


def test_development_prefers_configured_keys(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    key = SecretBox.generate_key()
    monkeypatch.setenv("APP_ENV", "development")
    monkeypatch.setenv("DEV_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("ENCRYPTION_KEYS", key)
    box = StoreSettings().secret_box()
    assert SecretBox([key]).decrypt(box.encrypt("x")) == "x"
    assert not (tmp_path / DEV_KEY_FILENAME).exists()


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("", ()),
        ("  ", ()),
        ("http://127.0.0.1:8099", ("http://127.0.0.1:8099",)),
        (
            " http://a.example , ,https://b.example/ ,",
            ("http://a.example", "https://b.example/"),
        ),
    ],
)
def test_allowed_base_urls(
    monkeypatch: pytest.MonkeyPatch, raw: str, expected: tuple[str, ...]
) -> None:
    monkeypatch.setenv("ZUORA_ALLOWED_BASE_URLS", raw)
    assert StoreSettings().allowed_base_urls == expected


def test_subclass_can_extend() -> None:
    class WorkerSettings(StoreSettings):
        kafka_bootstrap_servers: str = "localhost:9092"

    settings = WorkerSettings()
    assert settings.database_url == DEFAULT_DATABASE_URL
    assert settings.kafka_bootstrap_servers == "localhost:9092"
