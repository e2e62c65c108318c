"""OpenNMES: an open Python platform for neuromuscular electrical stimulation."""

from __future__ import annotations

__version__ = "0.1.0"
