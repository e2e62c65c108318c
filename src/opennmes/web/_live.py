"""Live sessions run by the web app: start, watch, change intensity, pause, stop.

Each run is a :class:`opennmes.session.SessionRunner` playing in its own thread. A hook in the
runner's control loop copies a small snapshot (levels, delivered amplitude, force or angle,
EMG envelope) into a ring buffer at every window; the live page polls it as JSON. Controls
go straight to the runner: ``stop`` zeroes the output from the calling thread at once.
"""

from __future__ import annotations

import itertools
import logging
import math
import secrets
import threading
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from opennmes.errors import NmesError
from opennmes.store import Store
from opennmes.web._accounts import Accounts, User
from opennmes.web._settings import Settings

if TYPE_CHECKING:  # pragma: no cover
    from opennmes.session import SessionRunner
    from opennmes.stim import Program

__all__ = ["LiveSessions", "LiveRun", "RunNotFound"]

log = logging.getLogger(__name__)

_BUFFER = 1500  # snapshots kept per run (60 s at 25 Hz)
_KEEP_ENDED = 600.0  # s an ended run stays visible


class RunNotFound(NmesError, LookupError):
    """No live run with this id on this server."""


def _first_row(names: tuple[str, ...], *keys: str) -> int | None:
    for key in keys:
        for i, n in enumerate(names):
            if key in n.lower():
                return i
    return None


class _Watcher:
    """Listens to the stimulator's events: keeps the latest force or angle and the EMG rms of
    each played window (devices with a virtual patient post them with every window)."""

    def __init__(self, muscles: list[str]) -> None:
        self.muscles = muscles
        self.force: float | None = None
        self.force_label = ""
        self.emg_rms: float | None = None

    def __call__(self, event: Any) -> None:
        sig = getattr(event, "signals", None)
        if sig is None or not sig.n_samples:
            return
        names = tuple(sig.names)
        i = j = None
        for m in self.muscles:  # the stimulated muscle first
            i = _first_row(names, f"{m}.force") if i is None else i
            j = _first_row(names, f"{m}.emg") if j is None else j
        i = _first_row(names, "force", "torque", "angle") if i is None else i
        j = _first_row(names, "emg") if j is None else j
        if i is not None:
            self.force = float(sig.data[i, -1])
            unit = sig.units[i] if sig.units else ""
            self.force_label = f"{names[i]} ({unit})" if unit else names[i]
        if j is not None:
            x = np.asarray(sig.data[j], dtype=float)
            self.emg_rms = float(np.sqrt(np.mean(x * x)))


@dataclass
class LiveRun:
    """One session playing on this server."""

    id: str
    patient_id: str
    clinician: str | None
    program_name: str
    device_url: str
    started_by: str
    runner: SessionRunner
    watcher: _Watcher
    started_at: float = field(default_factory=time.time)
    samples: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=_BUFFER))
    seq: itertools.count[int] = field(default_factory=itertools.count)
    thread: threading.Thread | None = None
    ended_at: float | None = None
    outcome: dict[str, Any] | None = None
    session_id: int | None = None
    error: str | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def channels(self) -> list[str]:
        return list(self.runner.channels)

    @property
    def ended(self) -> bool:
        return self.ended_at is not None

    def hook(self, runner: SessionRunner, t: float) -> None:
        """Called in the control loop before each window: take a snapshot (cheap)."""
        st = runner.status()
        force = self.watcher.force if self.watcher.force is not None else st.force
        emg = self.watcher.emg_rms
        sample = {"t": round(t, 4), "amplitude": [st.amplitude[c] for c in runner.channels],
                  "level": [st.levels[c] for c in runner.channels],
                  "force": force, "emg": emg}
        with self.lock:
            sample["seq"] = next(self.seq)
            self.samples.append(sample)

    def snapshot(self, since: int = -1) -> dict[str, Any]:
        """State and the samples newer than ``since`` (JSON-ready; currents in mA)."""
        with self.lock:
            rows = [s for s in self.samples if s["seq"] > since]
        st = self.runner.status()
        pos = st.position
        stimulating = any(a > 0 for a in st.amplitude.values()) and not self.ended
        return {
            "id": self.id, "state": "ended" if self.ended else st.state, "t": round(st.t, 3),
            "program_time": round(st.program_time, 3), "phase": pos.phase,
            "contraction": pos.contraction, "n_contractions": pos.n_contractions,
            "contracting": pos.contracting, "remaining": round(pos.remaining, 1),
            "channels": self.channels, "selected": st.selected,
            "levels_mA": [round(st.levels[c] * 1e3, 3) for c in self.channels],
            "max_mA": [round(self.runner.max_amplitude[c] * 1e3, 3) for c in self.channels],
            "paused": st.paused, "stimulating": stimulating,
            "force_label": self.watcher.force_label or "force",
            "session_id": self.session_id, "outcome": self.outcome, "error": self.error,
            "samples": [{"seq": r["seq"], "t": r["t"],
                         "amplitude_mA": [round(a * 1e3, 3) for a in r["amplitude"]],
                         "force": r["force"], "emg": r["emg"]} for r in rows],
        }

    def stop(self, reason: str, by: str = "operator") -> None:
        """Zero the output now (idempotent)."""
        self.runner.stop(reason, by=by)


class LiveSessions:
    """The sessions this server is running, by run id."""

    def __init__(self, store: Store, accounts: Accounts, settings: Settings):
        self.store = store
        self.accounts = accounts
        self.settings = settings
        self._runs: dict[str, LiveRun] = {}
        self._lock = threading.Lock()
        self._warm_lock = threading.Lock()
        self._warm = False
        # one start at a time: the "one running session per patient" check and the store's
        # first insert of a device row must not race
        self._start_lock = threading.Lock()

    # ------------------------------------------------------------------ queries
    def get(self, run_id: str) -> LiveRun:
        """The run with this id; RunNotFound otherwise."""
        with self._lock:
            run = self._runs.get(run_id)
        if run is None:
            raise RunNotFound(f"no live session {run_id!r} on this server")
        return run

    def for_patient(self, patient_id: str) -> list[LiveRun]:
        """Runs of this patient still in memory, newest first."""
        self._forget_old()
        with self._lock:
            return [r for r in self._runs.values() if r.patient_id == patient_id][::-1]

    def active(self, patient_id: str) -> LiveRun | None:
        """The patient's run that has not ended, if any."""
        return next((r for r in self.for_patient(patient_id) if not r.ended), None)

    def _forget_old(self) -> None:
        now = time.time()
        with self._lock:
            for k in [k for k, r in self._runs.items()
                      if r.ended_at is not None and now - r.ended_at > _KEEP_ENDED]:
                del self._runs[k]

    # ------------------------------------------------------------------ start and stop
    def warm_up(self) -> None:
        """Load the virtual patient's compiled kernels once (the first window would otherwise
        take long enough to trip the watchdog)."""
        with self._warm_lock:
            if self._warm:
                return
            try:
                from opennmes.physiology import get_preset
                from opennmes.stim import PulseSchedule

                stream = get_preset("healthy-adult").start(sfreq=500.0, seed=0)
                stream.advance(PulseSchedule.from_arrays([0.0], [0.01], [3e-4],
                                                         channel_names=("warm-up",)), 0.04)
            except Exception:  # noqa: BLE001 - only a speed-up; the session still checks
                log.warning("virtual patient warm-up failed", exc_info=True)
            self._warm = True

    def start(self, user: User, patient_id: str, program: Program, device_url: str, *,
              meta: Mapping[str, Any] | None = None) -> LiveRun:
        """Open the device, check everything (screening, device limits), begin the record
        and play the program in a thread. Nothing is recorded when a check fails.

        Raises
        ------
        NmesError
            A check failed (the message names what); the device is closed again.
        """
        with self._start_lock:
            return self._start(user, patient_id, program, device_url, meta)

    def _start(self, user: User, patient_id: str, program: Program, device_url: str,
               meta: Mapping[str, Any] | None) -> LiveRun:
        from opennmes.devices import open_stimulator
        from opennmes.session import start_session

        if device_url not in self.settings.device_urls:
            raise NmesError(f"device {device_url!r} is not offered by this server; choose one "
                            f"of {list(self.settings.device_urls)}")
        if self.active(patient_id) is not None:
            raise NmesError(f"patient {patient_id} has a session running already; stop it "
                            "first")
        stim = open_stimulator(device_url)
        try:
            watcher = _Watcher([c.electrode.site.replace(" ", "_") for c in program.channels])
            if device_url.startswith("sim:") and "?" in device_url:
                self.warm_up()
            stim.add_listener(watcher)
            info = {"started_by": user.username, "via": "web"} | dict(meta or {})
            options: dict[str, Any] = {}
            if device_url.startswith("sim:"):
                # a simulated device on a shared PC: tolerate scheduling hiccups of the host
                options["stall_margin"] = self.settings.sim_stall_margin
            runner = start_session(self.store, patient_id, program, stim, meta=info,
                                   **options)
        except BaseException:
            stim.close()
            raise
        run = LiveRun(id=secrets.token_urlsafe(9), patient_id=patient_id,
                      clinician=self.store.get_patient(patient_id).clinician,
                      program_name=program.name, device_url=device_url,
                      started_by=user.username, runner=runner, watcher=watcher)
        writer = runner.writer
        run.session_id = getattr(writer, "id", None)
        runner.add_hook(run.hook)
        run.thread = threading.Thread(target=self._play, args=(run, stim), daemon=True,
                                      name=f"nmes-web-run-{run.id}")
        with self._lock:
            self._runs[run.id] = run
        run.thread.start()
        self.accounts.audit(user, "stimulation_started",
                            f"{program.name} started on {device_url} for {patient_id}",
                            patient_id=patient_id,
                            detail={"run": run.id, "session_id": run.session_id,
                                    "device": device_url, "program": program.name})
        return run

    def _play(self, run: LiveRun, stim: Any) -> None:
        try:
            result = run.runner.run()
            run.outcome = {"status": result.status, "how": result.how,
                           "reason": result.reason, "duration_s": round(result.duration, 2)}
            run.session_id = result.session_id or run.session_id
        except BaseException as exc:  # noqa: BLE001 - record, never leave output on
            log.exception("live run %s failed", run.id)
            run.error = f"{type(exc).__name__}: {exc}"
            run.outcome = {"status": "aborted", "how": "device_error", "reason": run.error}
        finally:
            try:
                stim.close()
            finally:
                run.ended_at = time.time()

    def stop(self, run: LiveRun, user: User | None, reason: str) -> None:
        """Stop a run now (output to zero from this thread) and audit who did it."""
        run.stop(reason, by=user.username if user else "server")
        self.audit_stop(run, user, reason)

    def audit_stop(self, run: LiveRun, user: User | None, reason: str) -> None:
        """Write the audit line of a stop."""
        self.accounts.audit(user, "stimulation_stopped", f"{run.program_name} stopped for "
                            f"{run.patient_id}: {reason}", patient_id=run.patient_id,
                            detail={"run": run.id, "session_id": run.session_id})

    def stop_all(self, reason: str) -> None:
        """Stop every running session (output to zero), e.g. on shutdown."""
        with self._lock:
            runs = list(self._runs.values())
        for run in runs:
            try:
                run.stop(reason, by="server")
            except Exception:  # noqa: BLE001 - keep stopping the others
                log.exception("stopping run %s failed", run.id)
        deadline = time.monotonic() + 5.0
        for run in runs:
            if run.thread is not None:
                run.thread.join(timeout=max(0.0, deadline - time.monotonic()))


def finite_or_none(x: float | None) -> float | None:
    """JSON-safe float."""
    return None if x is None or not math.isfinite(x) else x
