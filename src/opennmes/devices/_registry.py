"""``open_stimulator(url)``: one entry point for every backend, and serial-port discovery."""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from opennmes.devices._base import Stimulator
from opennmes.devices._clock import Clock
from opennmes.errors import DeviceError

__all__ = ["open_stimulator", "SCHEMES", "PortInfo", "list_ports", "KNOWN_USB_IDS",
           "check_representable"]

KNOWN_USB_IDS: dict[tuple[int, int], str] = {
    (0x0403, 0x6001): "rehastim2",  # FTDI FT232 USB-serial (RehaStim 2, PDF §2.1)
    (0x0403, 0x6015): "rehastim2",  # FTDI FT-X series
    (0x0483, 0x5740): "p24",        # STM32 virtual COM port (P24/I24, ScienceMode4)
}
"""USB vendor/product ids that look like a known stimulator. FTDI ids are shared by many
adapters, so a match is a hint, not proof."""


def _sim(url: str, parts: urllib.parse.SplitResult, clock: Clock | None,
         **kw: Any) -> Stimulator:
    from opennmes.devices.sim import SimStimulator

    q = dict(urllib.parse.parse_qsl(parts.query))
    preset = parts.netloc or q.pop("patient", "") or None
    return SimStimulator(url, preset=preset, clock=clock, options=q, **kw)


def _rehastim2(url: str, parts: urllib.parse.SplitResult, clock: Clock | None,
               **kw: Any) -> Stimulator:
    from opennmes.devices.sciencemode2 import RehaStim2

    return RehaStim2(url, _port(url, parts), clock=clock, **kw)


def _p24(url: str, parts: urllib.parse.SplitResult, clock: Clock | None,
         **kw: Any) -> Stimulator:
    from opennmes.devices.sciencemode4 import P24

    return P24(url, _port(url, parts), clock=clock, **kw)


def _port(url: str, parts: urllib.parse.SplitResult) -> str:
    port = parts.path or parts.netloc
    if parts.netloc and parts.path:  # rehastim2://COM3/ or a host-like form
        port = parts.netloc + parts.path
    if not port:
        raise DeviceError(f"{url}: give the serial port, e.g. rehastim2:///dev/ttyUSB0 or "
                          "p24:///dev/ttyACM0 (list ports with: nmes devices)")
    return port


SCHEMES: dict[str, tuple[Callable[..., Stimulator], str]] = {
    "sim": (_sim, "simulated stimulator, optionally with a virtual patient: "
                  "sim://, sim://healthy-adult?seed=1"),
    "rehastim2": (_rehastim2, "Hasomed RehaStim 2 (ScienceMode2): rehastim2:///dev/ttyUSB0"),
    "p24": (_p24, "Hasomed P24 (ScienceMode4, mid level): p24:///dev/ttyACM0"),
}


def check_representable(kind: str, program: Any) -> None:
    """Raise ProgramError when the device ``kind`` cannot play ``program`` exactly (its period
    grid, pulse shape, channel count), with the message ``configure`` would give; no device
    is opened. ``sim`` plays any program the guard accepts."""
    if kind == "sim":
        return
    if kind == "rehastim2":
        from opennmes.devices.sciencemode2 import RehaStim2 as cls
    elif kind == "p24":
        from opennmes.devices.sciencemode4 import P24 as cls  # type: ignore[assignment]
    else:
        raise DeviceError(f"unknown device {kind!r}; known: sim, rehastim2, p24")
    names = tuple(c.name for c in program.channels)
    if len(names) > cls.capabilities.channels:
        from opennmes.errors import ProgramError

        raise ProgramError(f"{len(names)} channels; {kind} has {cls.capabilities.channels}")
    dry = cls(f"{kind}://(check)", "")  # never opened: only the mapping is tried
    dry._configure(program, names, {n: i for i, n in enumerate(names)})


def open_stimulator(url: str, *, clock: Clock | None = None, **kwargs: Any) -> Stimulator:
    """Open a stimulator by URL.

    Parameters
    ----------
    url : str
        ``sim://[preset][?patient=...&seed=...&sfreq=...]``, ``rehastim2://<port>`` or
        ``p24://<port>``, e.g. ``rehastim2:///dev/ttyUSB0``.
    clock : Clock, optional
        A :class:`VirtualClock` runs ``sim://`` faster than real time.
    **kwargs
        Passed to the backend (e.g. ``patient=`` for ``sim://``, ``ack_timeout=`` for
        hardware).

    Returns
    -------
    Stimulator
        Opened (use it as a context manager so it is closed, at zero output).
    """
    parts = urllib.parse.urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        listed = "; ".join(f"{k}:// ({v[1]})" for k, v in SCHEMES.items())
        raise DeviceError(f"unknown stimulator URL scheme {parts.scheme!r} in {url!r}; "
                          f"supported: {listed}")
    stim = SCHEMES[scheme][0](url, parts, clock, **kwargs)
    return stim.open()


@dataclass(frozen=True)
class PortInfo:
    """A serial port and what it looks like."""

    device: str
    description: str
    vid: int | None
    pid: int | None
    serial_number: str | None
    looks_like: str | None

    @property
    def url(self) -> str | None:
        """The URL to open it with, if it looks like a known stimulator."""
        return f"{self.looks_like}://{self.device}" if self.looks_like else None


def list_ports() -> list[PortInfo]:
    """Serial ports of this machine, with a guess of the stimulator by USB ids."""
    from serial.tools import list_ports as lp

    out = []
    for p in sorted(lp.comports(), key=lambda x: x.device):
        guess = KNOWN_USB_IDS.get((p.vid, p.pid)) if p.vid is not None else None
        out.append(PortInfo(p.device, p.description or "", p.vid, p.pid, p.serial_number,
                            guess))
    return out
