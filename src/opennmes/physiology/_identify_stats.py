"""Statistics of an identification: the least-squares fit (lmfit), which parameters the data
determine (Fisher information of the fit variables), profile-likelihood intervals and residual
diagnostics.

* **Determinability.** The Fisher information of the fit variables is ``J^T J / s^2`` with
  ``J`` the sensitivity of the model force to each variable. A parameter counts as determined
  when its expected 95 % half-width, ``z * se`` relative to the value, is within the requested
  precision; otherwise the least determined parameter is fixed and the rest are judged again
  (subset selection, as in Brun, Reichert & Kuensch 2001, Water Resour Res 37:1015, who rank
  parameters by the collinearity of their sensitivities). Directions the data do not see at all
  (singular values below 1e-9 of the largest) give huge variances and are fixed first.
* **Intervals** are profile-likelihood intervals (Venzon & Moolgavkar 1988, Appl Stat 37:87):
  the variable is moved until the refitted sum of squares rises by ``chi2_1(level) s^2 k``,
  every other fitted variable refitted at each point. ``k = (1 + rho)/(1 - rho)`` widens them
  for residuals with lag-1 autocorrelation ``rho > 0`` (the variance factor of the mean of an
  AR(1) series), so correlated residuals do not give falsely narrow intervals. An interval that
  reaches a physiological bound is open there.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["LeastSquares", "fisher_se", "select_determined", "profile_interval",
           "autocorrelation"]

Residual = Callable[[dict[str, float]], np.ndarray]


@dataclass
class LeastSquares:
    """A bounded least-squares problem over named fit variables, solved with lmfit.

    Parameters
    ----------
    residual : callable
        ``residual(theta_by_name) -> ndarray`` (model - data, N).
    bounds : dict
        ``name -> (low, high)`` of each fit variable.
    """

    residual: Residual
    bounds: dict[str, tuple[float, float]]

    def fit(self, start: dict[str, float], free: Sequence[str], fixed: dict[str, float],
            max_nfev: int | None = None) -> tuple[dict[str, float], float]:
        """Minimise the sum of squares over ``free`` from ``start`` with ``fixed`` held.

        Returns the variables (free and fixed) and the sum of squares.
        """
        import lmfit

        params = lmfit.Parameters()
        for name in free:
            lo, hi = self.bounds[name]
            params.add(name, value=float(np.clip(start[name], lo, hi)), min=lo, max=hi)

        def fcn(p: lmfit.Parameters) -> np.ndarray:
            return self.residual({**fixed, **{k: float(p[k].value) for k in free}})

        if not free:
            r = fcn(params)
            return dict(fixed), float(r @ r)
        mini = lmfit.Minimizer(fcn, params, nan_policy="raise")
        # MINPACK's Levenberg-Marquardt (lmfit maps the bounds): a QR of the tall Jacobian per
        # step, several times cheaper here than the trust-region solver's SVDs
        res = mini.minimize(method="leastsq", max_nfev=max_nfev or 30 * (len(free) + 1),
                            epsfcn=1e-12, ftol=1e-10, xtol=1e-10)
        out = {**fixed, **{k: float(res.params[k].value) for k in free}}
        r = self.residual(out)
        return out, float(r @ r)


def jacobian(residual: Residual, theta: dict[str, float], names: Sequence[str],
             bounds: dict[str, tuple[float, float]], step: float = 1e-4) -> np.ndarray:
    """Forward-difference sensitivities of the residual to each variable (stepping inwards at
    an upper bound)."""
    r0 = residual(theta)
    cols = []
    for name in names:
        h = step if theta[name] + step <= bounds[name][1] else -step
        cols.append((residual({**theta, name: theta[name] + h}) - r0) / h)
    return np.column_stack(cols) if cols else np.zeros((r0.size, 0))


def fisher_se(jac: np.ndarray, s2: float) -> np.ndarray:
    """Standard errors of the variables from the Fisher information ``J^T J / s2``; directions
    the data do not see (singular values below 1e-9 of the largest) give huge errors."""
    if jac.shape[1] == 0:
        return np.zeros(0)
    norms = np.linalg.norm(jac, axis=0)
    norms = np.where(norms > 0, norms, 1e-300)
    jn = jac / norms
    # eigen-decomposition of the small normalised Gram matrix (not an SVD of the tall J)
    ev, vecs = np.linalg.eigh(jn.T @ jn)
    ev = np.maximum(ev, max(float(ev.max()), 1e-300) * 1e-18)
    var = (vecs**2 / ev).sum(axis=1) / norms**2
    return np.asarray(np.sqrt(var * s2))


def relative_width(name: str, se: float, theta: float, transform: str, z: float) -> float:
    """Expected relative 95 % half-width of a parameter from its variable's standard error."""
    if transform == "log":
        return math.expm1(min(z * se, 700.0))
    return z * se / abs(theta) if theta != 0 else math.inf


def select_determined(jac: np.ndarray, names: Sequence[str], theta: dict[str, float],
                      transforms: dict[str, str], s2: float, z: float, precision: float
                      ) -> tuple[list[str], dict[str, float]]:
    """The largest set of variables whose relative half-width is within ``precision``, by
    dropping the least determined one at a time. Returns the kept names and, for the dropped
    ones, the relative half-width they had when dropped."""
    keep = list(names)
    dropped: dict[str, float] = {}
    while keep:
        cols = [list(names).index(k) for k in keep]
        se = fisher_se(jac[:, cols], s2)
        rel = [relative_width(k, float(e), theta[k], transforms[k], z)
               for k, e in zip(keep, se, strict=True)]
        worst = int(np.argmax(rel))
        if rel[worst] <= precision:
            break
        dropped[keep.pop(worst)] = rel[worst]
    return keep, dropped


def profile_interval(ls: LeastSquares, theta: dict[str, float], free: Sequence[str],
                     name: str, ss_min: float, threshold: float, guess: float
                     ) -> tuple[float, float, bool, bool]:
    """Profile-likelihood interval of one variable: where the refitted sum of squares exceeds
    ``ss_min + threshold``, searched from ``guess`` (the expected half-width). Returns
    ``(low, high, low_open, high_open)``; an end is open when the bound is reached first."""
    others = [k for k in free if k != name]
    lo_b, hi_b = ls.bounds[name]
    ends: list[tuple[float, bool]] = []
    for side in (-1.0, 1.0):
        step = side * max(guess, 1e-3)
        warm = dict(theta)
        end, is_open = theta[name], False
        for _ in range(8):
            x = float(np.clip(theta[name] + step, lo_b, hi_b))
            fixed = {k: v for k, v in warm.items() if k not in others}
            fixed[name] = x
            warm, ss = ls.fit(warm, others, fixed, max_nfev=12 * (len(others) + 1))
            rise = max(ss - ss_min, 0.0)
            z = math.sqrt(rise / threshold)
            end = x
            at_bound = x in (lo_b, hi_b)
            if abs(z - 1.0) < 0.05:
                break
            if at_bound and z < 1.0:
                is_open = True
                break
            grow = 4.0 if z < 1e-6 else min(max(1.0 / z, 0.2), 6.0)
            step *= grow
        ends.append((end, is_open))
    return ends[0][0], ends[1][0], ends[0][1], ends[1][1]


def autocorrelation(res: np.ndarray, lag: int = 1) -> float:
    """Lag-``lag`` autocorrelation of the residuals (0 for a constant series)."""
    if res.size <= lag + 1 or res.std() == 0:
        return 0.0
    return float(np.corrcoef(res[:-lag], res[lag:])[0, 1])
