"""I24 (ScienceMode4 dyscom): the emulator on a pseudo-terminal answers the field's independent
client science_mode_4 0.0.23 (its own start-up and live measurement, unchanged), and our driver
measures through it: every rate of the output rate codes, every sample sent received in order,
lost and corrupted frames counted and filled, the electrode status, an unreadable stream, a
silent and an unplugged device, refusals with their result bytes. No wall-clock asserts."""

from __future__ import annotations

import asyncio
import struct
import time
from typing import Any

import numpy as np
import pytest

from opennmes.devices.sciencemode4 import I24, I24Emulator
from opennmes.devices.sciencemode4 import dyscom as dl
from opennmes.devices.sciencemode4 import protocol as p
from opennmes.errors import DeviceError, DeviceTimeoutError, ProtocolError
from opennmes.signals import Signals

sm4 = pytest.importorskip("science_mode_4")
from science_mode_4.dyscom.dyscom_send_live_data import PacketDyscomSendLiveData  # noqa: E402
from science_mode_4.dyscom.dyscom_types import (  # noqa: E402
    DyscomGetOperationModeType,
    DyscomInitParams,
    DyscomPowerModulePowerType,
    DyscomPowerModuleType,
    DyscomSignalType,
)


def _wait_until(cond: Any, limit: float = 30.0) -> None:
    """Poll ``cond`` (no timing is asserted; ``limit`` only ends a hung test)."""
    end = time.monotonic() + limit
    while not cond():
        assert time.monotonic() < end, "condition never met"
        time.sleep(0.01)


def _drain(dev: I24) -> list[Any]:
    out = []
    while (b := dev.read()) is not None:
        out.append(b)
    return out


def test_the_independent_client_measures_live_data_from_the_emulator() -> None:
    """science_mode_4's DeviceI24: initialize (operation mode, device id, version), power the
    measurement module, DlInit with its default parameters (bioimpedance and EMG 1 at
    4000 samples/s), DlStart, live frames read by its own parser, DlStop, battery."""
    ramp = Signals(np.arange(4000.0)[None, :] * 1e-6, 4000.0, ("EMG",), ("V",), 0.0)
    seen: dict[str, Any] = {}

    async def session(dev: Any) -> None:
        await dev.initialize()
        dys = dev.get_layer_dyscom()
        seen["mode0"] = await dys.get_operation_mode()
        seen["id"] = await dys.get_device_id()
        seen["fw"] = await dys.get_firmware_version()
        seen["power"] = await dys.power_module(DyscomPowerModuleType.MEASUREMENT,
                                               DyscomPowerModulePowerType.SWITCH_ON)
        seen["init"] = await dys.init(DyscomInitParams())
        await dys.start()
        live: list[PacketDyscomSendLiveData] = []
        while len(live) < 400:
            ack = dys.packet_buffer.get_packet_from_buffer()
            if isinstance(ack, PacketDyscomSendLiveData):
                live.append(ack)
            elif ack is None:
                await asyncio.sleep(0.005)
        seen["live"] = live
        seen["mode1"] = await dys.get_operation_mode()
        await dys.stop()
        seen["battery"] = await dys.get_battery()

    with I24Emulator(ramp, device_id="I24-42", firmware="2.1.0", battery_percent=77) as emu:
        conn = sm4.SerialPortConnection(emu.port)
        conn.open()
        try:
            asyncio.run(session(sm4.DeviceI24(conn)))
        finally:
            conn.close()
        assert emu.mode == dl.OperationMode.IDLE
    assert seen["mode0"] == DyscomGetOperationModeType.IDLE
    assert seen["id"] == "I24-42"
    assert seen["fw"] == "2.1.0"
    assert seen["power"].module == DyscomPowerModuleType.MEASUREMENT
    assert int(seen["init"].frequency_out) == 4  # 4000 samples/s
    assert seen["mode1"] == DyscomGetOperationModeType.LIVE_MEASURING
    live = seen["live"]
    assert [x.time_offset for x in live] == list(range(400))
    for x in live:
        assert x.number_of_channels == 2 and not x.status_error
        bi, emg = x.samples
        assert bi.signal_type == DyscomSignalType.BI and bi.value == 500.0
        assert emg.signal_type == DyscomSignalType.EMG_1
        assert emg.value == pytest.approx(np.float32(x.time_offset * 1e-6), rel=1e-6)
    assert seen["battery"].percentage == 77


@pytest.mark.parametrize("rate", sorted(dl.SAMPLE_RATES.values()))
def test_every_rate_streams_every_sample_in_order(rate: int) -> None:
    """Each output rate of the protocol (250 to 32 000 samples/s): the DlInitAck says it, and
    every sample the emulator sent until DlStop arrives, numbered without a gap. (At the
    highest rates two Python threads on a loaded machine may lag the stream: the wait for
    DlStop's acknowledgement, queued behind the samples, is long here; see bench/.)"""
    with I24Emulator(seed=rate) as emu, I24(emu.port, timeout=30.0, silence=30.0) as dev:
        assert dev.device_id == "EMU-I24-01" and dev.firmware == "1.0.0"
        dev.start(("emg1", "emg2", "bi"), rate)
        assert emu.rate == rate and emu.config is not None
        blocks: list[Any] = []
        _wait_until(lambda: (blocks.extend(_drain(dev)) or True)
                    and sum(b.n_samples for b in blocks) >= min(rate // 5, 2000))
        dev.stop()
        sent = emu.sent
        _wait_until(lambda: (blocks.extend(_drain(dev)) or True)
                    and sum(b.n_samples for b in blocks) >= sent)
    first = [b.first for b in blocks]
    n = [b.n_samples for b in blocks]
    assert first[0] == 0 and all(a + k == c for a, k, c in zip(first, n, first[1:],
                                                                strict=False))
    assert sum(n) == sent and dev.missing == 0 and dev.protocol_errors == 0
    assert all(b.sfreq == rate for b in blocks)
    values = np.hstack([b.values for b in blocks])
    assert values.shape == (3, sent)
    np.testing.assert_array_equal(values[2], 500.0)
    assert 1e-6 < np.std(values[0]) < 2e-5  # the emulator's 5 uV rest noise, as float32
    assert not np.hstack([b.status for b in blocks]).any()


def test_lost_and_corrupted_frames_are_counted_and_filled() -> None:
    ramp = Signals(np.arange(1000.0)[None, :], 1000.0, ("EMG",), ("V",), 0.0)
    with I24Emulator(ramp) as emu, I24(emu.port) as dev:
        dev.start(("emg1",), 1000)
        _wait_until(lambda: emu.sent > 100)
        emu.drop_frames(5)
        emu.corrupt_frames(3)
        _wait_until(lambda: emu.dropped == 5 and emu.corrupted == 3 and emu.sent > 400)
        dev.stop()
        sent = emu.sent
        blocks: list[Any] = []
        _wait_until(lambda: (blocks.extend(_drain(dev)) or True)
                    and sum(b.n_samples for b in blocks) >= sent - 1)
    v = np.hstack([b.values for b in blocks])[0]
    miss = np.concatenate([b.missing for b in blocks])
    assert dev.protocol_errors == 3 and dev.missing == 8 == miss.sum()
    assert isinstance(dev.last_protocol_error, ProtocolError)
    # every sample that arrived is the ramp at its index; a missing one holds the last value
    k = np.arange(len(v))
    np.testing.assert_array_equal(v[~miss], k[~miss] % 1000)
    for i in np.flatnonzero(miss):
        assert v[i] == v[i - 1]


def test_electrode_status_per_channel() -> None:
    with I24Emulator() as emu, I24(emu.port) as dev:
        dev.start(("emg1", "emg2"), 500)
        _wait_until(lambda: emu.sent > 50)
        emu.electrode_off(1, "negative")
        _wait_until(lambda: emu.sent > 150)
        emu.electrode_on(1)
        emu.electrode_off(0, "both")
        _wait_until(lambda: emu.sent > 250)
        dev.stop()
        sent = emu.sent
        blocks: list[Any] = []
        _wait_until(lambda: (blocks.extend(_drain(dev)) or True)
                    and sum(b.n_samples for b in blocks) >= sent)
    status = np.hstack([b.status for b in blocks])
    s1 = np.flatnonzero(status[1])
    assert set(status[1][s1].tolist()) == {0b100} and np.all(np.diff(s1) == 1)
    s0 = np.flatnonzero(status[0])
    assert set(status[0][s0].tolist()) == {0b110} and s0[0] > s1[-1] and s0[-1] == sent - 1
    whole = type(blocks[0])(0, np.hstack([b.values for b in blocks]), status,
                            np.concatenate([b.missing for b in blocks]), 500.0, 0.0)
    assert whole.contact_lost().tolist() == [s0[0], s1[0]]


def test_unreadable_silent_and_unplugged_devices_are_errors() -> None:
    with I24Emulator() as emu, I24(emu.port, silence=0.2) as dev:
        dev.start(("emg1",), 1000)
        emu.corrupt_frames(10_000)
        _wait_until(lambda: dev.protocol_errors >= 60)
        with pytest.raises(DeviceError, match="unreadable: .* undecodable frames in a row") as ei:
            dev.read()
        assert isinstance(ei.value.__cause__, ProtocolError)
        emu.corrupt_frames(0)
        _wait_until(lambda: dev._bad_run == 0)
        _drain(dev)
        emu.go_silent()
        _wait_until(lambda: time.monotonic() - dev._last_frame > 0.3)
        with pytest.raises(DeviceTimeoutError, match=r"sent no samples for .* \(limit 0.2 s\)"):
            for _ in range(2):  # the samples sent before the silence, then the silence
                dev.read()
        emu.wake()
        _wait_until(lambda: time.monotonic() - dev._last_frame < 0.1)
        assert dev.read() is not None
        emu.unplug()
        _wait_until(lambda: dev._lost is not None)
        with pytest.raises(DeviceError, match="disconnected"):
            dev.read()
    dev.close()  # idempotent


def test_refusals_carry_result_bytes() -> None:
    with I24Emulator() as emu, I24(emu.port) as dev:
        with pytest.raises(DeviceError, match=r"refused DlStart: result 7 \(level not"):
            dev.request(dl.DlStart(), int(dl.DlCommand.START_ACK), "DlStart")
        with pytest.raises(DeviceError, match=r"refused MlInit: UnknownCommand: result 11"):
            dev.request(p.MlInit(True), int(p.Command.ML_INIT_ACK), "MlInit")
        with pytest.raises(DeviceError, match=r"result 11 \(invalid command\)"):
            dev.request(dl.DlGet(int(dl.GetType.FILESYSTEM_STATUS)),
                        int(dl.DlCommand.GET_ACK), "DlGet file system")
        bad = dl.DlInit.live((3,), 1000)
        with pytest.raises(DeviceError, match=r"refused DlInit: result 2 \(parameter error"):
            dev.request(dl.DlInit(bytes(8) + b"\x07" + bytes(17), (3,)),
                        int(dl.DlCommand.INIT_ACK), "DlInit")
        # a DlInit cut short: the acknowledgement of DlInit with result 2
        dev._link.write(p.encode_frame(9, 100, bad.payload()[:-1]))  # type: ignore[union-attr]
        _wait_until(lambda: any("undecodable command 100" in x for _, x in emu.log))
        with pytest.raises(DeviceError, match="the I24 outputs"):
            dev.start(("emg1",), 3000)
        assert dev.battery() == 90
        assert emu.mode == dl.OperationMode.IDLE


def test_a_measurement_left_running_is_stopped_on_open() -> None:
    with I24Emulator() as emu:
        with I24(emu.port) as dev:
            dev.start(("emg1",), 250)
            dev._link.close()  # type: ignore[union-attr]  # the host dies, the device goes on
            dev._link = None
        assert emu.mode == dl.OperationMode.LIVE_MEASURING
        with I24(emu.port):
            assert emu.mode == dl.OperationMode.IDLE


def test_every_message_encodes_and_decodes_to_itself() -> None:
    live = dl.DlSendLiveData(77, (dl.Sample(struct.unpack(">f", struct.pack(">f", 1e-4))[0],
                                            3, 2), dl.Sample(500.0, 2, 0)))
    msgs: list[Any] = [
        dl.DlInit.live((3, 9, 2), 250), dl.DlInitAck(0, bytes(26), "m1", 1, 8), dl.DlStart(),
        dl.DlStartAck(0), dl.DlStop(), dl.DlStopAck(0, 123), dl.DlStopAck(4), live,
        dl.DlGet(3), dl.DlGetAck(0, 0, (1, 50, 20, -5, 3900)), dl.DlGetAck(0, 3, 2),
        dl.DlGetAck(0, 5, "I24-1"), dl.DlGetAck(0, 2, 4), dl.DlGetAck(11, 1),
        dl.DlPowerModule(3, 1), dl.DlPowerModuleAck(0, 3, 1), dl.DlSendFile(2, b"abc"),
        dl.DlSys(1, "f.bin"), dl.DlSysAck(0, 1, 1, "f.bin"), dl.DlRaw(108, b"\x01\x02"),
    ]
    for m in msgs:
        assert dl.decode(p.decode_frame(dl.encode(m, 5))) == m, m
    assert dl.DlInit.live((3,), 250).sample_rate == 250
    assert [dl.output_rate(dl.DlInit.live((3,), r).registers, 0)
            for r in sorted(dl.SAMPLE_RATES.values())] == sorted(dl.SAMPLE_RATES.values())
    assert dl.output_rate(bytes(26), 1) == 1000 and dl.output_rate(bytes(26), 2) == 4000
    with pytest.raises(ProtocolError, match="at most 127 ASCII"):
        dl.DlGetAck(0, 5, "x" * 128).payload()
    with pytest.raises(ProtocolError, match="9 signal types"):
        dl.DlInit(bytes(26), (3,) * 9).payload()


def test_a_device_that_does_not_answer_is_refused_on_open() -> None:
    with I24Emulator() as emu:
        emu.go_silent()
        dev = I24(emu.port, timeout=0.2)
        with pytest.raises(DeviceError, match="no answer from a ScienceMode4 device .*no "
                                              "acknowledgement of GetDeviceId"):
            dev.open()
        assert dev._link is None  # the port is closed again
        emu.wake()
        with I24(emu.port) as again:
            assert again.device_id == "EMU-I24-01"
