"""Imported once by the session fork server (:func:`opennmes.session.supervise`): loads the
session, device, store and physiology modules and the virtual patient's compiled kernels, so
that each session process forked from it starts in milliseconds and its first window is not
late."""

from __future__ import annotations

import logging

import opennmes.devices
import opennmes.session
import opennmes.stim
import opennmes.store  # noqa: F401

log = logging.getLogger(__name__)


def _warm_up() -> None:
    try:
        from opennmes.physiology import get_preset
        from opennmes.schedule import PulseSchedule

        stream = get_preset("healthy-adult").start(sfreq=500.0, seed=0)
        stream.advance(PulseSchedule.from_arrays([0.0], [0.01], [3e-4],
                                                 channel_names=("warm-up",)), 0.04)
    except Exception:  # noqa: BLE001 - only a speed-up
        log.warning("virtual patient warm-up failed", exc_info=True)


_warm_up()
