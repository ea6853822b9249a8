"""Customers: list, add, edit, delete, the customer page and Sync now."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
