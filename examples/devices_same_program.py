"""Run the same program on the simulated stimulator and on a stimulator by URL.

    python examples/devices_same_program.py                          # sim:// + emulated RehaStim 2
    python examples/devices_same_program.py rehastim2:///dev/ttyUSB0 # sim:// + a real RehaStim 2
    python examples/devices_same_program.py p24:///dev/ttyACM0       # sim:// + a real P24

Moving a script from sim:// to a device is a change of URL: the loop below is the same for
every backend. Only the patient's response (force) is simulated; on hardware you get the
device's record of delivered pulses.
"""

from __future__ import annotations

import sys

from opennmes.devices import DeviceFault, VirtualClock, open_stimulator
from opennmes.stim import PulseSchedule, load_program_text

PROGRAM = """
name: quadriceps, both legs (works on RehaStim 2 and P24)
channels:
  - name: right quadriceps
    electrode: {area: 80 cm2, site: quadriceps, side: right}
    frequency: 25 Hz          # RehaStim 2: 1 ms + n x 0.5 ms periods; P24: 0.25 ms steps
    pulse_width: 300 us
    interphase_gap: 100 us    # RehaStim 2 pulses always have a 100 us gap
    amplitude: 30 mA
    ramp_up: 1 s
    on: 2 s
    ramp_down: 0.5 s
    off: 1.5 s
  - name: left quadriceps
    electrode: {area: 80 cm2, site: quadriceps, side: left}
    frequency: 25 Hz
    pulse_width: 300 us
    interphase_gap: 100 us
    amplitude: 30 mA
    ramp_up: 1 s
    on: 2 s
    ramp_down: 0.5 s
    off: 1.5 s
duration: 10 s
"""


def play(url: str, schedule_source: str = PROGRAM, **kwargs: object) -> PulseSchedule:
    """Deliver the program in 100 ms chunks and return what the device delivered."""
    program = load_program_text(schedule_source)
    with open_stimulator(url, **kwargs) as stim:
        stim.add_listener(lambda e: print(f"  {e}") if isinstance(e, DeviceFault) else None)
        stim.configure(program)
        schedule = stim.quantize(program.expand())  # whole mA (RehaStim 2) / 0.5 mA (P24)
        stim.start()
        n = int(round(program.duration_s * 10))
        for i in range(n):
            stim.deliver(schedule.window(i / 10, (i + 1) / 10), until=(i + 1) / 10)
        stim.finish()  # zero output after the last window, then stop
        delivered = stim.delivered()
        if url.startswith("sim://"):
            sig = stim.signals()  # type: ignore[attr-defined]
            if sig is not None:
                f = sig.data[list(sig.names).index("quadriceps.force")]
                print(f"  peak quadriceps force on the virtual patient: {f.max():.0f} N")
    print(f"{url}: {len(delivered)} pulses delivered "
          f"(schedule: {int((schedule.amplitude > 0).sum())})")
    return delivered


def main() -> None:
    play("sim://healthy-adult?sfreq=1000&seed=1", clock=VirtualClock())
    if len(sys.argv) > 1:
        play(sys.argv[1])
        return
    from opennmes.devices.sciencemode2 import RehaStim2Emulator

    with RehaStim2Emulator() as emu:  # the same bytes a RehaStim 2 would get
        delivered = play(f"rehastim2://{emu.port}")
        record = emu.record.schedule(delivered.channel_names, {0: 0, 1: 1})
        print(f"emulator recorded {len(record)} pulses; equal to the driver's record: "
              f"{record.equals(delivered, atol_t=1e-9, atol_a=1e-12)}")


if __name__ == "__main__":
    main()
