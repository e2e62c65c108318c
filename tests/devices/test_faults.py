"""Injected faults: each ends in recovery within the protocol's rules or in a stop with a
DeviceError, and the emulated output is zero at the end in every case; a host that stops
talking makes the emulated device stop by its watchdog (RehaStim 2: 1200 ms, PDF Table 7;
P24: 1.5 s without MlGetCurrentData, science_mode_4 README)."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import serial

from opennmes.devices import DeviceFault, Disconnected, open_stimulator
from opennmes.devices._emulator import PtyEmulator
from opennmes.devices.sciencemode2 import RehaStim2Emulator
from opennmes.devices.sciencemode2 import protocol as p2
from opennmes.devices.sciencemode4 import P24Emulator
from opennmes.devices.sciencemode4 import protocol as p4
from opennmes.errors import DeviceError
from opennmes.stim import load_program_text

from .conftest import P24_PROGRAM, RS2_PROGRAM, diff

DEVICES = {
    "rehastim2": (RehaStim2Emulator, RS2_PROGRAM, {0: 0, 1: 1}),
    "p24": (P24Emulator, P24_PROGRAM, {0: 0, 1: 1, 2: 2}),
}

Fault = Callable[[PtyEmulator], None]
RECOVERABLE: dict[str, Fault] = {
    "dropped bytes": lambda e: e.drop_bytes(3),
    "corrupted byte": lambda e: e.corrupt_bytes(1),
    "short delay": lambda e: e.delay_replies(0.02, frames=2),
}
FATAL: dict[str, tuple[Fault, str]] = {
    "long delay": (lambda e: e.delay_replies(0.5, frames=50),
                   "acknowledg|disconnected|stopped answering"),
    "unplugged": (lambda e: e.unplug(), "disconnected"),
    "electrode error": (lambda e: e.electrode_error(0), "electrode"),
    "emergency switch": (lambda e: e.emergency_switch(), "emergency|stopped"),
}


def _run(device: str, fault: Fault, *, settle: bool, fault_at: float = 0.35
         ) -> tuple[Any, PtyEmulator, Exception | None]:
    emu_cls, text, cmap = DEVICES[device]
    prog = load_program_text(text)
    emu = emu_cls()
    emu.start()
    err: Exception | None = None
    try:
        with open_stimulator(f"{device}://{emu.port}", ack_timeout=0.05) as stim:
            stim.configure(prog)
            stim.start()
            sched = stim.quantize(prog.expand())
            injected = False
            try:
                for i in range(12):
                    stim.deliver(sched.window(i / 10, (i + 1) / 10),
                                 until=(i + 1) / 10 + (i == 11) / 20)
                    if not injected and (i + 1) * 0.1 >= fault_at:
                        fault(emu)
                        injected = True
                if settle:
                    time.sleep(0.3)  # a keep-alive poll sees device-side stops (P24)
                    stim.check()
            except DeviceError as exc:
                err = exc
            stim.stop()  # the record is final once the device has stopped
            delivered = stim.delivered()
            events = stim.events()
            stats = {"retried": stim.retried,  # type: ignore[attr-defined]
                     "lost_queries": stim.polls_sent - stim.polls_answered,  # type: ignore
                     "max_rt": max(stim.round_trips)}  # type: ignore[attr-defined]
    finally:
        zero = emu.output_is_zero
        emu.close()
    assert zero, "the emulated stimulator still delivers current"
    return (delivered, events, stats), emu, err


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", RECOVERABLE)
def test_recoverable_faults_recover_and_records_agree(device: str, name: str) -> None:
    (delivered, _, stats), emu, err = _run(device, RECOVERABLE[name], settle=False)
    assert err is None, f"{name} should be recovered by a retry, got {err}"
    if name == "short delay":
        assert stats["max_rt"] >= 0.02  # the fault happened; the ack came within the timeout
    else:
        # the fault was seen, and the command resent or the lost status query asked again
        assert emu.bad_frames_in >= 1
        assert stats["retried"] >= 1 or stats["lost_queries"] >= 1
    names = delivered.channel_names
    record = emu.record.schedule(names, DEVICES[device][2])
    # the retried command arrived later, but both sides agree on every pulse
    assert len(record) > 20
    assert record.equals(delivered, atol_t=1e-9, atol_a=1e-12), diff(record, delivered)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", FATAL)
def test_fatal_faults_stop_with_a_device_error(device: str, name: str) -> None:
    fault, match = FATAL[name]
    (delivered, events, _), emu, err = _run(device, fault, settle=True)
    assert isinstance(err, DeviceError)
    assert re.search(match, str(err)), str(err)
    assert any(isinstance(e, DeviceFault | Disconnected) for e in events)
    # nothing recorded after the fault by the device; the host's record ends there too
    record = emu.record
    assert len(record) > 0
    last_device = record.schedule().t.max()
    assert last_device < 0.35 + 0.8  # retries of queued commands take time
    assert delivered.t.max() < 0.35 + 0.9


def test_rehastim2_watchdog_stops_a_silent_host() -> None:
    """Raw protocol: Init/InitAck, channel list started at 20 mA, then silence."""
    with RehaStim2Emulator() as emu, serial.Serial(emu.port, 460800, timeout=0.05) as ser:
        dec = p2.FrameDecoder()
        t_end = time.monotonic() + 2.0
        init = None
        while init is None and time.monotonic() < t_end:
            dec.feed(ser.read(64))
            init = dec.next_frame()
        assert init is not None and init.command == p2.Command.INIT
        ser.write(p2.encode(p2.InitAck(0), init.packet_number))
        ser.write(p2.encode(p2.InitChannelListMode(0, 1, 0, 13, 78, 0), 0))  # 40 ms
        ser.write(p2.encode(p2.StartChannelListMode((p2.ChannelEntry(0, 200, 20),)), 1))
        t_last = time.monotonic()
        time.sleep(1.8)
        t_end = time.monotonic() + 30.0  # generous: a loaded machine may delay the emulator
        while emu.watchdog_stops == 0 and time.monotonic() < t_end:
            time.sleep(0.05)
        assert emu.watchdog_stops == 1 and emu.output_is_zero
        rec = emu.record.schedule()
        # pulses every 40 ms until the 1.2 s watchdog fired, none after
        assert 1.1 < rec.t.max() <= 1.2 + 0.04 + (time.monotonic() - t_last - 1.8)
        np.testing.assert_allclose(np.diff(rec.t), 0.040, atol=1e-9)
        assert emu.inits_sent >= 2  # the device restarted its Init sequence


def test_p24_watchdog_stops_a_silent_host() -> None:
    with P24Emulator() as emu, serial.Serial(emu.port, 115200, timeout=0.05) as ser:
        pts = (p4.Point.from_ma(200, 20), p4.Point.from_ma(200, -20))
        ser.write(p4.encode(p4.MlInit(True), 0))
        ser.write(p4.encode(p4.MlUpdate(((0, p4.MlChannelConfig(0, 50, False, pts)),)), 1))
        time.sleep(2.0)
        assert emu.watchdog_stops == 1 and emu.output_is_zero
        rec = emu.record.schedule()
        assert 1.4 < rec.t.max() <= 1.5 + 0.025
        np.testing.assert_allclose(np.diff(rec.t), 0.025, atol=1e-9)


def test_driver_that_dies_without_stop_is_stopped_by_the_watchdog() -> None:
    prog = load_program_text(RS2_PROGRAM)
    with RehaStim2Emulator() as emu:
        stim = open_stimulator(f"rehastim2://{emu.port}")
        stim.configure(prog)
        stim.start()
        stim.deliver(stim.quantize(prog.expand()).window(0, 0.3), until=0.3)
        # the host process "hangs": keep-alive and link stop, no Stop command is sent
        stim._ka_stop.set()  # type: ignore[attr-defined]
        time.sleep(1.7)
        assert emu.watchdog_stops == 1 and emu.output_is_zero
        stim._state = "closed"  # type: ignore[attr-defined]
        stim._close()  # type: ignore[attr-defined]
