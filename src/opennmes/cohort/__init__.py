"""Virtual cohorts: sweeps of programs x virtual patients on a Dask cluster.

A spec (:func:`load_spec`, ``docs/cohort.md``) names programs, groups of patients drawn from
presets with seeded spreads, the simulated time and the metrics. :func:`run_cohort` cuts it
into tasks (:func:`build_tasks`; each a batch of patients with a ``kind`` of work), runs them on
a local cluster or at a scheduler address, and returns one table row per program x patient x
stimulated muscle; :func:`plot_cohort` draws it. :func:`run_recovery` runs the identification
recovery study (synthetic participants, coverage of the 95 % intervals) on the same engine.
"""

from opennmes.cohort._engine import (
    COLUMNS,
    TASK_KINDS,
    Task,
    build_tasks,
    check_target,
    distribute,
    run_cohort,
    run_task,
    summary,
)
from opennmes.cohort._metrics import METRIC_DISPLAY, METRICS, contractions
from opennmes.cohort._plot import plot_cohort
from opennmes.cohort._recovery import (
    RECOVERY_COLUMNS,
    RecoveryTask,
    check_recovery,
    recovery_summary,
    run_recovery,
    run_recovery_task,
)
from opennmes.cohort._spec import (
    SPREADS,
    CohortSpec,
    PatientDraw,
    PatientGroup,
    ProgramEntry,
    load_spec,
    parse_spec,
)

__all__ = [
    "COLUMNS",
    "METRICS",
    "METRIC_DISPLAY",
    "RECOVERY_COLUMNS",
    "SPREADS",
    "TASK_KINDS",
    "CohortSpec",
    "PatientDraw",
    "PatientGroup",
    "ProgramEntry",
    "RecoveryTask",
    "Task",
    "build_tasks",
    "check_recovery",
    "check_target",
    "contractions",
    "distribute",
    "load_spec",
    "parse_spec",
    "plot_cohort",
    "recovery_summary",
    "run_cohort",
    "run_recovery",
    "run_recovery_task",
    "run_task",
    "summary",
]
