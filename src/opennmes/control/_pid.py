"""A discrete PID controller with feed-forward, anti-windup and output bounds.

The output is bounded (``u_min``..``u_max``) and its rate of change is limited
(``rate_limit`` per second), so whatever the error the controller cannot command a jump in
stimulation. Anti-windup by back-calculation: when the output saturates, the integrator is
driven back by ``(u_sat - u_raw) / t_track`` (Astrom & Hagglund, *Advanced PID Control*, 2006,
§3.5), with ``t_track`` defaulting to ``sqrt(Ti * Td)`` (or ``Ti`` without derivative action).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

from opennmes.errors import NmesError

__all__ = ["PID"]


@dataclass
class PID:
    """PID on ``error = target - measured``, evaluated every ``dt`` seconds.

    Parameters
    ----------
    kp, ki, kd : float
        Gains (output units per measured unit, per unit*s, and per unit/s).
    dt : float
        Controller period, s.
    u_min, u_max : float
        Output bounds (e.g. amperes of stimulation amplitude).
    rate_limit : float, optional
        Largest output change per second (output units / s).
    feedforward : callable, optional
        ``feedforward(target) -> u`` added to the PID output (e.g. an inverse recruitment
        curve).
    derivative_filter : float
        Time constant of the first-order filter on the derivative, s (0: none).
    t_track : float, optional
        Anti-windup tracking time constant, s.
    """

    kp: float
    ki: float
    kd: float
    dt: float
    u_min: float
    u_max: float
    rate_limit: float | None = None
    feedforward: Callable[[float], float] | None = None
    derivative_filter: float = 0.0
    t_track: float | None = None
    _i: float = field(default=0.0, init=False, repr=False)
    _d: float = field(default=0.0, init=False, repr=False)
    _e_prev: float | None = field(default=None, init=False, repr=False)
    _u_prev: float | None = field(default=None, init=False, repr=False)
    saturated: bool = field(default=False, init=False)

    def __post_init__(self) -> None:
        if not self.dt > 0:
            raise NmesError(f"PID dt = {self.dt!r} s must be > 0")
        if not self.u_max >= self.u_min:
            raise NmesError(f"PID bounds: u_max = {self.u_max!r} < u_min = {self.u_min!r}")
        for name in ("kp", "ki", "kd"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v >= 0):
                raise NmesError(f"PID {name} = {v!r} must be finite and >= 0")
        if self.t_track is None:
            if self.ki > 0 and self.kp > 0:
                ti = self.kp / self.ki
                td = self.kd / self.kp
                self.t_track = math.sqrt(ti * td) if td > 0 else ti
            else:
                self.t_track = 1.0

    def reset(self, u0: float | None = None) -> None:
        """Clear the integrator and memory; the next output starts from ``u0`` (rate limit)."""
        self._i = 0.0
        self._d = 0.0
        self._e_prev = None
        self._u_prev = u0
        self.saturated = False

    def update(self, target: float, measured: float, *, ceiling: float | None = None) -> float:
        """One controller step: the bounded, rate-limited output.

        ``ceiling`` (output units) lowers the upper bound for this step only, e.g. to the
        intensity the operator allows now; anti-windup acts on the lowered bound.
        """
        if not (math.isfinite(target) and math.isfinite(measured)):
            raise NmesError(f"PID input is not finite: target = {target!r}, "
                            f"measured = {measured!r}")
        e = target - measured
        if self._e_prev is None:
            de = 0.0
        else:
            de = (e - self._e_prev) / self.dt
        if self.derivative_filter > 0:
            a = self.dt / (self.derivative_filter + self.dt)
            self._d += a * (de - self._d)
        else:
            self._d = de
        ff = self.feedforward(target) if self.feedforward else 0.0
        raw = ff + self.kp * e + self.ki * self._i + self.kd * self._d
        hi = self.u_max if ceiling is None else max(self.u_min, min(self.u_max, ceiling))
        u = min(max(raw, self.u_min), hi)
        if self.rate_limit is not None and self._u_prev is not None:
            step = self.rate_limit * self.dt
            u = min(max(u, self._u_prev - step), self._u_prev + step)
        self.saturated = u != raw
        # integrate with back-calculation anti-windup
        assert self.t_track is not None
        self._i += self.dt * (e + (u - raw) / (self.ki * self.t_track)
                              if self.ki > 0 else e)
        self._e_prev = e
        self._u_prev = u
        return u
