"""Exceptions of OpenNMES: one root, :class:`NmesError`, and one subclass per kind of fault.

Every message says what was wrong, which value, which limit (with its source) and what to do.
Lower-level exceptions are wrapped with ``raise ... from``.
"""

from __future__ import annotations

__all__ = [
    "NmesError",
    "UnitError",
    "ProgramError",
    "SafetyLimitError",
    "ContraindicationError",
    "DeviceError",
    "DeviceTimeoutError",
    "ProtocolError",
    "SessionError",
    "LocalProtocolError",
    "RemoteProtocolError",
    "ModelError",
    "SignalError",
    "StoreError",
]


class NmesError(Exception):
    """Root of every error raised by OpenNMES."""


class UnitError(NmesError, ValueError):
    """A unit-bearing value could not be parsed or has the wrong dimension."""


class ProgramError(NmesError, ValueError):
    """A stimulation program (or its file) is malformed.

    Parameters
    ----------
    message : str
        What is wrong and how to fix it.
    source : str, optional
        The file the program came from.
    field : str, optional
        Dotted path of the offending field, e.g. ``channels[0].frequency``.
    """

    def __init__(self, message: str, *, source: str | None = None, field: str | None = None):
        self.source = source
        self.field = field
        prefix = ""
        if source:
            prefix += f"{source}: "
        if field:
            prefix += f"{field}: "
        super().__init__(prefix + message)


class SafetyLimitError(NmesError, ValueError):
    """A value breaks a safety limit.

    Attributes name the parameter, the offending value, the limit and its source so that
    callers (CLI, web app, session log) can show and record them.
    """

    def __init__(
        self,
        parameter: str,
        value: float,
        limit: float,
        unit: str,
        source: str,
        *,
        where: str = "",
        hint: str = "",
        comparison: str = "<=",
        message: str | None = None,
    ):
        self.parameter = parameter
        self.value = value
        self.limit = limit
        self.unit = unit
        self.source = source
        self.where = where
        self.hint = hint
        self.comparison = comparison
        msg = (
            f"{parameter} = {value:.4g} {unit} breaks the limit {comparison} {limit:.4g} {unit}"
            f" ({source})"
        )
        if where:
            msg = f"{where}: {msg}"
        if hint:
            msg += f"; {hint}"
        super().__init__(message or msg)


class ContraindicationError(NmesError, ValueError):
    """A patient factor forbids stimulation at an electrode site."""


class DeviceError(NmesError):
    """A stimulator reported a fault, or could not be reached."""


class DeviceTimeoutError(DeviceError, TimeoutError):
    """A stimulator did not answer within its protocol's time limit."""


class ProtocolError(NmesError, ValueError):
    """Something on the wire does not fit the device protocol (see the two kinds below)."""


class LocalProtocolError(ProtocolError):
    """We asked to encode something the protocol cannot say (a value off the device's grid, a
    field out of its range): a bug or an unchecked input on this side; nothing was sent."""


class RemoteProtocolError(ProtocolError):
    """Bytes received from the other side (the device, or the host for an emulator) do not
    form a valid frame or message of the protocol."""


class SessionError(NmesError, ValueError):
    """A running session was asked for something it cannot do (a setting out of range, an
    unknown or untriggered channel, an intensity step too large, a second run); nothing
    changed. Problems of the program itself are :class:`ProgramError`."""


class ModelError(NmesError, ValueError):
    """A physiological model got parameters or inputs it cannot use."""


class SignalError(NmesError, ValueError):
    """A signal (file or stream) lacks what a processing step needs."""


class StoreError(NmesError):
    """The session store could not be opened, read or written."""
