"""The field's independent P24 client, ``science_mode_4`` 0.0.23 (PyPI ``science-mode-4``, MIT),
runs its standard start-up and a mid-level session against the P24 emulator on a
pseudo-terminal: ``SerialPortConnection(port)`` opens the pty path as it would open
/dev/ttyACM0, ``DeviceP24(conn).initialize()`` calls GetStimStatus, GetDeviceId and
GetExtendedVersion, then the general layer and MlInit/MlUpdate/MlGetCurrentData/MlStop.

No code of the client is changed or stubbed; its own timeout (5 s per request) is the only
limit on waiting.
"""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import pytest

from opennmes.devices.sciencemode4 import P24Emulator

sm4 = pytest.importorskip("science_mode_4")
from science_mode_4.dyscom.dyscom_stop import PacketDyscomStop  # noqa: E402
from science_mode_4.mid_level import MidLevelChannelConfiguration  # noqa: E402
from science_mode_4.protocol.channel_point import ChannelPoint  # noqa: E402
from science_mode_4.protocol.exceptions import ProtocolError as Sm4ProtocolError  # noqa: E402
from science_mode_4.protocol.types import ResultAndError, StimStatus  # noqa: E402


def _run(emu: P24Emulator, session: Any) -> Any:
    conn = sm4.SerialPortConnection(emu.port)
    conn.open()
    try:
        return asyncio.run(session(sm4.DeviceP24(conn)))
    finally:
        conn.close()


def test_standard_start_up_general_layer_and_a_mid_level_session() -> None:
    """Ramp 3 over 20 ms periods with (+20 mA, 200 us)(0, 100 us)(-20 mA, 200 us), the
    science_mode_4 README example: the emulator plays 5, 10, 15, then 20 mA pulses 20 ms
    apart on channel 1, and the client sees the channel active until MlStop."""
    seen: dict[str, Any] = {}

    async def session(dev: Any) -> None:
        await dev.initialize()
        general = dev.get_layer_general()
        seen["id"] = general.device_id
        seen["versions"] = (general.firmware_version, general.science_mode_version)
        seen["status0"] = await general.get_stim_status()
        ml = dev.get_layer_mid_level()
        await ml.init(do_stop_on_all_errors=True)
        await ml.update([MidLevelChannelConfiguration(
            True, 3, 20, [ChannelPoint(200, 20), ChannelPoint(100, 0), ChannelPoint(200, -20)])])
        seen["data"] = [await ml.get_current_data() for _ in range(3)]
        seen["status1"] = await general.get_stim_status()
        await asyncio.sleep(0.15)
        await ml.get_current_data()
        await ml.stop()
        seen["status2"] = await general.get_stim_status()
        await general.reset()

    with P24Emulator(device_id="P24-7", firmware=(3, 2, 1)) as emu:
        _run(emu, session)
        record = emu.record.schedule()
        assert emu.output_is_zero and emu.resets == 1
    assert seen["id"].rstrip("\0") == "P24-7"
    assert seen["versions"] == ("3.2.1", "4.0.0")
    assert seen["status0"].stim_status == StimStatus.NO_LEVEL_INITIALIZED
    assert not seen["status0"].high_voltage_on
    for d in seen["data"]:
        assert d.result_error == ResultAndError.NO_ERROR
        assert d.is_stimulation_active_per_channel == [True] + [False] * 7
        assert d.channel_error == [ResultAndError.NO_ERROR] * 8
    assert seen["status1"].stim_status == StimStatus.MID_LEVEL_RUNNING
    assert seen["status2"].stim_status == StimStatus.NO_LEVEL_INITIALIZED
    assert len(record) >= 8 and set(record.channel.tolist()) == {0}
    np.testing.assert_allclose(record.amplitude[:4], [0.005, 0.010, 0.015, 0.020], atol=1e-12)
    np.testing.assert_allclose(record.amplitude[4:], 0.020, atol=1e-12)
    np.testing.assert_allclose(np.diff(record.t), 0.020, atol=1e-9)
    np.testing.assert_allclose(record.phase_width, 200e-6, atol=1e-12)
    np.testing.assert_allclose(record.interphase_gap, 100e-6, atol=1e-12)


def test_start_up_stops_a_mid_level_left_running() -> None:
    """DeviceP24.initialize reads the stimulation status and stops a running mid level."""
    async def leave_running(dev: Any) -> None:
        ml = dev.get_layer_mid_level()
        await ml.init(do_stop_on_all_errors=True)
        await ml.update([MidLevelChannelConfiguration(
            True, 0, 25, [ChannelPoint(300, 30), ChannelPoint(300, -30)])])

    async def start_up(dev: Any) -> Any:
        await dev.initialize()
        return await dev.get_layer_general().get_stim_status()

    with P24Emulator() as emu:
        _run(emu, leave_running)
        assert not emu.output_is_zero
        status = _run(emu, start_up)
        assert emu.output_is_zero and emu.level == "none"
    assert status.stim_status == StimStatus.NO_LEVEL_INITIALIZED
    assert any("MlStop" in text for _, text in emu.log)


def test_the_client_sees_unknown_command_with_its_result() -> None:
    """A dyscom (I24) command sent to the P24: the emulator answers UnknownCommand with result
    11; the client finds the frame and raises its own error naming INVALID_CMD_ERROR (before
    the result byte it never found the 12-byte frame and waited for its timeout)."""
    async def dyscom_stop(dev: Any) -> None:
        await dev.get_layer_general().send_packet_and_wait(PacketDyscomStop())

    with P24Emulator() as emu:
        with pytest.raises(Sm4ProtocolError, match="Unknown command packet INVALID_CMD_ERROR"):
            _run(emu, dyscom_stop)
        assert emu.output_is_zero
