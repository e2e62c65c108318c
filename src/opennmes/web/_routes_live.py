"""Live session pages: start, live view data, intensity, pause, stop."""

from __future__ import annotations

from fastapi import APIRouter

__all__ = ["router"]

router = APIRouter()
