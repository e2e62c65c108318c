"""Live sessions run by the web app: start, watch, change intensity, pause, stop."""

from __future__ import annotations

import logging
import threading
from typing import Any

from opennmes.store import Store
from opennmes.web._accounts import Accounts
from opennmes.web._settings import Settings

__all__ = ["LiveSessions"]

log = logging.getLogger(__name__)


class LiveSessions:
    """The sessions this server is running, by run id."""

    def __init__(self, store: Store, accounts: Accounts, settings: Settings):
        self.store = store
        self.accounts = accounts
        self.settings = settings
        self._runs: dict[str, Any] = {}
        self._lock = threading.Lock()

    def for_patient(self, patient_id: str) -> list[Any]:
        """Runs of this patient still in memory, newest first."""
        with self._lock:
            return [r for r in self._runs.values() if r.patient_id == patient_id][::-1]

    def stop_all(self, reason: str) -> None:
        """Stop every running session (output to zero), e.g. on shutdown."""
        with self._lock:
            runs = list(self._runs.values())
        for run in runs:
            try:
                run.stop(reason)
            except Exception:  # noqa: BLE001 - keep stopping the others
                log.exception("stopping run %s failed", getattr(run, "id", "?"))
