from __future__ import annotations

import os
from pathlib import Path

import pytest
from observability.readiness import ReadinessSettings, ReadyFile


def test_mark_writes_the_pid_and_clear_removes_it(tmp_path: Path) -> None:
    path = tmp_path / "worker.ready"
    ready = ReadyFile(path)
    ready.mark()
    assert path.read_text(encoding="utf-8") == f"{os.getpid()}\n"
    assert [p.name for p in tmp_path.iterdir()] == ["worker.ready"]  # no temporary file left
    ready.clear()
    assert not path.exists()
    ready.clear()  # idempotent


def test_without_a_path_nothing_is_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("READY_FILE", raising=False)
    monkeypatch.chdir(tmp_path)
    ready = ReadyFile.from_settings()
    assert ready.path is None
    ready.mark()
    ready.clear()
    assert list(tmp_path.iterdir()) == []


def test_the_path_comes_from_ready_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("READY_FILE", str(tmp_path / "s.ready"))
    assert ReadinessSettings().ready_file == tmp_path / "s.ready"


def test_an_unwritable_place_is_logged_not_raised(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ReadyFile(tmp_path / "missing-dir" / "x.ready").mark()
    assert "Could not write the ready file" in caplog.text
