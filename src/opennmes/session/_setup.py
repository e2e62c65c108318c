"""Starting a recorded session: every check first, then the record, then the runner."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from opennmes.session._commands import apply_command, check_arity
from opennmes.session._runner import SessionRunner
from opennmes.session._sensors import Sensor

if TYPE_CHECKING:  # pragma: no cover
    from opennmes.devices import Stimulator
    from opennmes.safety import PatientFactor, ScreeningResult
    from opennmes.stim import Program
    from opennmes.store import Patient, Store

__all__ = ["start_session", "patient_factors", "screen_patient", "ScriptedOperator"]

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
