"""The BG/NBD buy-till-you-die model and a label-free `bg_nbd` churn baseline (one idea,
likelihood, fit and prediction, that reads best whole: hence over 400 lines).

The BG/NBD model (Fader, Hardie and Lee 2005, "Counting your customers the easy way: an
alternative to the Pareto/NBD model", Marketing Science 24(2), 275-284; "FHL 2005" below):
while alive, a customer buys as a Poisson process with rate lambda ~ Gamma(r, alpha); after
each repeat purchase they drop out for good with probability p ~ Beta(a, b). A customer is
summarised by

- ``x``: the number of repeat purchases (purchase days after the first one),
- ``t_x``: the time of the last purchase, counted from the first one (0 when x = 0),
- ``T``: the time from the first purchase to the end of the calibration period (the cutoff).

Time unit: every function takes times (``t_x``, ``T``, ``horizon``, ``lead``) in one unit of
the caller's choice, the same for all of them; ``alpha`` is then in that unit and r, a, b
have none. The fit rescales times internally (exact: only alpha changes) for numerical
stability. `BGNBDBaseline` works in weeks (days / 7), the unit of the published fits.

Public functions: `fit_bgnbd` (maximum likelihood, FHL 2005 eq. (6)), `p_alive` (FHL 2005
eq. (A2)), `p_no_purchase` (no purchase in a window that may start after a lead time), and
the baseline `BGNBDBaseline` (the interface of `models.baselines`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy.linalg import eigh_tridiagonal
from scipy.optimize import minimize
from scipy.special import betaln, digamma, expit, gammaln
from threadpoolctl import threadpool_limits

log = logging.getLogger(__name__)

# Bounds of the log-parameters (times rescaled so that the median T is 1): wide enough for any
# real data, narrow enough that degenerate data (no repeat purchase at all) stops at a finite
# point instead of running off to 0 or infinity.
_LOG_BOUND = 12.0
_QUAD_NODES = 64
# Largest |d mean log-likelihood / d log-parameter| of a fit taken as converged.
_GRAD_TOL = 1e-5


@dataclass(frozen=True)
class BGNBDParams:
    """BG/NBD parameters: lambda ~ Gamma(r, alpha) (shape r, rate alpha in the time unit of
    the data), dropout probability p ~ Beta(a, b)."""

    r: float
    alpha: float
    a: float
    b: float


@dataclass(frozen=True)
class _FitResult:
    params: BGNBDParams
    converged: bool
    loglik: float
    message: str


def _as_arrays(
    x: ArrayLike, t_x: ArrayLike, T: ArrayLike
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validated float arrays of one length (ValueError on empty, negative, NaN, t_x > T)."""
    xs, ts, Ts = (np.atleast_1d(np.asarray(v, dtype="float64")) for v in (x, t_x, T))
    if xs.ndim != 1 or ts.ndim != 1 or Ts.ndim != 1:
        raise ValueError("x, t_x and T must be one-dimensional arrays")
    if not (len(xs) == len(ts) == len(Ts)):
        raise ValueError(
            f"x, t_x and T must have the same length, got {len(xs)}, {len(ts)}, {len(Ts)}"
        )
    if len(xs) == 0:
        raise ValueError("BG/NBD needs at least one customer: x, t_x and T are empty")
    for name, v in (("x", xs), ("t_x", ts), ("T", Ts)):
        if not np.all(np.isfinite(v)):
            raise ValueError(f"{name} has {int((~np.isfinite(v)).sum())} NaN or infinite values")
        if np.any(v < 0):
            raise ValueError(f"{name} has {int((v < 0).sum())} negative values")
    if np.any(ts > Ts):
        raise ValueError(
            f"t_x > T on {int((ts > Ts).sum())} rows: the last purchase must fall within the "
            "calibration period"
        )
    return xs, ts, Ts


def _neg_loglik(
    theta: np.ndarray,
    x: np.ndarray,
    t_x: np.ndarray,
    T: np.ndarray,
    w: np.ndarray,
) -> tuple[float, np.ndarray]:
    """Minus the weighted mean log-likelihood of FHL 2005 eq. (6), and its gradient in the
    log-parameters theta = log(r, alpha, a, b).

    ln L = ln G(r+x) - ln G(r) + r ln alpha + ln B(a, b+x) - ln B(a, b)
           + logaddexp(-(r+x) ln(alpha+T),
                       [x > 0] (ln a - ln(b+x-1) - (r+x) ln(alpha+t_x)))
    using B(a+1, b+x-1) / B(a, b+x) = a / (b+x-1).
    """
    r, alpha, a, b = np.exp(theta)
    pos = x > 0
    log_aT = np.log(alpha + T)
    log_at = np.log(alpha + t_x)
    u1 = -(r + x) * log_aT
    bx1 = np.where(pos, b + x - 1.0, 1.0)
    u2 = np.where(pos, np.log(a) - np.log(bx1) - (r + x) * log_at, -np.inf)
    m = np.logaddexp(u1, u2)
    ll = gammaln(r + x) - gammaln(r) + r * np.log(alpha) + betaln(a, b + x) - betaln(a, b) + m
    w2 = np.exp(u2 - m)  # the share of the "dropped out after the last purchase" term
    w1 = 1.0 - w2
    psi_ab, psi_abx = digamma(a + b), digamma(a + b + x)
    d_r = digamma(r + x) - digamma(r) + np.log(alpha) - w1 * log_aT - w2 * log_at
    d_alpha = r / alpha - (r + x) * (w1 / (alpha + T) + w2 / (alpha + t_x))
    d_a = psi_ab - psi_abx + w2 / a
    d_b = digamma(b + x) - digamma(b) + psi_ab - psi_abx - w2 / bx1
    grad = np.array([w @ d_r * r, w @ d_alpha * alpha, w @ d_a * a, w @ d_b * b])
    return -float(w @ ll), -grad


def _distinct_rows(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct rows of a 2-d array and how often each occurs (a lexsort: much faster
    than np.unique(axis=0) on ~20k rows)."""
    order = np.lexsort(values.T[::-1])
    ordered = values[order]
    new = np.ones(len(ordered), dtype=bool)
    new[1:] = np.any(ordered[1:] != ordered[:-1], axis=1)
    starts = np.flatnonzero(new)
    return ordered[starts], np.diff(np.append(starts, len(ordered)))


def _fit(x: ArrayLike, t_x: ArrayLike, T: ArrayLike) -> _FitResult:
    xs, ts, Ts = _as_arrays(x, t_x, T)
    # Rescale time so that the median T is 1 (exact: alpha scales, r, a, b do not).
    scale = float(np.median(Ts))
    if not scale > 0:
        scale = float(Ts.max()) if Ts.max() > 0 else 1.0
    # One row per distinct customer summary, weighted by its count (features in whole days
    # repeat a lot); the weights are shares, so the objective is a mean log-likelihood.
    rows, counts = _distinct_rows(np.column_stack([xs, ts / scale, Ts / scale]))
    w = counts / counts.sum()
    args = (rows[:, 0], rows[:, 1], rows[:, 2], w)
    bounds = [(-_LOG_BOUND, _LOG_BOUND)] * 4
    # One BLAS thread: L-BFGS-B's small dense steps otherwise wait on OpenBLAS threads, which
    # took most of a fit's time on a busy 2-core machine.
    with threadpool_limits(limits=1, user_api="blas"):
        res = minimize(
            _neg_loglik,
            np.zeros(4),
            args=args,
            jac=True,
            method="L-BFGS-B",
            bounds=bounds,
            options={"maxiter": 2000, "ftol": 1e-10, "gtol": 1e-6},
        )
    theta = np.clip(res.x, -_LOG_BOUND, _LOG_BOUND)
    r, alpha, a, b = (float(v) for v in np.exp(theta))
    params = BGNBDParams(r=r, alpha=alpha * scale, a=a, b=b)
    finite = bool(np.all(np.isfinite(theta)) and np.isfinite(res.fun))
    # L-BFGS-B can stop on an "abnormal" line search where the objective is flat to rounding
    # (a parameter run off towards its bound, e.g. b -> infinity for a common dropout
    # probability): judge convergence by the projected gradient at the point instead.
    _, grad = _neg_loglik(theta, *args)
    at_lower, at_upper = theta <= -_LOG_BOUND + 1e-9, theta >= _LOG_BOUND - 1e-9
    grad = np.where((at_lower & (grad > 0)) | (at_upper & (grad < 0)), 0.0, grad)
    stationary = bool(np.all(np.isfinite(grad)) and np.max(np.abs(grad)) < _GRAD_TOL)
    loglik = -float(res.fun) * len(xs) - float(xs.sum()) * np.log(scale)
    converged = finite and (bool(res.success) or stationary)
    return _FitResult(params, converged, loglik, str(res.message))


def fit_bgnbd(x: ArrayLike, t_x: ArrayLike, T: ArrayLike) -> BGNBDParams:
    """Maximum-likelihood BG/NBD parameters (FHL 2005 eq. (6)).

    Args:
        x: shape (n,), the number of repeat purchases of each customer (purchase days after
            the first); whole numbers >= 0.
        t_x: shape (n,), the time of the last purchase since the first (0 when x = 0).
        T: shape (n,), the time from the first purchase to the end of the calibration period.
            t_x and T in one time unit of the caller's choice; alpha comes back in that unit.

    Returns:
        The fitted `BGNBDParams`. The log-parameters are bounded (|ln| <= 12 after rescaling
        time to a median T of 1), so degenerate data (every x = 0, one customer, identical
        rows), whose likelihood has no finite maximum, returns finite parameters at a bound
        rather than raising; a fit that does not converge is logged as a warning.

    Raises:
        ValueError: empty input, arrays of different lengths, negative or non-finite values,
            or t_x > T on some row.
    """
    fit = _fit(x, t_x, T)
    if not fit.converged:
        log.warning("BG/NBD fit did not converge (%s): %s", fit.message, fit.params)
    return fit.params


def _log_odds_dead(
    params: BGNBDParams, x: np.ndarray, t_x: np.ndarray, T: np.ndarray
) -> np.ndarray:
    """ln[(1 - P(alive)) / P(alive)]: ln(a / (b+x-1)) + (r+x) ln((alpha+T) / (alpha+t_x)) for
    x > 0, -inf for x = 0."""
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    pos = x > 0
    bx1 = np.where(pos, b + x - 1.0, 1.0)
    z = np.log(a) - np.log(bx1) + (r + x) * (np.log(alpha + T) - np.log(alpha + t_x))
    return np.where(pos, z, -np.inf)


def p_alive(params: BGNBDParams, x: ArrayLike, t_x: ArrayLike, T: ArrayLike) -> np.ndarray:
    """P(the customer is still alive at T | x, t_x, T) (FHL 2005 eq. (A2); Fader, Hardie and
    Lee, "Computing P(alive) using the BG/NBD model", 2008):

        P(alive) = 1 / (1 + [x > 0] a / (b+x-1) ((alpha+T) / (alpha+t_x))^(r+x)),

    so 1 for x = 0 (no dropout before the first repeat purchase).

    Args:
        params: fitted parameters (alpha in the unit of t_x and T).
        x, t_x, T: shape (n,) as in `fit_bgnbd`.

    Returns:
        shape (n,) probabilities in [0, 1].

    Raises:
        ValueError: as `fit_bgnbd` does for invalid x, t_x, T.
    """
    xs, ts, Ts = _as_arrays(x, t_x, T)
    return expit(-_log_odds_dead(params, xs, ts, Ts))


@lru_cache(maxsize=4096)
def _jacobi_rule(a: float, bx: float, n: int = _QUAD_NODES) -> tuple[np.ndarray, np.ndarray]:
    """Nodes p in (0, 1) and weights (summing to 1) of the n-point Gauss rule for the
    Beta(a, bx) density: Gauss-Jacobi with weight (1-u)^(bx-1) (1+u)^(a-1), p = (1+u)/2.

    The Golub-Welsch eigenproblem of the Jacobi recurrence, weights from the eigenvectors'
    first components: it needs no normalising constant, which overflows in
    scipy.special.roots_jacobi once bx is in the thousands (many repeat purchases).
    """
    al, be = bx - 1.0, a - 1.0  # Jacobi exponents of (1-u) and (1+u)
    k = np.arange(n, dtype="float64")
    s = 2.0 * k + al + be
    diag = np.empty(n)
    diag[0] = (be - al) / (al + be + 2.0)
    diag[1:] = (be**2 - al**2) / (s[1:] * (s[1:] + 2.0))
    m = np.arange(1, n, dtype="float64")
    s = 2.0 * m + al + be
    with np.errstate(divide="ignore", invalid="ignore"):
        off2 = 4.0 * m * (m + al) * (m + be) * (m + al + be) / (s**2 * (s + 1.0) * (s - 1.0))
    # m = 1 with its factor (1 + al + be) cancelled (it is 0 when a + bx = 1)
    off2[0] = 4.0 * (1.0 + al) * (1.0 + be) / ((2.0 + al + be) ** 2 * (3.0 + al + be))
    u, vectors = eigh_tridiagonal(diag, np.sqrt(off2))
    wts = vectors[0] ** 2
    return np.clip((1.0 + u) / 2.0, 0.0, 1.0), wts / wts.sum()


def _expected_gap(
    params: BGNBDParams,
    x: np.ndarray,
    T: np.ndarray,
    horizon: float,
    lead: float,
) -> np.ndarray:
    """E = P(some purchase in (T+lead, T+lead+horizon] | alive at T), x and T of shape (n,):

        E = E_p[((alpha+T) / (alpha+T+p lead))^(r+x) - ((alpha+T) / (alpha+T+p lead+h))^(r+x)]

    with p ~ Beta(a, b+x) (the posterior given alive at T; lambda ~ Gamma(r+x, alpha+T) is
    integrated out in closed form). The expectation over p is a Gauss-Jacobi rule per
    distinct x, vectorised over the rows of that x.
    """
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    out = np.empty(len(x))
    beta = alpha + T
    order = np.argsort(x, kind="stable")
    values, starts = np.unique(x[order], return_index=True)
    for xv, rows in zip(values, np.split(order, starts[1:]), strict=True):
        # The integrand's pole sits at p = -(alpha+T)/lead: the nearer to [0, 1], the more
        # nodes (16 are exact to ~1e-10 while lead <= 2 (alpha+T)).
        z = lead / beta[rows].min()
        if z > 10:
            log.warning(
                "p_no_purchase: lead / (alpha+T) = %.3g > 10 on some rows with x = %g: the "
                "quadrature over p may be off by up to ~1e-2 there",
                z,
                xv,
            )
        nodes, wts = _jacobi_rule(float(a), float(b + xv), 16 if z <= 2 else 32 if z <= 10 else 64)
        bt = beta[rows, None]
        shape = r + xv
        near = np.exp(-shape * np.log1p(nodes[None, :] * lead / bt))
        far = np.exp(-shape * np.log1p((nodes[None, :] * lead + horizon) / bt))
        out[rows] = (near - far) @ wts
    return np.clip(out, 0.0, 1.0)


def p_no_purchase(
    params: BGNBDParams,
    x: ArrayLike,
    t_x: ArrayLike,
    T: ArrayLike,
    horizon: float,
    lead: float = 0.0,
) -> np.ndarray:
    """P(no purchase in (T + lead, T + lead + horizon] | x, t_x, T) under the BG/NBD model.

    lead = 0 (FHL 2005: P(alive) from eq. (A2), the NBD count given alive):
        (1 - PA) + PA ((alpha+T) / (alpha+T+h))^(r+x).
    lead > 0: given alive at T with (lambda, p), the customer is still alive at T + lead with
    probability exp(-lambda p lead) (a purchase at rate lambda kills with probability p), then
    buys nothing for h with probability exp(-lambda h); given alive at T, lambda ~ Gamma(r+x,
    alpha+T) and p ~ Beta(a, b+x) independently, hence
        (1 - PA) + PA (1 - E),
        E = E_p[((alpha+T)/(alpha+T+p lead))^(r+x) - ((alpha+T)/(alpha+T+p lead+h))^(r+x)],
    the expectation over p by Gauss-Jacobi quadrature (16 to 64 nodes, more the larger
    lead / (alpha+T); absolute error ~1e-10 while lead <= 10 (alpha+T), checked against
    Euler's hypergeometric form in tests/test_btyd.py; beyond that, e.g. alpha of a few days
    and a lead of weeks, it degrades, up to ~1e-2, and says so in a warning).

    Args:
        params: fitted parameters (alpha in the unit of the times).
        x, t_x, T: shape (n,) as in `fit_bgnbd`.
        horizon: the window's length h > 0, in the unit of t_x and T.
        lead: the gap between T and the window's start, >= 0, same unit.

    Returns:
        shape (n,) probabilities in [0, 1].

    Raises:
        ValueError: invalid x, t_x, T (as `fit_bgnbd`), horizon <= 0 or lead < 0.
    """
    xs, ts, Ts = _as_arrays(x, t_x, T)
    if not (np.isfinite(horizon) and horizon > 0):
        raise ValueError(f"horizon must be a positive number, got {horizon!r}")
    if not (np.isfinite(lead) and lead >= 0):
        raise ValueError(f"lead must be a number >= 0, got {lead!r}")
    pa = expit(-_log_odds_dead(params, xs, ts, Ts))
    if lead == 0:
        stay = np.exp(-(params.r + xs) * np.log1p(horizon / (params.alpha + Ts)))
    else:
        stay = 1.0 - _expected_gap(params, xs, Ts, float(horizon), float(lead))
    return np.clip((1.0 - pa) + pa * stay, 0.0, 1.0)


ORDER_DAYS = "order_days_total"
FIRST_ORDER = "days_since_first_order"
LAST_ORDER = "days_since_last_order"
MIN_ACCOUNTS = 20
_DAYS_PER_WEEK = 7.0


@dataclass
class BGNBDBaseline:
    """The label-free `bg_nbd` baseline: P(churn) = P(no order in the label window
    [cutoff + lead, cutoff + lead + horizon)) under a BG/NBD model fitted per cutoff.

    `fit` ignores its arguments (the model learns no labels); `predict_proba(frame)` fits one
    BG/NBD per cutoff on that cutoff's rows of the frame, from their features alone (facts
    before the cutoff, so nothing about the label window), and scores them with
    `p_no_purchase`. Time is in weeks (days / 7). From the frame's day features:

    - x = order_days_total - 1 (purchase days after the first),
    - T = days_since_first_order / 7,
    - t_x = (days_since_first_order - days_since_last_order) / 7 (0 when x = 0).

    Rows without an order (order_days_total 0 or null, or a null day feature) have no BG/NBD
    history: they get the mean prediction of the rows with orders at their cutoff. A cutoff
    with fewer than `min_accounts` rows with orders, or whose fit does not converge, is scored
    with the parameters fitted on every row with orders of the frame, all cutoffs pooled. A
    frame without a single order gets 0.5 everywhere (logged).
    """

    lead_days: int = 0
    horizon_days: int = 90
    min_accounts: int = MIN_ACCOUNTS

    def fit(self, frame: pd.DataFrame | None = None, y: ArrayLike | None = None) -> BGNBDBaseline:
        """Label-free: nothing to learn from the training fold; returns self."""
        return self

    @staticmethod
    def _summaries(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(has_orders, x, t_x, T) of each row, times in weeks; x, t_x, T are 0 where
        has_orders is False."""
        n_days = pd.to_numeric(frame[ORDER_DAYS], errors="coerce").to_numpy("float64")
        first = pd.to_numeric(frame[FIRST_ORDER], errors="coerce").to_numpy("float64")
        last = pd.to_numeric(frame[LAST_ORDER], errors="coerce").to_numpy("float64")
        ok = (n_days >= 1) & np.isfinite(first) & np.isfinite(last)
        x = np.where(ok, n_days - 1.0, 0.0)
        T = np.where(ok, np.maximum(first, 0.0), 0.0) / _DAYS_PER_WEEK
        t_x = np.where(ok & (x > 0), first - last, 0.0) / _DAYS_PER_WEEK
        off = (t_x < -1e-9) | (t_x > T + 1e-9)
        if off.any():
            log.warning(
                "bg_nbd: %d rows with days_since_last_order outside [0, days_since_first_order]"
                " clipped",
                int(off.sum()),
            )
        return ok, x, np.clip(t_x, 0.0, T), T

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        """P(no order in [cutoff + lead_days, cutoff + lead_days + horizon_days)) per row,
        shape (len(frame),), in [0, 1]; reads `cutoff`, `order_days_total`,
        `days_since_first_order` and `days_since_last_order`."""
        n = len(frame)
        out = np.full(n, np.nan)
        if n == 0:
            return out
        ok, x, t_x, T = self._summaries(frame)
        horizon = self.horizon_days / _DAYS_PER_WEEK
        lead = self.lead_days / _DAYS_PER_WEEK
        if not ok.any():
            log.warning("bg_nbd: no row with an order in %d rows: 0.5 everywhere", n)
            return np.full(n, 0.5)
        pooled: BGNBDParams | None = None
        self.params_: dict[pd.Timestamp, BGNBDParams] = {}
        self.pooled_cutoffs_: list[pd.Timestamp] = []
        cutoffs = pd.to_datetime(frame["cutoff"]).to_numpy()
        for cutoff in np.unique(cutoffs):
            at = cutoffs == cutoff
            rows = np.flatnonzero(at & ok)
            params = None
            if len(rows) >= self.min_accounts:
                fit = _fit(x[rows], t_x[rows], T[rows])
                if fit.converged:
                    params = fit.params
                else:
                    log.warning("bg_nbd: fit at %s did not converge (%s)", cutoff, fit.message)
            if params is None:
                if pooled is None:
                    pooled = _fit(x[ok], t_x[ok], T[ok]).params
                    log.info("bg_nbd: pooled fit on %d rows: %s", int(ok.sum()), pooled)
                params = pooled
                self.pooled_cutoffs_.append(pd.Timestamp(cutoff))
                log.info(
                    "bg_nbd: cutoff %s (%d rows with orders) uses the pooled fit", cutoff, len(rows)
                )
            self.params_[pd.Timestamp(cutoff)] = params
            if len(rows):
                out[rows] = p_no_purchase(params, x[rows], t_x[rows], T[rows], horizon, lead)
                out[np.flatnonzero(at & ~ok)] = out[rows].mean()
        # A cutoff whose rows have no order at all: the mean over the frame's rows with orders.
        out[np.isnan(out)] = np.nanmean(out[ok])
        return out
