"""Stimulation design: pulse trains that make a force model track a target.

Given a target force profile (:class:`Target`, :func:`read_target`), a Ding-family model
(Ding 2003 times; Ding 2007 times and widths; Hmed 2018 times and amplitudes; with or without
fatigue, or a virtual patient's muscle), a device (its time grid, ranges, steps and safety
profile) and an objective (tracking, fatigue, charge), :func:`design_train` returns a
:class:`DesignResult` whose ``schedule`` is a :class:`~opennmes.schedule.PulseSchedule` on the
device's grid that has passed its safety guard. CasADi builds the problem from the models'
exact pulse-to-pulse solution and IPOPT solves it. See ``docs/design.md``.
"""

from opennmes.design._mpc import DECISIONS, MpcStep, RecedingHorizon
from opennmes.design._target import Target, read_target
from opennmes.design._task import HoldResult, HoldTask, constant_hold, design_hold, hold_report
from opennmes.design._train import (
    DEFAULT_WEIGHTS,
    OBJECTIVES,
    DesignResult,
    WidthsResult,
    design_train,
    design_widths,
    device_program,
    predict,
    time_grid,
)

__all__ = ["DEFAULT_WEIGHTS", "OBJECTIVES", "DesignResult", "Target", "design_train", "predict",
           "read_target", "time_grid"]
__all__ += ["HoldResult", "HoldTask", "WidthsResult", "constant_hold", "design_hold",
            "design_widths", "device_program", "hold_report"]
__all__ += ["DECISIONS", "MpcStep", "RecedingHorizon"]
