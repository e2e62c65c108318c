"""Live sessions run by the web app: start, watch, change intensity, pause, stop.

Each session plays in its own process under the session supervisor
(:func:`opennmes.session.supervise`), which keeps the statuses it sends at every control
window and its events, checks and sends the commands of the session's one vocabulary
(:class:`opennmes.session.Command`) and stops the session. The web process keeps only what
the pages need: the runs by id with their patient and clinician (for permissions), the
server's own checks before a start (offered devices, one run per patient, no live sensor)
and the audit lines; a run's :meth:`LiveRun.snapshot` is the JSON the live page polls.
"""

from __future__ import annotations

import logging
import math
import re
import secrets
import shlex
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Any

from opennmes.errors import NmesError
from opennmes.session import KILL_AFTER, SessionRefused, SupervisedSession
from opennmes.store import Store
from opennmes.web._accounts import Accounts, User
from opennmes.web._settings import Settings

if TYPE_CHECKING:  # pragma: no cover
    from opennmes.stim import Program, Trigger

__all__ = ["LiveSessions", "LiveRun", "RunNotFound", "SessionRefused", "KILL_AFTER",
           "sensor_refusal", "sensor_note", "sensed_triggers", "SHOWN_EVENTS"]

log = logging.getLogger(__name__)

_EVENTS = 8  # latest trigger and loop events shown on the live page
SHOWN_EVENTS = ("trigger", "loop")
"""Session event kinds the live page shows (functional channels)."""
_KEEP_ENDED = 600.0  # s an ended run stays visible


class RunNotFound(NmesError, LookupError):
    """No live run with this id on this server."""


@dataclass
class LiveRun:
    """One session playing on this server, seen from the web process: its supervised
    session and who may see it."""

    id: str
    patient_id: str
    clinician: str | None
    program_name: str
    device_url: str
    started_by: str
    session: SupervisedSession
    started_at: float = field(default_factory=time.time)

    @property
    def title(self) -> str:
        """The program's name as a patient reads it: without the record's patient id, side
        and prescription token (``Quadriceps ... [TKA-001, right] rx-1a2b3c4d``)."""
        return re.sub(r"\s*\[[^\]]*\]\s*rx-[0-9a-f]+$", "", self.program_name) or \
            self.program_name

    # ------------------------------------------------------------------ the session's facts
    @property
    def process(self) -> Any:
        """The session process."""
        return self.session.process

    @property
    def conn(self) -> Connection:
        """The web process's end of the pipe to the session process."""
        return self.session.conn

    @property
    def session_id(self) -> int:
        return self.session.session_id

    @property
    def channels(self) -> list[str]:
        return self.session.channels

    @property
    def max_amplitude(self) -> list[float]:
        return self.session.max_amplitude

    @property
    def triggerable(self) -> list[str]:
        """Channels a button can trigger (``SessionRunner.triggerable``)."""
        return self.session.triggerable

    @property
    def drives(self) -> dict[str, str]:
        """What drives each functional channel, in words."""
        return self.session.drives

    @property
    def ended(self) -> bool:
        return self.session.ended

    @property
    def ended_at(self) -> float | None:
        return self.session.ended_at

    @property
    def outcome(self) -> dict[str, Any] | None:
        return self.session.outcome

    @property
    def error(self) -> str | None:
        return self.session.error

    def stop(self, reason: str, by: str = "operator") -> None:
        """Zero the output now (idempotent); the process is killed if it does not end in
        time."""
        self.session.stop(reason, by=by)

    # ------------------------------------------------------------------ for the pages
    def _events(self) -> list[dict[str, Any]]:
        """The latest trigger and loop events, newest first, with their plain words."""
        from opennmes.report.words import event_words

        out = []
        for data in reversed(self.session.events(kinds=SHOWN_EVENTS, last=_EVENTS)):
            value = data.get("value")
            if isinstance(value, float) and not math.isfinite(value):
                data = data | {"value": None}  # JSON has no NaN
            out.append({"t": data.get("t", 0.0), "kind": data.get("kind"),
                        "channel": data.get("channel"), "result": data.get("result"),
                        "text": event_words(str(data.get("kind")), data) or ""})
        return out

    def snapshot(self, since: int = -1) -> dict[str, Any]:
        """State and the samples newer than ``since`` (JSON-ready; currents in mA)."""
        sess = self.session
        st = sess.status()
        rows = sess.statuses(since)
        events = self._events()
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
                         "force": r["force"],
                         "emg": None if r["emg"] is None else r["emg"] * 1e3} for r in rows],
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
        from opennmes.session import warm_up_supervisor

        warm_up_supervisor()

    def start(self, user: User, patient_id: str, program: Program, device_url: str, *,
              meta: Mapping[str, Any] | None = None) -> LiveRun:
        """Start a supervised session process: it opens the device, checks everything
        (screening, device limits), begins the record and plays the program. Nothing is
        recorded when a check fails.

        Raises
        ------
        SessionRefused, NmesError
            A check failed (the message names what).
        """
        with self._start_lock:
            return self._start(user, patient_id, program, device_url, meta)

    def _start(self, user: User, patient_id: str, program: Program, device_url: str,
               meta: Mapping[str, Any] | None) -> LiveRun:
        from opennmes.session import supervise

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
        session = supervise(url, patient_id, program, device_url, meta=info, options=options,
                            parent="the web server")
        run = LiveRun(id=secrets.token_urlsafe(9), patient_id=patient_id,
                      clinician=patient.clinician, program_name=program.name,
                      device_url=device_url, started_by=user.username, session=session)
        with self._lock:
            self._runs[run.id] = run
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
            run.session.wait(timeout=max(0.0, deadline - time.monotonic()))
