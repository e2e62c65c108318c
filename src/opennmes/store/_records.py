"""Plain value objects returned by the store (never live ORM rows)."""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from opennmes.errors import StoreError
from opennmes.schedule import PulseSchedule
from opennmes.signals import Signals

__all__ = [
    "Patient",
    "ProgramVersion",
    "StreamInfo",
    "SessionInfo",
    "Event",
    "SessionRecord",
    "SESSION_STATUSES",
    "as_utc",
    "check_json",
]

SESSION_STATUSES = ("running", "finished", "aborted", "interrupted")


def as_utc(value: dt.datetime) -> dt.datetime:
    """A timezone-aware UTC datetime (SQLite hands back naive UTC values)."""
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC)


def check_json(value: Any, what: str) -> Any:
    """``value`` if it is plain JSON (finite numbers only), else a StoreError naming ``what``."""
    try:
        return json.loads(json.dumps(value, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise StoreError(f"{what} must be plain JSON (dicts, lists, str, finite numbers, "
                         f"bool, null): {exc}") from exc


@dataclass(frozen=True)
class Patient:
    """A patient known by a pseudonymous id.

    Attributes
    ----------
    id : str
        Pseudonymous id (no names: the key that links to the clinic's own records is kept
        outside OpenNMES).
    year_of_birth : int or None
    sex : {"female", "male", "other"} or None
    height : float or None
        Body height in metres.
    mass : float or None
        Body mass in kilograms.
    contraindications : tuple of dict
        Screening factors, each ``{"factor": name, "site": electrode site or None}``.
    clinician : str or None
        User name of the clinician who owns the record.
    notes : str or None
    created_at : datetime (UTC)
    """

    id: str
    year_of_birth: int | None
    sex: str | None
    height: float | None
    mass: float | None
    contraindications: tuple[dict[str, Any], ...]
    clinician: str | None
    notes: str | None
    created_at: dt.datetime


@dataclass(frozen=True)
class ProgramVersion:
    """One immutable version of a named program.

    Attributes
    ----------
    id : int
        Key to pass to :meth:`Store.begin_session`.
    name : str
    version : int
        1, 2, ... in order of saving.
    content_hash : str
        SHA-256 of the canonical JSON of ``document``.
    document : dict
        The program as a JSON document (e.g. ``program.model_dump(mode="json")``).
    created_at : datetime (UTC)
    """

    id: int
    name: str
    version: int
    content_hash: str
    document: dict[str, Any]
    created_at: dt.datetime


@dataclass(frozen=True)
class StreamInfo:
    """A recorded stream: ``n_samples`` samples at ``sfreq`` Hz from ``t0`` s (session time)."""

    name: str
    sfreq: float
    t0: float
    channel_names: tuple[str, ...]
    units: tuple[str, ...]
    dtype: str
    n_samples: int

    @property
    def t_end(self) -> float:
        """Session time just after the last recorded sample, in seconds."""
        return self.t0 + self.n_samples / self.sfreq


@dataclass(frozen=True)
class SessionInfo:
    """What a session was and how it ended (no bulk data).

    ``status`` is one of ``running``, ``finished``, ``aborted``, ``interrupted`` (the recording
    process ended without finishing: found and marked on a later open). Times are UTC.
    """

    id: int
    uid: str
    patient_id: str
    program_version_id: int
    program_name: str
    program_version: int
    device_url: str
    status: str
    started_at: dt.datetime
    ended_at: dt.datetime | None
    end_reason: str | None
    heartbeat_at: dt.datetime
    meta: dict[str, Any]
    software_version: str
    pulse_channels: tuple[str, ...] | None
    streams: tuple[StreamInfo, ...] = field(default=())


@dataclass(frozen=True)
class Event:
    """Something that happened at session time ``t`` (s); ``data`` is plain JSON."""

    seq: int
    t: float
    kind: str
    data: dict[str, Any]


@dataclass(frozen=True, eq=False)
class SessionRecord:
    """Everything recorded for one session.

    Attributes
    ----------
    info : SessionInfo
    program : ProgramVersion
    events : list of Event
        In the order they were logged.
    pulses : PulseSchedule
        Every pulse delivered (empty when none was written).
    streams : dict of str to Signals
        Each recorded stream, by name.
    dose : dict or None
        The last dose summary set by the runner.
    patient : Patient
    device_info : dict
    """

    info: SessionInfo
    program: ProgramVersion
    events: list[Event]
    pulses: PulseSchedule
    streams: dict[str, Signals]
    dose: dict[str, Any] | None
    patient: Patient
    device_info: dict[str, Any]


def check_finite(name: str, value: float, unit: str) -> float:
    """``float(value)`` or a StoreError when it is not a finite number."""
    v = float(value)
    if not math.isfinite(v):
        raise StoreError(f"{name} = {value!r} {unit} must be a finite number")
    return v


def plain(mapping: Mapping[str, Any] | None, what: str) -> dict[str, Any]:
    """A JSON-checked dict copy of ``mapping`` (empty when None)."""
    if mapping is None:
        return {}
    if not isinstance(mapping, Mapping):
        raise StoreError(f"{what} must be a mapping, got {type(mapping).__name__}")
    out = check_json(dict(mapping), what)
    assert isinstance(out, dict)
    return out
