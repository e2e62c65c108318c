"""Starting a recorded session: every check first, then the record, then the runner."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from opennmes.session._commands import Command, apply_command, check_arity
from opennmes.session._runner import SessionRunner
from opennmes.session._sensors import Sensor

if TYPE_CHECKING:  # pragma: no cover
    from opennmes.devices import Stimulator
    from opennmes.safety import PatientFactor, ScreeningResult
    from opennmes.stim import Program
    from opennmes.store import Patient, Store

__all__ = ["start_session", "patient_factors", "screen_patient", "ScriptedOperator", "Titration"]

log = logging.getLogger(__name__)


def patient_factors(patient: Patient) -> list[PatientFactor]:
    """The stored contraindication factors of a patient as screening factors (a stored
    ``site`` may list several sites separated by commas)."""
    from opennmes.safety import PatientFactor

    sites: dict[str, list[str]] = {}
    for c in patient.contraindications:
        lst = sites.setdefault(str(c["factor"]), [])
        if c.get("site"):
            lst += [s.strip() for s in str(c["site"]).split(",") if s.strip()]
    return [PatientFactor(k, tuple(v)) for k, v in sites.items()]


def screen_patient(patient: Patient, program: Program,
                   acknowledged: Mapping[str, str] | None = None) -> ScreeningResult:
    """Screen the patient's factors against the program's electrode sites; raise
    ContraindicationError when anything blocks (CPS §5, §4.6 item 8)."""
    from opennmes.safety import ElectrodeSite, screen

    sites = [ElectrodeSite(c.name, c.electrode.site, c.electrode.side) for c in program.channels]
    result = screen(patient_factors(patient), sites, acknowledged)
    result.raise_if_blocked()
    return result


def start_session(store: Store, patient_id: str, program: Program, stim: Stimulator, *,
                  sensors: Sequence[Sensor] = (),
                  screening_acknowledged: Mapping[str, str] | None = None,
                  meta: Mapping[str, Any] | None = None, **runner_options: Any) -> SessionRunner:
    """Check, then begin the record, and return the runner (call its ``run()``).

    Nothing is written unless every check passes: the patient exists, the screening does not
    block for these electrode sites, the whole program passes this device's guard at full
    amplitude, and the device accepts the program.

    Parameters
    ----------
    store : Store
    patient_id : str
    program : Program
    stim : Stimulator
        Opened.
    sensors : sequence of Sensor
    screening_acknowledged : mapping, optional
        Factor -> recorded decision lifting a liftable block (e.g. a cardiologist's opinion).
    meta : mapping, optional
        Extra plain JSON kept with the session.
    **runner_options
        Passed to :class:`SessionRunner` (``chunk``, ``step``, ...).
    """
    patient = store.get_patient(patient_id)
    screening = screen_patient(patient, program, screening_acknowledged)
    runner = SessionRunner(program, stim, sensors=sensors, **runner_options)
    version = store.save_program(program.to_file_dict(), program.name)
    doc = {"chunk_s": runner.chunk_us / 1e6, "step_A": runner.step,
           "resume_ramp_s": runner.resume_ramp, "device_profile": stim.profile_name,
           "clock": "virtual" if stim.clock.virtual else "real",
           "screening": [str(f) for f in screening.findings],
           "acknowledgements": [{"limit": a.limit, "reason": a.reason, "by": a.by}
                                for a in program.acknowledgements],
           "sensors": [s.name for s in sensors],
           "drives": {c: d.describe() for c, d in runner.drives.items()}} | dict(meta or {})
    writer = store.begin_session(patient_id, version.id, stim.url, meta=doc,
                                 device_info={"kind": stim.kind})
    runner.attach_writer(writer)
    return runner


class ScriptedOperator:
    """Presses buttons at given session times (demos, tests, unattended titration).

    Parameters
    ----------
    actions : sequence of (float, str, tuple)
        ``(t, command, args)``: at session time ``t`` s apply the
        :class:`~opennmes.session.Command` ``command`` (or its name) with ``args``, e.g.
        ``(12.0, "increase", ("right quadriceps",))`` or ``(30.0, "rate_comfort", (7,))``;
        recorded as pressed ``by="script"``.

    Raises
    ------
    CommandError
        An unknown command or a wrong number of arguments.
    """

    def __init__(self, actions: Sequence[tuple[float, str, tuple[Any, ...]]]) -> None:
        for _, name, args in actions:
            check_arity(name, args)
        self.actions = sorted(actions, key=lambda a: a[0])
        self._i = 0

    def __call__(self, runner: SessionRunner, t: float) -> None:
        while self._i < len(self.actions) and self.actions[self._i][0] <= t + 1e-9:
            _, name, args = self.actions[self._i]
            self._i += 1
            apply_command(runner, name, *args, by="script")

    @classmethod
    def titrate(cls, channels: Sequence[str], target: Mapping[str, float], step: float,
                start: float, interval: float) -> ScriptedOperator:
        """Raise each channel one ``step`` (A) every ``interval`` s from ``start`` s up to
        ``target[channel]`` A."""
        acts: list[tuple[float, str, tuple[Any, ...]]] = []
        for ch in channels:
            n = int(round(target[ch] / step))
            acts += [(start + k * interval, "increase", (ch,)) for k in range(n)]
        return cls(acts)


class Titration:
    """Raise channels one step at a time up to a target, each step only once the level before
    it has played in a contraction for ``interval`` s without a break: a step never lands in
    the off phase, ramp or pause, and no level is skipped unplayed (whether a level was held
    long enough to count as *tolerated* is the dose record's judgement,
    :func:`~opennmes.session.tolerated_levels`). A hook for
    :meth:`~opennmes.session.SessionRunner.add_hook` (``nmes run --titrate-to``); steps are
    recorded as intensity changes by ``script``.

    Parameters
    ----------
    channels : sequence of str
    target : mapping
        Channel -> level to reach, A (in the runner's ``step``).
    interval : float
        How long each level plays in a contraction before the next step, s.
    start : float
        Session time of the first step, s.
    """

    def __init__(self, channels: Sequence[str], target: Mapping[str, float], *,
                 interval: float = 0.0, start: float = 0.0) -> None:
        self.channels = list(channels)
        self.target = dict(target)
        self.interval = float(interval)
        self.start = float(start)
        self._since: dict[str, float | None] = dict.fromkeys(self.channels)
        self._top: dict[str, float] = {}

    def _plateau_ahead(self, runner: SessionRunner, ch: str, program_time: float) -> bool:
        """True when the program plays ``ch`` on its plateau for the next ``interval`` s (and
        one window): a step then plays at full for that long. Always True for a
        triggered or closed-loop channel, whose bursts are not in the plan."""
        if ch in runner.drives:
            return True
        i = runner.channels.index(ch)
        ahead = runner.plan.window(program_time, program_time + self.interval
                                   + runner.chunk_us / 1e6)
        amp = ahead.amplitude[ahead.channel == i]
        if ch not in self._top:  # the plateau: the channel's largest planned amplitude
            mine = runner.plan.amplitude[runner.plan.channel == i]
            self._top[ch] = float(mine.max()) if mine.size else 0.0
        # within 10 % of it, so that a modulated plateau still counts
        return bool(amp.size) and bool(np.all(amp >= 0.9 * self._top[ch]))

    def __call__(self, runner: SessionRunner, t: float) -> None:
        if t < self.start - 1e-9:
            return
        st = runner.status()
        if st.paused:
            return
        for ch in self.channels:
            level = runner.levels[ch]
            if level >= self.target[ch] - 1e-9:
                continue
            if level > 0:  # the level before the step must have been felt
                if st.amplitude.get(ch, 0.0) < level - 1e-9:
                    self._since[ch] = None  # not playing at this level (off phase, ramp)
                    continue
                since = self._since[ch]
                if since is None:
                    self._since[ch] = since = t
                if t - since < self.interval - 1e-9:
                    continue
            if not self._plateau_ahead(runner, ch, st.program_time):
                continue  # the new level would not play at full before the ramp down
            apply_command(runner, Command.INCREASE, ch, by="script")
            self._since[ch] = None
