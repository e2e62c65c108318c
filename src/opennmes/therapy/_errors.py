"""Errors of the therapy layer."""

from __future__ import annotations

from opennmes.errors import NmesError

__all__ = ["TherapyError", "OutcomeError", "PrescriptionError"]


class TherapyError(NmesError, ValueError):
    """A protocol, prescription or outcome entry is invalid; the message says what and why."""


class OutcomeError(TherapyError):
    """An outcome measurement is outside its instrument's validated range, or malformed."""


class PrescriptionError(TherapyError):
    """A prescription cannot be made (unknown protocol, bad limits or schedule)."""
