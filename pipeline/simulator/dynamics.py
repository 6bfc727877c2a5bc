"""Each account's latent state and the weekly step that advances it.

The latent state (`Latent`) is what the tables never show: relationship health, dependency
links, broken promises falling due, supplier attention. `step` advances every row by one week
at once, in place, under a set of `Dynamics` (the constants of the weekly model) and their
health curves tabulated on a grid (`CURVES`); it returns what happened (`StepOut`), which the
world turns into events and the truth into churn dates. The same step runs the burn-in, the
world and the Monte Carlo truth, so the truth is the probability under the world's own rules.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, fields, replace

import numpy as np

from pipeline.simulator.constants import F32, LINK_TYPES, PEND


@dataclass(frozen=True)
class Dynamics:
    """Constants of the latent weekly dynamics."""

    kappa: float = 0.02  # pull of health toward the trust-given level
    mu_lo: float = 0.30  # trust-given level at tau = 0 ...
    mu_hi: float = 0.85  # ... and at tau = 1
    erosion: float = 0.006  # weekly loss of health when nobody tends the account
    w_eng: float = 0.024  # health gained per engineering/manufacturing touch
    w_oth: float = 0.0064  # health gained per other supplier touch
    damage: float = 0.02  # health lost per broken delivery promise
    noise: float = 0.02  # sd of the weekly health noise
    p_turn: float = 0.005  # weekly chance the customer's main contact changes
    shock: float = 0.12  # health lost at a sponsor change
    p_att: float = 0.01  # weekly chance the supplier's coverage of the account changes
    attention: float = 0.44  # supplier touches per week (before size and account draws)
    gain: float = 0.015  # weekly chance of a new link at full health
    loss: float = 0.02  # weekly chance of losing a link at zero health
    haz0: float = 0.0005  # baseline weekly churn hazard
    haz1: float = 0.07  # extra hazard at very low health
    haz_h: float = 0.2  # health where the extra hazard is half way
    haz_w: float = 0.04  # its width
    comp: float = 0.025  # weekly competitor-offer rate
    comp_h: float = 0.35  # health below which offers tend to be taken
    comp_w: float = 0.05
    comp_mult: float = 1.0  # multiplier of every account's competitor-offer rate
    dep_base: float = 0.2  # hazard multiplier exp(-dep_base * links)
    dep_comp: float = 0.35  # offer acceptance multiplier exp(-dep_comp * links)


DYN = Dynamics()
_GRID = 1024  # health-dependent curves are tabulated on this grid over [0, 1]


def curves(d: Dynamics) -> dict[str, np.ndarray]:
    """Tabulate the health- and link-dependent curves of the weekly step."""
    h = np.linspace(0.0, 1.0, _GRID)
    nl = np.arange(len(LINK_TYPES) + 1)[:, None]
    up = np.clip((h - 0.45) / 0.3, 0, 1)  # healthy accounts gain links ...
    down = np.clip((0.4 - h) / 0.25, 0, 1)  # ... unhealthy ones lose them
    comp = 1 / (1 + np.exp((h - d.comp_h) / d.comp_w)) * np.exp(-d.dep_comp * nl)
    base = (d.haz0 + d.haz1 / (1 + np.exp((h - d.haz_h) / d.haz_w))) * np.exp(-d.dep_base * nl)
    tabs = {
        "order": 0.25 + 0.75 * np.clip((h - 0.1) / 0.5, 0, 1),
        "gain": d.gain * up * (nl < len(LINK_TYPES)),
        "loss": d.loss * down * (nl > 0),
        "comp": comp,
        "base": base,
    }
    return {k: np.ascontiguousarray(v, dtype=F32).ravel() for k, v in tabs.items()}


CURVES = curves(DYN)


@functools.cache
def shifted(offers: float, health: float) -> tuple[Dynamics, dict[str, np.ndarray]]:
    """The dynamics after a regime shift (SimConfig.shift_week) and their curves."""
    d = replace(DYN, comp_mult=float(offers), comp_h=float(health))
    return d, curves(d)


DYNAMIC_FIELDS = ("h", "nl", "pend", "att", "te", "to")


@dataclass
class Latent:
    """Latent rows the weekly step reads (all) and updates (the DYNAMIC_FIELDS fields)."""

    h: np.ndarray  # health in [0, 1]
    nl: np.ndarray  # number of active link types (int8)
    pend: np.ndarray  # (PEND, n) broken promises falling due in each week of the ring
    att: np.ndarray  # supplier touches per week
    te: np.ndarray  # (3, n) Poisson CDF thresholds of engineering/manufacturing touches
    to: np.ndarray  # (3, n) the same for touches by other departments
    eng: np.ndarray  # share of touches by engineering/manufacturing
    drift: np.ndarray  # kappa * trust-given level - erosion
    olam: np.ndarray  # weekly order rate at full health
    p_late: np.ndarray  # chance an order is delivered late
    comp: np.ndarray  # weekly rate of competitor offers
    att_scale: np.ndarray  # scale of supplier attention for this account

    def take(self, idx: np.ndarray) -> Latent:
        """Copy the given rows."""
        return Latent(**{f.name: getattr(self, f.name)[..., idx] for f in fields(self)})

    def put(self, idx: np.ndarray, other: Latent, names: tuple[str, ...] | None = None) -> None:
        """Write rows of other into the given rows (all fields unless names)."""
        for name in names or [f.name for f in fields(self)]:
            getattr(self, name)[..., idx] = getattr(other, name)

    def repeat(self, k: int) -> Latent:
        """Each row repeated k times (rows of one account stay adjacent)."""
        return Latent(
            **{f.name: np.repeat(getattr(self, f.name), k, axis=-1) for f in fields(self)}
        )


@dataclass
class StepOut:
    """What happened in one week, per row (or for the listed rows)."""

    te: np.ndarray  # engineering/manufacturing touches
    to: np.ndarray  # other supplier touches
    late: np.ndarray  # orders placed this week that will miss their promise
    late_rows: np.ndarray  # rows with late > 0 ...
    koff: np.ndarray  # ... and the week offset (1..5) at which their promise falls due
    broken: np.ndarray  # promises that fell due, broken, this week
    turn: np.ndarray  # sponsor (main contact) change
    gain: np.ndarray  # a link type added
    lose: np.ndarray  # a link type removed
    churn_rows: np.ndarray  # rows that churned this week ...
    churn_comp: np.ndarray  # ... whether a competitor's offer took them ...
    churn_day: np.ndarray  # ... and the day of the week (0..6)


def _ramp(x: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """0 below lo, 1 above hi, linear between."""
    return np.clip((x - lo) * (1.0 / (hi - lo)), 0.0, 1.0)


def sigmoid(x: np.ndarray) -> np.ndarray:
    """Logistic function."""
    return 1.0 / (1.0 + np.exp(-x))


def _grid(h: np.ndarray) -> np.ndarray:
    """Index of the nearest grid point of health values."""
    return (h * (_GRID - 1) + 0.5).astype(np.intp)


def order_mult(h: np.ndarray) -> np.ndarray:
    """Order frequency relative to full health: falls as the customer disengages."""
    return np.take(CURVES["order"], _grid(h))


def value_mult(h: np.ndarray) -> np.ndarray:
    """Order value relative to full health."""
    return 0.7 + 0.3 * _ramp(h, 0.1, 0.6)


def engaged(h: np.ndarray) -> np.ndarray:
    """How engaged (candid, in contact) the customer is: low health goes quiet."""
    return sigmoid((h - 0.42) * 20.0)


def _poisson_cdf3(lam: np.ndarray) -> np.ndarray:
    """P(N <= 0), P(N <= 1), P(N <= 2) of Poisson(lam), shape (3, n)."""
    p0 = np.exp(-lam)
    p1 = p0 * lam
    return np.stack([p0, p0 + p1, p0 + p1 + p1 * lam * 0.5])


def _count3(u: np.ndarray, cdf: np.ndarray) -> np.ndarray:
    """Inverse-CDF Poisson draw from a uniform, capped at 3."""
    return (u > cdf[0]).astype(F32) + (u > cdf[1]) + (u > cdf[2])


def touch_cdfs(att: np.ndarray, eng: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Poisson thresholds of engineering/manufacturing and other touches."""
    return _poisson_cdf3(att * eng).astype(F32), _poisson_cdf3(att * (1 - eng)).astype(F32)


def draw_attention(rng: np.random.Generator, scale: np.ndarray) -> np.ndarray:
    """Supplier attention (touches per week) for accounts of the given scale."""
    return (scale * rng.lognormal(-0.18, 0.6, scale.size)).astype(F32)


def _uniforms(rng: np.random.Generator, k: int, n: int) -> np.ndarray:
    """(k, n) float32 uniforms on [0, 1) made straight from the generator's raw bits (fast)."""
    bits = rng.bit_generator.random_raw(-(-k * n // 2)).view(np.uint32)[: k * n]
    bits >>= 9
    bits |= np.uint32(0x3F800000)  # exponent of 1.0: the float is 1 + 23 random mantissa bits
    out = bits.view(F32)
    out -= 1.0
    return out.reshape(k, n)


def step(
    s: Latent,
    week: int,
    rng: np.random.Generator,
    d: Dynamics = DYN,
    tab: dict[str, np.ndarray] = CURVES,
) -> StepOut:
    """Advance the latent state of every row by one week, in place; return what happened.
    `d` and `tab`: the dynamics in force and their curves (SimConfig.regime)."""
    n = s.h.size
    u = _uniforms(rng, 6, n)
    h = s.h
    k = _grid(h)
    nlg = s.nl.astype(np.intp) * _GRID
    # supplier touches heal; engineering and manufacturing heal most
    te = _count3(u[0], s.te)
    to = _count3(u[1], s.to)
    # orders placed now that will break their promise k weeks from now (Poisson, capped at 3)
    lam = s.olam * s.p_late
    lam *= np.take(tab["order"], k)
    p0 = np.exp(-lam)
    p1 = p0 * lam
    c1 = p0 + p1
    p1 *= lam
    p1 *= 0.5
    p1 += c1
    late = (u[2] > p0).astype(F32)
    late += u[2] > c1
    late += u[2] > p1
    slot = week % PEND
    broken = s.pend[slot].copy()
    s.pend[slot] = 0
    late_rows = np.flatnonzero(u[2] > p0)
    koff = rng.integers(1, PEND, size=late_rows.size, dtype=np.int64)
    s.pend[(slot + koff) % PEND, late_rows] += late[late_rows]
    # rare events share one uniform: sponsor change, attention change, link gain, link loss
    v = u[3]
    ki = nlg + k
    turn = v < d.p_turn
    c = d.p_turn + d.p_att
    attn = np.flatnonzero((v < c) & ~turn)
    gain = (v >= c) & (v < np.take(tab["gain"], ki) + c)
    lose = v >= 1.0 - np.take(tab["loss"], ki)
    # health: trust pull and erosion (drift), touches, broken promises, sponsor change, noise
    h_new = h * (1.0 - d.kappa)
    h_new += s.drift
    h_new += d.w_eng * te
    h_new += d.w_oth * to
    h_new -= d.damage * broken
    h_new -= d.shock * turn
    h_new += (d.noise * 3.4641016) * u[5]  # uniform noise; its mean is taken off the drift
    np.clip(h_new, 0.0, 1.0, out=h_new)
    # churn: low health raises the hazard, competitor offers take the weak, links hold
    ki = nlg + _grid(h_new)
    hz_c = np.take(tab["comp"], ki)
    hz_c *= s.comp
    if d.comp_mult != 1.0:
        hz_c *= d.comp_mult
    hz = np.take(tab["base"], ki)
    hz += hz_c
    x = u[4]
    churn_rows = np.flatnonzero(x < hz)
    churn_comp = x[churn_rows] < hz_c[churn_rows]
    churn_day = rng.integers(0, 7, size=churn_rows.size, dtype=np.int64)
    # write the new state
    s.h = h_new
    s.nl = s.nl + gain.view(np.int8) - lose.view(np.int8)
    if attn.size:
        s.att[attn] = draw_attention(rng, s.att_scale[attn])
        s.te[:, attn], s.to[:, attn] = touch_cdfs(s.att[attn], s.eng[attn])
    return StepOut(
        te, to, late, late_rows, koff, broken, turn, gain, lose, churn_rows, churn_comp, churn_day
    )
