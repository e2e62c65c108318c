"""Virtual patient presets with their sources.

Every preset has the same seven muscles (quadriceps, tibialis anterior, wrist extensors,
deltoid, hamstrings, gastrocnemius, erector spinae) and three joints (knee, ankle, wrist), so
any protocol of the library can run on any preset (a low-back TENS channel reaches the erector
spinae). Tags follow the reference file: [V-code]/[V-pub] verified, [D] derived, [U] a modelling
choice or an unverified value (keep it configurable; never a fixture).

Force models: Ding 2003 quadriceps parameters with the Ding 2000 fatigue model (cocofest
values in SI, [V-code]); other muscles scale the force (``a_rest``) and divide ``alpha_km``,
``alpha_tau1`` by the same factor so the relative fatigue dynamics stay those of Ding [U].
Ding's force is the isometric force measured at the ankle strap for the quadriceps, so its
moment arm is the lever of that strap (0.33 m [U]). "Full recruitment" of the nerve model is
the part of the pool a surface electrode reaches (maximum evoked torque is typically well below
MVC [U]); ``max_voluntary_force`` is the voluntary maximum at the same point.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

from opennmes.errors import ModelError
from opennmes.physiology._ding import DingParameters, default_parameters
from opennmes.physiology._emg import EmgModel
from opennmes.physiology._mechanics import Joint
from opennmes.physiology._nerve import NerveModel
from opennmes.physiology._patient import Muscle, VirtualPatient

__all__ = ["PRESETS", "get_preset"]

_G = 9.81


def _ding(scale: float = 1.0, fatigability: float = 1.0) -> DingParameters:
    p = default_parameters("ding2003", fatigue=True)
    return p.replace(a_rest=p.a_rest * scale, alpha_a=p.alpha_a * fatigability,
                     alpha_km=p.alpha_km * fatigability / scale,
                     alpha_tau1=p.alpha_tau1 * fatigability / scale)


def _muscles() -> tuple[Muscle, ...]:
    return (
        Muscle(
            name="quadriceps", force_model=_ding(1.0),
            # rheobase/chronaxie: transcutaneous motor-point values are subject dependent,
            # "a few mA to ~20 mA" and 0.1-0.7 ms [U]
            nerve=NerveModel(rheobase=0.010, chronaxie=0.0003, area_ref=50e-4),
            emg=EmgModel(mwave_max=5e-3, mwave_latency=4e-3),
            max_voluntary_force=650.0,  # ~215 N m knee MVC at 0.33 m [U]
            joint="knee", moment_arm=0.33, theta_opt=0.0, length_gain=-0.25,
        ),
        Muscle(
            name="tibialis_anterior", force_model=_ding(400.0 / 311.0),
            nerve=NerveModel(rheobase=0.008, chronaxie=0.0003, area_ref=25e-4),
            emg=EmgModel(mwave_max=4e-3, mwave_latency=3.5e-3),
            # F_max 600 N, moment arm 3.7 cm, l_opt ~9 cm: drop-foot model table [V-code]
            max_voluntary_force=600.0,
            joint="ankle", moment_arm=0.037, theta_opt=0.0, length_gain=-0.037 / 0.09,
        ),
        Muscle(
            name="wrist_extensors", force_model=_ding(200.0 / 311.0),
            nerve=NerveModel(rheobase=0.006, chronaxie=0.0003, area_ref=36e-4),
            emg=EmgModel(mwave_max=3e-3, mwave_latency=3e-3),
            max_voluntary_force=300.0,
            joint="wrist", moment_arm=0.015, theta_opt=0.0, length_gain=-0.3,
        ),
        Muscle(
            name="deltoid", force_model=_ding(250.0 / 311.0),
            nerve=NerveModel(rheobase=0.010, chronaxie=0.0003, area_ref=25e-4),
            emg=EmgModel(mwave_max=4e-3, mwave_latency=4e-3),
            max_voluntary_force=400.0,
        ),
        # antagonists and trunk [U: scale factors chosen, not measured]
        Muscle(
            name="hamstrings", force_model=_ding(150.0 / 311.0),
            nerve=NerveModel(rheobase=0.012, chronaxie=0.0003, area_ref=50e-4),
            emg=EmgModel(mwave_max=4e-3, mwave_latency=4.5e-3),
            max_voluntary_force=350.0,  # at the ankle strap, like the quadriceps
            joint="knee", moment_arm=-0.33, theta_opt=0.0, length_gain=0.2,
        ),
        Muscle(
            name="gastrocnemius", force_model=_ding(600.0 / 311.0),
            nerve=NerveModel(rheobase=0.010, chronaxie=0.0003, area_ref=50e-4),
            emg=EmgModel(mwave_max=5e-3, mwave_latency=4.5e-3),
            max_voluntary_force=1500.0,
            joint="ankle", moment_arm=-0.05, theta_opt=0.0, length_gain=0.05 / 0.06,
        ),
        Muscle(
            name="erector_spinae", force_model=_ding(200.0 / 311.0),
            nerve=NerveModel(rheobase=0.012, chronaxie=0.0003, area_ref=50e-4),
            emg=EmgModel(mwave_max=2e-3, mwave_latency=4e-3),
            max_voluntary_force=600.0,
        ),
    )


def _joints(spastic_ankle: float = 0.0, spastic_wrist: float = 0.0) -> tuple[Joint, ...]:
    return (
        # seated knee pendulum: theta = extension from hanging (90 deg flexion).
        # m = 4.6 kg, l = 0.26 m, J = 0.46 kg m^2 for 75 kg (Winter's tables [U], [D]);
        # K = 15.3 N m/rad, B = 0.41 N m s/rad relaxed knee pendulum test [V-pub]
        Joint(name="knee", inertia=0.46, gravity_moment=4.6 * _G * 0.26, gravity_offset=0.0,
              stiffness=15.3, rest_angle=0.0, damping=0.41, angle_min=-0.6,
              angle_max=math.pi / 2),
        # ankle dorsiflexion, seated, shank vertical: J = 0.0197 kg m^2, m_F = 1.0275 kg,
        # c_F = 0.1145 m, B = 0.82 (drop-foot model table [V-code]); K = 8.1 N m/rad
        # linearised Riener & Edrich 1999 passive moment at 90 deg knee flexion [U], [D]
        Joint(name="ankle", inertia=0.0197, gravity_moment=1.0275 * _G * 0.1145,
              gravity_offset=math.pi / 2, stiffness=8.1, rest_angle=-0.014, damping=0.82,
              angle_min=-0.87, angle_max=0.35, limit_stiffness=100.0,
              spasticity_gain=spastic_ankle, spasticity_threshold=0.5),
        # wrist extension, forearm pronated and horizontal: hand 0.45 kg, COM 0.07 m [U]
        Joint(name="wrist", inertia=0.0035, gravity_moment=0.45 * _G * 0.07,
              gravity_offset=math.pi / 2, stiffness=1.5, rest_angle=0.0, damping=0.03,
              angle_min=-1.2, angle_max=1.2, limit_stiffness=20.0,
              spasticity_gain=spastic_wrist, spasticity_threshold=0.5),
    )


_CHANNEL_MAP = {
    "quadriceps_femoris": "quadriceps", "vastus_medialis": "quadriceps",
    "vastus_lateralis": "quadriceps", "rectus_femoris": "quadriceps", "thigh": "quadriceps",
    "anterior_thigh": "quadriceps",
    "peroneal_nerve": "tibialis_anterior", "common_peroneal_nerve": "tibialis_anterior",
    "anterior_tibialis": "tibialis_anterior", "dorsiflexors": "tibialis_anterior",
    "wrist_extensor": "wrist_extensors", "forearm_extensors": "wrist_extensors",
    "finger_extensors": "wrist_extensors", "forearm": "wrist_extensors",
    "extensor_carpi_radialis": "wrist_extensors",
    "shoulder": "deltoid", "supraspinatus": "deltoid", "posterior_deltoid": "deltoid",
    "hamstring": "hamstrings", "posterior_thigh": "hamstrings",
    "calf": "gastrocnemius", "triceps_surae": "gastrocnemius", "soleus": "gastrocnemius",
    "plantarflexors": "gastrocnemius",
    "low_back": "erector_spinae", "lumbar": "erector_spinae", "paraspinals": "erector_spinae",
    "back": "erector_spinae",
}

_COMMON_SOURCES = (
    "Ding J, Wexler AS, Binder-Macleod SA (2003) J Electromyogr Kinesiol 13:575-588 "
    "(force model; parameters as in pyomeca/cocofest, SI)",
    "Ding J, Wexler AS, Binder-Macleod SA (2000) J Appl Physiol 89:1322 (fatigue model; "
    "coefficients corrected in Doll et al. 2015)",
    "Thelen DG (2003) J Biomech Eng 125:70 (force-length); De Groote F et al. (2016) Ann "
    "Biomed Eng 44:2922 (force-velocity)",
    "Ferrarin M, Pedotti A (2000) IEEE Trans Rehabil Eng 8:342 (knee pendulum structure); "
    "relaxed-knee K and B from a published pendulum study (reference section 3.5)",
    "Gregory CM, Bickel CS (2005) Phys Ther 85:358 (non-selective NMES recruitment)",
)


def _healthy() -> VirtualPatient:
    return VirtualPatient(
        name="healthy-adult",
        description="Healthy adult (75 kg): Ding 2003 quadriceps with fatigue, full voluntary "
                    "drive, no spasticity.",
        muscles=_muscles(), joints=_joints(), channel_map=dict(_CHANNEL_MAP),
        sources=_COMMON_SOURCES,
    )


def _post_surgery() -> VirtualPatient:
    p = _healthy().personalise(
        "quadriceps", strength=0.6, voluntary_capacity=0.75, name="post-surgery")
    return dataclasses.replace(
        p, description="Weeks after knee surgery (TKA, ACL): atrophied, weak quadriceps "
        "(force x0.6) with arthrogenic inhibition of voluntary drive (75 %).",
        sources=_COMMON_SOURCES + (
            "Mizner RL et al. (2005) J Bone Joint Surg Am 87:1047 (quadriceps strength about "
            "60 % lower one month after TKA, mostly activation failure and atrophy) [U: "
            "factors chosen to represent it]",))


def _stroke() -> VirtualPatient:
    p = _healthy().personalise(strength=0.7, fatigability=1.3, voluntary_capacity=0.3,
                               name="stroke")
    return dataclasses.replace(
        p, joints=_joints(spastic_ankle=0.8, spastic_wrist=0.15),
        description="Chronic hemiparetic stroke, paretic side: weak (x0.7), faster fatigue "
                    "(x1.3), voluntary drive 30 %, velocity-dependent spasticity resisting "
                    "ankle dorsiflexion and wrist extension.",
        sources=_COMMON_SOURCES + (
            "Lance JW (1980) spasticity as velocity-dependent increase in tonic stretch "
            "reflexes (model structure) [U: gains chosen]",))


def _icu() -> VirtualPatient:
    p = _healthy().personalise(strength=0.5, fatigability=2.0, voluntary_capacity=0.2,
                               name="icu")
    return dataclasses.replace(
        p, description="Critically ill, ventilated (ICU-acquired weakness): low muscle mass "
                       "(force x0.5), fast fatigue (x2), little voluntary drive (20 %).",
        sources=_COMMON_SOURCES + (
            "Puthucheary ZA et al. (2013) JAMA 310:1591 (rectus femoris cross-section falls "
            "about 18 % in 10 days) [U: factors chosen to represent it]",))


#: Preset factories by name.
PRESETS: dict[str, Callable[[], VirtualPatient]] = {
    "healthy-adult": _healthy,
    "post-surgery": _post_surgery,
    "stroke": _stroke,
    "icu": _icu,
}


def get_preset(name: str) -> VirtualPatient:
    """A virtual patient preset by name (see ``PRESETS``).

    Raises
    ------
    ModelError
        For an unknown name; the message lists the presets.
    """
    try:
        return PRESETS[name]()
    except KeyError:
        raise ModelError(f"unknown patient preset {name!r}; presets: {sorted(PRESETS)}") \
            from None
