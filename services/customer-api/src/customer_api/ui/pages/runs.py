"""Runs, one run, the failed list and replay."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
