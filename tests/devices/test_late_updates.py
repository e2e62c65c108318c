"""An update the device reads late: the record holds what the device played, or flags it.

A busy device (or a loaded host's emulator) can read an amplitude update after the start of
the period the host meant it for, and play that period with the old values. The host cannot
see when the device read it, only that it was between the send and the acknowledgement: the
pulses of a period that starts in that span are *unconfirmed*, never recorded as delivered
with a value the device may not have played. ``slow_reads`` makes the emulated device act on
its input 20 ms late, which on these 25-40 Hz ramps lands many updates a period late.
"""

from __future__ import annotations

import pytest

from opennmes.devices import open_stimulator
from opennmes.devices.sciencemode2 import RehaStim2Emulator
from opennmes.devices.sciencemode4 import P24Emulator
from opennmes.stim import load_program_text

from .conftest import P24_PROGRAM, RS2_PROGRAM, check_record, match, stream

DEVICES = {"rehastim2": (RehaStim2Emulator, RS2_PROGRAM), "p24": (P24Emulator, P24_PROGRAM)}

@pytest.mark.parametrize("kind", DEVICES)
def test_late_updates_are_flagged_never_recorded_wrong(kind: str) -> None:
    emu_cls, text = DEVICES[kind]
    prog = load_program_text(text)
    with emu_cls() as emu, open_stimulator(f"{kind}://{emu.port}") as stim:
        # after the start, the device acts on what it reads 20 ms late
        stream(stim, prog, 12, tail=0.05,
               after=lambda i: i == 0 and emu.slow_reads(0.02, reads=10_000))
        stim.stop()
        emu.slow_reads(0.0, reads=0)
        sched = stim.quantize(prog.expand())
        delivered, unconfirmed = stim.delivered(), stim.unconfirmed()
        played = emu.record.schedule(delivered.channel_names, {0: 0, 1: 1, 2: 2})
    assert len(unconfirmed) > 0, "no update was late: the test did not test anything"
    check_record(delivered, unconfirmed, played)
    # the test tested something: the device played some periods with the old values
    late = sum(match(sched, int(c), float(t), float(a)) is None
               for c, t, a in zip(played.channel, played.t, played.amplitude, strict=True))
    assert late > 0
