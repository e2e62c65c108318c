"""``sim://`` URL parameters are checked with limits when the stimulator is made: the message
names the parameter, the value and the allowed range, and nothing is opened."""

from __future__ import annotations

import pytest

from opennmes.devices import VirtualClock, open_stimulator
from opennmes.devices.sim import SFREQ_RANGE, SimStimulator
from opennmes.errors import DeviceError


@pytest.mark.parametrize("query, says", [
    ("sfreq=-5", "sfreq = '-5' Hz is outside the allowed range 1 to 20000 Hz"),
    ("sfreq=0", "sfreq = '0' Hz is outside the allowed range"),
    ("sfreq=1e9", "sfreq = '1e9' Hz is outside the allowed range"),
    ("sfreq=inf", "sfreq = 'inf' Hz is outside the allowed range"),
    ("sfreq=nan", "sfreq = 'nan' Hz is outside the allowed range"),
    ("sfreq=", "a virtual patient needs a sampling rate"),
    ("sfreq=1kHz", "sfreq = '1kHz' is not a number"),
    ("sfreq=100&seed=1.5", "seed = '1.5' is not a whole number"),
    ("sfreq=100&seed=99999999999", "seed = '99999999999' is outside the allowed range 0 to"),
    ("sfreq=100&emg=2", "emg = '2' must be one of"),
])
def test_bad_parameters_are_refused(query: str, says: str) -> None:
    url = f"sim://healthy-adult?{query}"
    with pytest.raises(DeviceError) as err:
        open_stimulator(url, clock=VirtualClock())
    assert str(err.value).startswith(f"{url}: {says}"), str(err.value)


def test_keyword_sfreq_is_checked_too() -> None:
    with pytest.raises(DeviceError, match=r"sfreq = 1000000\.0 Hz is outside"):
        SimStimulator("sim://", sfreq=1e6)


@pytest.mark.parametrize("query", ["sfreq=1", "sfreq=20000", "sfreq=500&seed=0&emg=no",
                                   "sfreq=100&seed=4294967295&emg=TRUE"])
def test_limits_are_inclusive(query: str) -> None:
    with open_stimulator(f"sim://healthy-adult?{query}", clock=VirtualClock()) as stim:
        assert SFREQ_RANGE[0] <= stim.sfreq <= SFREQ_RANGE[1]  # type: ignore[attr-defined]
