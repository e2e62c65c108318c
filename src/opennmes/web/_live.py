"""Live sessions run by the web app: start, watch, change intensity, pause, stop.

Each session plays in its own process (:mod:`opennmes.web._worker`): the web process only
forwards commands and keeps, per run, the latest status and a ring buffer of the snapshots
the session sends at every control window; the live page polls them as JSON. Stop is sent at
once and acted on by a thread of the session process; a session process that does not end
within :data:`KILL_AFTER` seconds of a stop is killed.
"""

from __future__ import annotations

import itertools
import logging
import math
import secrets
import shlex
import threading
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Any

from opennmes.errors import NmesError
from opennmes.store import Store
from opennmes.web._accounts import Accounts, User
from opennmes.web._settings import Settings

if TYPE_CHECKING:  # pragma: no cover
    from opennmes.stim import Program, Trigger

__all__ = ["LiveSessions", "LiveRun", "RunNotFound", "SessionRefused", "KILL_AFTER",
           "sensor_refusal", "sensor_note", "sensed_triggers"]

log = logging.getLogger(__name__)

_BUFFER = 1500  # snapshots kept per run (60 s at 25 Hz)
_EVENTS = 8  # latest trigger and loop events shown on the live page
_KEEP_ENDED = 600.0  # s an ended run stays visible
START_TIMEOUT = 60.0  # s for a session process to report started or refused
KILL_AFTER = 5.0  # s after a stop before an unresponsive session process is killed


class RunNotFound(NmesError, LookupError):
    """No live run with this id on this server."""


class SessionRefused(NmesError):
    """The session did not start (the message says which check failed); nothing ran."""


@dataclass
class LiveRun:
    """One session playing on this server, seen from the web process."""

    id: str
    patient_id: str
    clinician: str | None
    program_name: str
    device_url: str
    started_by: str
    process: Any
    conn: Connection
    session_id: int
    channels: list[str]
    max_amplitude: list[float]
    started_at: float = field(default_factory=time.time)
    samples: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=_BUFFER))
    seq: itertools.count[int] = field(default_factory=itertools.count)
    status: dict[str, Any] = field(default_factory=dict)
    ended_at: float | None = None
    outcome: dict[str, Any] | None = None
    error: str | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)
    send_lock: threading.Lock = field(default_factory=threading.Lock)
    thread: threading.Thread | None = None
    stop_requested: float | None = None
    triggerable: list[str] = field(default_factory=list)
    """Channels a button can trigger (``SessionRunner.triggerable``)."""
    drives: dict[str, str] = field(default_factory=dict)
    """What drives each functional channel, in words."""
    events: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=_EVENTS))

    @property
    def ended(self) -> bool:
        return self.ended_at is not None

    # ------------------------------------------------------------------ from the session
    def _read(self) -> None:
        """Reader thread: status messages into the buffer until the session ends."""
        try:
            while True:
                msg = self.conn.recv()
                if msg[0] == "status":
                    with self.lock:
                        data = msg[1]
                        data["seq"] = next(self.seq)
                        self.status = data
                        self.samples.append(data)
                elif msg[0] == "event":
                    self._event(msg[1])
                elif msg[0] == "ended":
                    self.outcome = msg[1]
                    break
                elif msg[0] == "error":
                    self.error = str(msg[1])
        except (EOFError, OSError):
            if self.outcome is None:
                self.outcome = {"status": "aborted", "how": "device_error",
                                "reason": "the session process ended unexpectedly"}
                self.error = self.outcome["reason"]
        finally:
            self.process.join(timeout=5)  # only this thread joins (the exit status is read once)
            self.conn.close()
            self.ended_at = time.time()

    def _event(self, data: dict[str, Any]) -> None:
        """A trigger or loop event: kept (newest first on the page) with its plain words."""
        from opennmes.web._words import event_words

        value = data.get("value")
        if isinstance(value, float) and not math.isfinite(value):
            data["value"] = None  # JSON has no NaN
        with self.lock:
            self.events.append({"t": data.get("t", 0.0), "kind": data.get("kind"),
                                "channel": data.get("channel"), "result": data.get("result"),
                                "text": event_words(str(data.get("kind")), data) or ""})

    # ------------------------------------------------------------------ to the session
    def command(self, name: str, *args: Any, by: str) -> None:
        """Send a command to the session (NmesError when the session has ended)."""
        if self.ended:
            raise NmesError("the session has ended")
        with self.send_lock:
            try:
                self.conn.send((name, args, by))
            except (OSError, BrokenPipeError) as exc:
                raise NmesError(f"the session process is not reachable: {exc}") from exc

    def check_channel(self, channel: str) -> None:
        """NmesError naming the channels when ``channel`` is not one of them."""
        if channel not in self.channels:
            raise NmesError(f"unknown channel {channel!r}; channels: {self.channels}")

    def check_triggerable(self, channel: str) -> None:
        """NmesError naming the triggered channels when ``channel`` is not one of them."""
        if channel not in self.triggerable:
            raise NmesError(f"channel {channel!r} is not triggered by a button; triggered "
                            f"channels: {self.triggerable}")

    def stop(self, reason: str, by: str = "operator") -> None:
        """Zero the output now (idempotent); kill the process if it does not end in time."""
        if self.ended:
            return
        if self.stop_requested is None:
            self.stop_requested = time.monotonic()
            threading.Thread(target=self._kill_if_stuck, daemon=True).start()
        try:
            self.command("stop", reason, by=by)
        except NmesError:
            self.process.kill()

    def _kill_if_stuck(self) -> None:
        deadline = time.monotonic() + KILL_AFTER
        while time.monotonic() < deadline:
            if self.ended:
                return
            time.sleep(0.05)
        log.error("session process of run %s did not stop within %g s: killing it",
                  self.id, KILL_AFTER)
        self.process.kill()

    # ------------------------------------------------------------------ for the pages
    def snapshot(self, since: int = -1) -> dict[str, Any]:
        """State and the samples newer than ``since`` (JSON-ready; currents in mA)."""
        with self.lock:
            st = dict(self.status)
            rows = [s for s in self.samples if s["seq"] > since] if since < st.get(
                "seq", -1) else []
            events = [dict(e) for e in reversed(self.events)]
        n = len(self.channels)
        levels = st.get("levels", [0.0] * n)
        amplitude = st.get("amplitude", [0.0] * n)
        ended = self.ended
        return {
            "id": self.id, "state": "ended" if ended else st.get("state", "starting"),
            "t": round(st.get("t", 0.0), 3),
            "program_time": round(st.get("program_time", 0.0), 3),
            "phase": st.get("phase", ""), "contraction": st.get("contraction", 0),
            "n_contractions": st.get("n_contractions", 0),
            "contracting": st.get("contracting", False),
            "remaining": round(st.get("remaining", 0.0), 1),
            "channels": self.channels, "selected": st.get("selected", self.channels[0]),
            "levels_mA": [round(x * 1e3, 3) for x in levels],
            "max_mA": [round(x * 1e3, 3) for x in self.max_amplitude],
            "paused": st.get("paused", False),
            "stimulating": (not ended) and any(a > 0 for a in amplitude),
            "force_label": st.get("force_label", "force"),
            "session_id": self.session_id, "outcome": self.outcome, "error": self.error,
            "triggerable": self.triggerable, "drives": self.drives, "events": events,
            "samples": [{"seq": r["seq"], "t": r["t"],
                         "amplitude_mA": [round(a * 1e3, 3) for a in r["amplitude"]],
                         "force": r["force"], "emg": r["emg"]} for r in rows],
        }


_SENSED = {"emg": "the patient's muscle activity (EMG)", "gait": "the walking pattern (gait)"}


def sensed_triggers(program: Program) -> list[tuple[str, Trigger]]:
    """``(channel, trigger)`` of the channels whose trigger listens to a live sensor signal
    (emg, gait): the web app cannot run them yet."""
    return [(c.name, c.trigger) for c in program.channels
            if c.trigger is not None and c.trigger.signal is not None]


def sensor_note(program: Program) -> str | None:
    """A short note for the prescription list: which sensor the program needs (None when it
    runs from the web)."""
    sensed = sensed_triggers(program)
    if not sensed:
        return None
    what = "; ".join(f"{name} listens to {t.signal!r} ({t.source})" for name, t in sensed)
    return (f"Needs a live sensor ({what}), which the web app cannot read yet: run it from "
            "the command line with nmes run ... --sensor NAME=FILE.")


def sensor_refusal(program: Program, patient_id: str, device_url: str) -> str | None:
    """Why the web app cannot run ``program`` (None when it can).

    Channels triggered by ``emg`` or ``gait`` listen to a live sensor signal; the web app has
    no live sensor input yet, so such programs run from the command line, where
    ``nmes run --sensor NAME=FILE`` replays a recording as the live sensor.
    """
    sensed = sensed_triggers(program)
    if not sensed:
        return None
    parts = [f"channel {name!r} is triggered by {_SENSED.get(t.source, t.source)} and listens "
             f"to the sensor signal {t.signal!r}" for name, t in sensed]
    names = sorted({t.sensor or "NAME" for _, t in sensed})
    command = " ".join(["nmes run", shlex.quote(program.name), "--patient",
                        shlex.quote(patient_id), "--device", shlex.quote(device_url),
                        *(f"--sensor {n}=FILE" for n in names)])
    signals = " and ".join(repr(t.signal) for _, t in sensed)
    return (f"{'; '.join(parts)}, but the web app has no live sensor input yet. Run this "
            f"program from the command line with a recording that has {signals} as the "
            f"live sensor: {command} (nothing was started or recorded)")


class LiveSessions:
    """The sessions this server is running, by run id."""

    def __init__(self, store: Store, accounts: Accounts, settings: Settings):
        self.store = store
        self.accounts = accounts
        self.settings = settings
        self._runs: dict[str, LiveRun] = {}
        self._lock = threading.Lock()
        # one start at a time: the "one running session per patient" check must not race
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
        """Start the session fork server (modules and kernels load once, in the background
        of the first start)."""
        from multiprocessing import forkserver

        from opennmes.web._worker import _context

        if _context().get_start_method() == "forkserver":
            forkserver.ensure_running()

    def start(self, user: User, patient_id: str, program: Program, device_url: str, *,
              meta: Mapping[str, Any] | None = None) -> LiveRun:
        """Start a session process: it opens the device, checks everything (screening,
        device limits), begins the record and plays the program. Nothing is recorded when a
        check fails.

        Raises
        ------
        SessionRefused, NmesError
            A check failed (the message names what).
        """
        with self._start_lock:
            return self._start(user, patient_id, program, device_url, meta)

    def _start(self, user: User, patient_id: str, program: Program, device_url: str,
               meta: Mapping[str, Any] | None) -> LiveRun:
        from opennmes.web._worker import spawn

        if device_url not in self.settings.device_urls:
            raise NmesError(f"device {device_url!r} is not offered by this server; choose one "
                            f"of {list(self.settings.device_urls)}")
        if self.active(patient_id) is not None:
            raise NmesError(f"patient {patient_id} has a session running already; stop it "
                            "first")
        refusal = sensor_refusal(program, patient_id, device_url)
        if refusal is not None:
            raise SessionRefused(refusal)
        patient = self.store.get_patient(patient_id)
        options: dict[str, Any] = {}
        if device_url.startswith("sim:"):
            # a simulated device on a shared PC: tolerate scheduling hiccups of the host
            options["stall_margin"] = self.settings.sim_stall_margin
        info = {"started_by": user.username, "via": "web"} | dict(meta or {})
        url = self.store.engine.url.render_as_string(hide_password=False)
        proc, conn = spawn(url, patient_id, program.to_file_dict(), device_url, info, options)
        if not conn.poll(START_TIMEOUT):
            proc.kill()
            raise SessionRefused(f"the session process did not start within "
                                 f"{START_TIMEOUT:g} s; nothing ran")
        try:
            msg = conn.recv()
        except EOFError:
            msg = ("refused", "the session process ended before starting")
        if msg[0] != "started":
            proc.join(timeout=5)
            conn.close()
            raise SessionRefused(str(msg[1]))
        started = msg[1]
        run = LiveRun(id=secrets.token_urlsafe(9), patient_id=patient_id,
                      clinician=patient.clinician, program_name=program.name,
                      device_url=device_url, started_by=user.username, process=proc,
                      conn=conn, session_id=int(started["session_id"]),
                      channels=list(started["channels"]),
                      max_amplitude=[float(a) for a in started["max_amplitude"]],
                      triggerable=list(started["triggerable"]),
                      drives=dict(started["drives"]))
        run.thread = threading.Thread(target=run._read, daemon=True,
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

    def stop(self, run: LiveRun, user: User | None, reason: str) -> None:
        """Stop a run now and audit who did it."""
        run.stop(reason, by=user.username if user else "server")
        self.audit_stop(run, user, reason)

    def audit_stop(self, run: LiveRun, user: User | None, reason: str) -> None:
        """Write the audit line of a stop."""
        self.accounts.audit(user, "stimulation_stopped", f"{run.program_name} stopped for "
                            f"{run.patient_id}: {reason}", patient_id=run.patient_id,
                            detail={"run": run.id, "session_id": run.session_id})

    def stop_all(self, reason: str) -> None:
        """Stop every running session (output to zero), e.g. on shutdown; waits for them."""
        with self._lock:
            runs = list(self._runs.values())
        for run in runs:
            try:
                run.stop(reason, by="server")
            except Exception:  # noqa: BLE001 - keep stopping the others
                log.exception("stopping run %s failed", run.id)
        deadline = time.monotonic() + KILL_AFTER + 2.0
        for run in runs:
            if run.thread is not None:
                run.thread.join(timeout=max(0.0, deadline - time.monotonic()))
