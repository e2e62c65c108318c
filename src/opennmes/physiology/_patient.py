"""Virtual patients: muscles (force model, nerve, EMG, mechanics) and the joints they move.

Channel mapping: a schedule channel drives the muscle found by, in order,

1. the patient's explicit ``channel_map`` (channel name or electrode site -> muscle);
2. a muscle whose name equals the channel name, the program electrode's ``muscle`` or its
   ``site`` (normalised: lower case, spaces and hyphens as ``_``, e.g. ``"tibialis anterior"``
   -> ``tibialis_anterior``), or the words of the channel name (``"right quadriceps"`` ->
   ``quadriceps``);
3. otherwise the patient's first muscle.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from opennmes.errors import ModelError
from opennmes.physiology._ding import DingParameters
from opennmes.physiology._emg import EmgModel
from opennmes.physiology._mechanics import Joint
from opennmes.physiology._nerve import NerveModel

if TYPE_CHECKING:  # pragma: no cover
    from opennmes.physiology._stream import PatientStream

__all__ = ["Muscle", "VirtualPatient", "normalise_site"]


def normalise_site(name: str) -> str:
    """``"Tibialis Anterior"`` -> ``"tibialis_anterior"``."""
    return "_".join(name.strip().lower().replace("-", " ").split())


@dataclass(frozen=True)
class Muscle:
    """One stimulated muscle of a virtual patient.

    Parameters
    ----------
    name : str
        E.g. ``"quadriceps"``.
    force_model : DingParameters
        Ding-family force (and fatigue) model; its force is the isometric force in N at the
        measuring point the parameters were identified for (Ding's quadriceps: the ankle).
    nerve : NerveModel
        Recruitment by pulse amplitude, width and electrode (used with ``ding2003``; Ding 2007
        and Hmed 2018 carry their own pulse-width and amplitude dependence).
    emg : EmgModel
        EMG synthesis.
    max_voluntary_force : float
        Force at full voluntary activation, N (same measuring point as ``force_model``).
    voluntary_capacity : float
        Fraction of ``max_voluntary_force`` the patient can produce (stroke: reduced).
    joint : str or None
        Joint the muscle moves.
    moment_arm : float
        Lever of the force about the joint, m (positive moves the joint in its + direction).
    theta_opt : float
        Joint angle at which the fibres are at optimal length, rad.
    length_gain : float
        Change of normalised fibre length per rad of joint angle, 1/rad.
    refractory : float
        Absolute refractory period of the motor axons, s: a pulse within it of the previous
        firing pulse elicits nothing (e.g. the 2500-Hz cycles of Russian current) [U: motor
        axons ~0.5-1 ms].
    """

    name: str
    force_model: DingParameters
    nerve: NerveModel
    emg: EmgModel = EmgModel()
    max_voluntary_force: float = 600.0
    voluntary_capacity: float = 1.0
    joint: str | None = None
    moment_arm: float = 0.0
    theta_opt: float = 0.0
    length_gain: float = 0.0
    refractory: float = 1e-3

    def __post_init__(self) -> None:
        if not (0.0 <= self.voluntary_capacity <= 1.0):
            raise ModelError(f"muscle {self.name}: voluntary_capacity = "
                             f"{self.voluntary_capacity!r} must be within [0, 1]")
        if not (math.isfinite(self.max_voluntary_force) and self.max_voluntary_force >= 0):
            raise ModelError(f"muscle {self.name}: max_voluntary_force = "
                             f"{self.max_voluntary_force!r} N must be >= 0")

    def pulse_response(self, amplitude: np.ndarray, phase_width: np.ndarray,
                       area: float | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per pulse: recruited fraction, CN weight ``lam`` and force scale ``g``."""
        fm = self.force_model
        rec = self.nerve.recruitment(amplitude, phase_width, area)
        ones = np.ones_like(rec)
        if fm.model == "ding2003":
            return rec, ones, rec
        if fm.model == "ding2007":
            g = np.where(phase_width > fm.pd0,
                         -np.expm1(-(np.maximum(phase_width, fm.pd0) - fm.pd0) / fm.pdt), 0.0)
            return rec, ones, g
        # Hmed 2018: below its threshold a pulse adds nothing (the strict model raises)
        lam = np.maximum(fm.ar * (np.tanh(fm.bs * (amplitude - fm.is_)) + fm.cr), 0.0)
        return rec, lam, ones


@dataclass(frozen=True)
class VirtualPatient:
    """A simulated patient: muscles, joints and how stimulation channels reach them.

    Parameters
    ----------
    name : str
        Preset or patient name.
    description : str
        Who this patient represents.
    muscles : tuple of Muscle
        At least one.
    joints : tuple of Joint
        Joints the muscles move (may be empty).
    channel_map : mapping of str to str
        Channel name or electrode site -> muscle name.
    sources : tuple of str
        Where the parameter values come from.
    """

    name: str
    description: str
    muscles: tuple[Muscle, ...]
    joints: tuple[Joint, ...] = ()
    channel_map: Mapping[str, str] = field(default_factory=dict)
    sources: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.muscles:
            raise ModelError(f"patient {self.name}: needs at least one muscle")
        names = [m.name for m in self.muscles]
        if len(set(names)) != len(names):
            raise ModelError(f"patient {self.name}: duplicate muscle names {names}")
        jnames = {j.name for j in self.joints}
        for m in self.muscles:
            if m.joint is not None and m.joint not in jnames:
                raise ModelError(f"muscle {m.name} acts on unknown joint {m.joint!r}; "
                                 f"joints: {sorted(jnames)}")
        for ch, mu in self.channel_map.items():
            if mu not in names:
                raise ModelError(f"channel_map {ch!r} -> unknown muscle {mu!r}; "
                                 f"muscles: {names}")

    # ----------------------------------------------------------------- lookup
    @property
    def muscle_names(self) -> tuple[str, ...]:
        """Names of the muscles, in order."""
        return tuple(m.name for m in self.muscles)

    def muscle(self, name: str) -> Muscle:
        """The muscle called ``name``."""
        for m in self.muscles:
            if m.name == name:
                return m
        raise ModelError(f"patient {self.name} has no muscle {name!r}; "
                         f"muscles: {list(self.muscle_names)}")

    def joint(self, name: str) -> Joint:
        """The joint called ``name``."""
        for j in self.joints:
            if j.name == name:
                return j
        raise ModelError(f"patient {self.name} has no joint {name!r}; "
                         f"joints: {[j.name for j in self.joints]}")

    def muscle_for(self, channel: str, site: str | None = None,
                   muscle: str | None = None) -> str:
        """Muscle driven by a channel (see the module docstring for the rules)."""
        names = self.muscle_names
        for key in (channel, site, muscle):
            if key is not None and key in self.channel_map:
                return self.channel_map[key]
        for key in (muscle, site, channel):
            if key is None:
                continue
            k = normalise_site(key)
            if k in names:
                return k
            if k in self.channel_map:
                return self.channel_map[k]
        for word in normalise_site(channel).split("_"):
            if word in names:
                return word
        return names[0]

    # ----------------------------------------------------------------- personalise
    def personalise(self, muscle: str | None = None, *, strength: float = 1.0,
                    fatigability: float = 1.0, force_params: Mapping[str, Any] | None = None,
                    name: str | None = None, **changes: Any) -> VirtualPatient:
        """A copy with one muscle (or all) adapted to a person.

        Parameters
        ----------
        muscle : str, optional
            Muscle to change; all muscles when omitted.
        strength : float
            Multiplies the force scale ``a_rest`` and ``max_voluntary_force``.
        fatigability : float
            Multiplies the fatigue coefficients ``alpha_a``, ``alpha_km``, ``alpha_tau1``.
        force_params : mapping, optional
            Force-model parameters to set, e.g. the result of :func:`identify`.
        name : str, optional
            Name of the new patient.
        **changes
            Other :class:`Muscle` fields (``nerve``, ``voluntary_capacity``, ...).
        """
        for v, label in ((strength, "strength"), (fatigability, "fatigability")):
            if not (math.isfinite(v) and v > 0):
                raise ModelError(f"{label} = {v!r} must be a positive factor")
        targets = self.muscle_names if muscle is None else (self.muscle(muscle).name,)
        new = []
        for m in self.muscles:
            if m.name in targets:
                fm = m.force_model
                if force_params:
                    fm = fm.replace(**dict(force_params))
                fm = fm.replace(a_rest=fm.a_rest * strength,
                                alpha_a=fm.alpha_a * fatigability,
                                alpha_km=fm.alpha_km * fatigability,
                                alpha_tau1=fm.alpha_tau1 * fatigability)
                m = dataclasses.replace(m, force_model=fm,
                                        max_voluntary_force=m.max_voluntary_force * strength,
                                        **changes)
            new.append(m)
        return dataclasses.replace(self, muscles=tuple(new), name=name or self.name)

    def isometric(self, angles: Mapping[str, float] | None = None) -> VirtualPatient:
        """A copy with every joint held fixed (dynamometer), optionally at given angles (rad)."""
        angles = dict(angles or {})
        joints = tuple(dataclasses.replace(j, fixed=True,
                                           initial_angle=angles.get(j.name, j.initial_angle))
                       for j in self.joints)
        return dataclasses.replace(self, joints=joints)

    def start(self, *, sfreq: float, seed: int | None = None, emg: bool = True,
              electrode_areas: Mapping[str, float] | None = None,
              muscles: tuple[str, ...] | None = None, hmax: float = 1e-3,
              states: bool = True) -> PatientStream:
        """A streaming simulation starting at rest at t = 0.

        Parameters
        ----------
        sfreq : float
            Output sampling rate, Hz.
        seed : int, optional
            Seed of the EMG noise.
        emg : bool
            Synthesise EMG channels.
        electrode_areas : mapping, optional
            Electrode area (m^2) per channel name; the nerve model's reference area otherwise.
        muscles : tuple of str, optional
            Muscles to simulate (all by default).
        hmax : float
            Longest internal integration step, s.
        states : bool
            Output the model states (CN, A, Km, tau1, voluntary activation) besides the force;
            without them long runs write less memory.
        """
        from opennmes.physiology._stream import PatientStream

        return PatientStream(self, sfreq=sfreq, seed=seed, emg=emg,
                             electrode_areas=electrode_areas, muscles=muscles, hmax=hmax,
                             states=states)
