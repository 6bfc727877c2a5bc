"""Simulate a B2B supplier's customer base: the input tables and the true churn probability.

The world follows DESIGN section 8. Every account carries a latent state (relationship health,
trust, voice, supplier attention, delivery reliability, dependency links, contact persons) that
a weekly step advances for all live accounts at once (numpy, a loop over weeks only). The
observable tables are emitted from that state each week. The ground truth at a cutoff is the
churn probability in the label window given the latent state at the cutoff, computed by
Monte Carlo with the same step function and a random stream of its own.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, fields, replace
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

log = logging.getLogger(__name__)

F32 = np.float32
NEVER = np.iinfo(np.int64).max // 4  # day / second sentinel for "no date"
PEND = 6  # ring buffer length (weeks) for broken promises falling due

SEGMENTS = ("manufacturing", "utilities", "healthcare", "logistics", "construction", "food")
REGIONS = ("north", "south", "east", "west", "central")
SIZE_BANDS = ("small", "medium", "large")
PRODUCT_LINES = ("fasteners", "bearings", "hydraulics", "electrical", "tooling", "safety")
LINK_TYPES = (
    "ordering_terminal", "edi", "portal", "vmi", "service_contract", "maintenance_contract",
    "training", "co_design", "other",
)  # fmt: skip
CHANNELS = ("ordering_terminal", "edi", "portal", "vmi", "email", "phone", "sales_rep")
N_DIRECT = 4  # the first channels need the link of the same name
INTERACTION_TYPES = (
    "complaint", "service_request", "repair", "installation", "price_negotiation",
    "contract_negotiation", "dispute", "planning_meeting", "forecast_shared",
    "design_collaboration", "business_review", "site_visit", "rfq", "inspection", "other",
)  # fmt: skip
DEPARTMENTS = (
    "sales",
    "service",
    "engineering",
    "manufacturing",
    "quality",
    "management",
    "finance",
)
REASONS = ("competitor_offer", "service_failure", "price", "sponsor_change", "unknown")
TRANSACTIONAL = ("price_negotiation", "contract_negotiation", "dispute")
COLLABORATIVE = ("planning_meeting", "design_collaboration", "business_review")

_T = {name: i for i, name in enumerate(INTERACTION_TYPES)}
_D = {name: i for i, name in enumerate(DEPARTMENTS)}
_L = {name: i for i, name in enumerate(LINK_TYPES)}

_SIZE_P = np.array([0.55, 0.32, 0.13])
_ORDER_F = np.array([0.6, 1.2, 2.6])  # weekly order rate multiplier by size band
_VALUE_F = np.array([0.6, 1.0, 1.8])  # order value multiplier by size band
_ATT_F = np.array([0.75, 1.0, 1.5])  # supplier attention multiplier by size band
_UNIT_PRICE = np.array([0.8, 25.0, 140.0, 35.0, 60.0, 12.0])
_CHANNEL_W = np.array([3.0, 4.0, 2.0, 3.0, 1.0, 0.7, 0.5])
_GAIN_W = np.array([1.0, 0.8, 1.0, 0.6, 0.8, 0.7, 0.7, 0.3, 0.3])
_WEEKDAY_CDF = np.cumsum([0.19, 0.19, 0.19, 0.19, 0.19, 0.03, 0.02])
# meeting length (median minutes); NaN for types without minutes
_MINUTES = np.array(
    [np.nan, np.nan, 120, 180, 60, 75, 50, 60, np.nan, 90, 60, 120, np.nan, np.nan, np.nan]
)
_RESOLVABLE = np.zeros(len(INTERACTION_TYPES), bool)
_RESOLVABLE[[_T["complaint"], _T["service_request"], _T["repair"]]] = True


def _table(rows: dict[str, dict[str, float]], cols: tuple[str, ...]) -> np.ndarray:
    """Build a row-normalised probability table from sparse {row: {col: weight}}."""
    out = np.zeros((len(rows), len(cols)))
    for i, row in enumerate(rows.values()):
        for name, w in row.items():
            out[i, cols.index(name)] = w
    return out / out.sum(1, keepdims=True)


# department handling a customer-initiated interaction, by type
_DEPT_BY_TYPE = _table(
    {
        "complaint": {"quality": 0.4, "service": 0.4, "sales": 0.2},
        "service_request": {"service": 1.0},
        "repair": {"service": 0.85, "engineering": 0.15},
        "installation": {"service": 0.7, "engineering": 0.3},
        "price_negotiation": {"sales": 0.85, "management": 0.15},
        "contract_negotiation": {"sales": 0.6, "management": 0.2, "finance": 0.2},
        "dispute": {"quality": 0.4, "finance": 0.3, "sales": 0.3},
        "planning_meeting": {"manufacturing": 0.5, "sales": 0.3, "engineering": 0.2},
        "forecast_shared": {"manufacturing": 0.6, "sales": 0.4},
        "design_collaboration": {"engineering": 1.0},
        "business_review": {"sales": 0.6, "management": 0.4},
        "site_visit": {"sales": 0.5, "engineering": 0.5},
        "rfq": {"sales": 1.0},
        "inspection": {"quality": 1.0},
        "other": {"sales": 0.5, "service": 0.3, "finance": 0.2},
    },
    DEPARTMENTS,
)
# type of a supplier touch given its department: [non-meeting, transactional, collaborative]
_TYPE_BY_DEPT = np.stack(
    [
        _table(
            {
                "sales": {"site_visit": 1.0},
                "service": {"repair": 0.5, "installation": 0.3, "site_visit": 0.2},
                "engineering": {"installation": 0.5, "site_visit": 0.5},
                "manufacturing": {"site_visit": 1.0},
                "quality": {"site_visit": 0.7, "other": 0.3},
                "management": {"site_visit": 1.0},
                "finance": {"other": 1.0},
            },
            INTERACTION_TYPES,
        ),
        _table(
            {
                "sales": {"price_negotiation": 0.6, "contract_negotiation": 0.4},
                "service": {"dispute": 0.6, "contract_negotiation": 0.4},
                "engineering": {"dispute": 0.6, "price_negotiation": 0.4},
                "manufacturing": {"dispute": 0.6, "price_negotiation": 0.4},
                "quality": {"dispute": 1.0},
                "management": {"contract_negotiation": 0.7, "price_negotiation": 0.3},
                "finance": {"contract_negotiation": 0.5, "dispute": 0.5},
            },
            INTERACTION_TYPES,
        ),
        _table(
            {
                "sales": {"business_review": 0.6, "planning_meeting": 0.4},
                "service": {"planning_meeting": 0.7, "business_review": 0.3},
                "engineering": {"design_collaboration": 0.7, "planning_meeting": 0.3},
                "manufacturing": {"planning_meeting": 0.8, "design_collaboration": 0.2},
                "quality": {"business_review": 0.6, "planning_meeting": 0.4},
                "management": {"business_review": 1.0},
                "finance": {"business_review": 1.0},
            },
            INTERACTION_TYPES,
        ),
    ]
)
_DEPT_CUM = np.cumsum(_DEPT_BY_TYPE, axis=1)
_TYPE_CUM = np.cumsum(_TYPE_BY_DEPT, axis=2)
_ENG_DEPT_P = _table({"x": {"engineering": 0.55, "manufacturing": 0.45}}, DEPARTMENTS)[0]
_OTH_DEPT_P = _table(
    {"x": {"sales": 0.5, "service": 0.2, "quality": 0.1, "management": 0.12, "finance": 0.08}},
    DEPARTMENTS,
)[0]
_TRANS_P = _table(
    {"x": {"price_negotiation": 0.45, "contract_negotiation": 0.3, "dispute": 0.25}},
    INTERACTION_TYPES,
)[0]
_COLLAB_P = _table(
    {"x": {"planning_meeting": 0.4, "design_collaboration": 0.25, "business_review": 0.35}},
    INTERACTION_TYPES,
)[0]

_ADJ = (
    "Acme", "Nordic", "Atlas", "Summit", "Pioneer", "Vector", "Granite", "Harbor", "Apex",
    "Meridian", "Polar", "Crescent", "Falcon", "Sterling", "Orion", "Keystone", "Cobalt",
    "Evergreen", "Union", "Delta",
)  # fmt: skip
_NOUN = (
    "Tooling", "Fabrication", "Foods", "Energy", "Logistics", "Clinics", "Builders", "Plastics",
    "Metals", "Utilities", "Pharma", "Freight", "Components", "Systems", "Works", "Industries",
)  # fmt: skip


@dataclass(frozen=True)
class SimConfig:
    """Size, clock and truth settings of a simulated world."""

    n_accounts: int = 5000  # accounts that exist at start + arrivals over the period, total
    seed: int = 42
    start: str = "2023-01-02"  # a Monday; simulation clock is weekly from here
    weeks: int = 156  # ~3 years
    lead_days: int = 0  # label window is [c + lead_days, c + lead_days + horizon_days)
    horizon_days: int = 90
    truth_every_days: int = 7  # truth cutoffs: start + k*truth_every_days (a multiple of 7)
    mc_samples: int = 64  # Monte Carlo replicates per account for the truth; 0 = no truth
    # A regime shift (a test bench for monitoring): from week `shift_week` on, competitors get
    # aggressive: their offers come `shift_offers` times as often and are taken by accounts
    # below health `shift_health` (0.35 before). None: the dynamics never change.
    shift_week: int | None = None
    shift_offers: float = 3.0
    shift_health: float = 0.45

    def __post_init__(self) -> None:
        """Reject settings the simulator cannot honour."""
        if self.n_accounts < 1 or not 1 <= self.weeks <= 3500:
            raise ValueError(
                "SimConfig: n_accounts must be at least 1 and weeks from 1 to 3500 (event "
                "times are held as 32-bit seconds)"
            )
        if self.truth_every_days < 7 or self.truth_every_days % 7:
            raise ValueError(
                f"SimConfig.truth_every_days={self.truth_every_days}: must be a positive "
                "multiple of 7 (the simulation clock is weekly)"
            )
        if self.lead_days < 0 or self.horizon_days < 1 or self.mc_samples < 0:
            raise ValueError("SimConfig: need lead_days >= 0, horizon_days >= 1, mc_samples >= 0")
        if self.shift_week is not None and (
            self.shift_week < 0 or self.shift_offers <= 0 or not 0 < self.shift_health < 1
        ):
            raise ValueError(
                "SimConfig: need shift_week >= 0, shift_offers > 0 and 0 < shift_health < 1"
            )
        pd.Timestamp(self.start)  # raises on a malformed date

    def regime(self, week: int) -> tuple[_Dyn, dict[str, np.ndarray]]:
        """The dynamics in force in `week` and their tabulated curves."""
        if self.shift_week is None or week < self.shift_week:
            return _DYN, _TAB
        return _shifted(self.shift_offers, self.shift_health)


@dataclass(frozen=True)
class _Dyn:
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


_DYN = _Dyn()
_GRID = 1024  # health-dependent curves are tabulated on this grid over [0, 1]


def _curves(d: _Dyn) -> dict[str, np.ndarray]:
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


_TAB = _curves(_DYN)


@functools.cache
def _shifted(offers: float, health: float) -> tuple[_Dyn, dict[str, np.ndarray]]:
    """The dynamics after a regime shift (SimConfig.shift_week) and their curves."""
    d = replace(_DYN, comp_mult=float(offers), comp_h=float(health))
    return d, _curves(d)


_DYNAMIC = ("h", "nl", "pend", "att", "te", "to")


@dataclass
class _Latent:
    """Latent rows the weekly step reads (all) and updates (the _DYNAMIC fields)."""

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

    def take(self, idx: np.ndarray) -> _Latent:
        """Copy the given rows."""
        return _Latent(**{f.name: getattr(self, f.name)[..., idx] for f in fields(self)})

    def put(self, idx: np.ndarray, other: _Latent, names: tuple[str, ...] | None = None) -> None:
        """Write rows of other into the given rows (all fields unless names)."""
        for name in names or [f.name for f in fields(self)]:
            getattr(self, name)[..., idx] = getattr(other, name)

    def repeat(self, k: int) -> _Latent:
        """Each row repeated k times (rows of one account stay adjacent)."""
        return _Latent(
            **{f.name: np.repeat(getattr(self, f.name), k, axis=-1) for f in fields(self)}
        )


@dataclass
class _StepOut:
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


def _sigmoid(x: np.ndarray) -> np.ndarray:
    """Logistic function."""
    return 1.0 / (1.0 + np.exp(-x))


def _grid(h: np.ndarray) -> np.ndarray:
    """Index of the nearest grid point of health values."""
    return (h * (_GRID - 1) + 0.5).astype(np.intp)


def _order_mult(h: np.ndarray) -> np.ndarray:
    """Order frequency relative to full health: falls as the customer disengages."""
    return np.take(_TAB["order"], _grid(h))


def _value_mult(h: np.ndarray) -> np.ndarray:
    """Order value relative to full health."""
    return 0.7 + 0.3 * _ramp(h, 0.1, 0.6)


def _engaged(h: np.ndarray) -> np.ndarray:
    """How engaged (candid, in contact) the customer is: low health goes quiet."""
    return _sigmoid((h - 0.42) * 20.0)


def _poisson_cdf3(lam: np.ndarray) -> np.ndarray:
    """P(N <= 0), P(N <= 1), P(N <= 2) of Poisson(lam), shape (3, n)."""
    p0 = np.exp(-lam)
    p1 = p0 * lam
    return np.stack([p0, p0 + p1, p0 + p1 + p1 * lam * 0.5])


def _count3(u: np.ndarray, cdf: np.ndarray) -> np.ndarray:
    """Inverse-CDF Poisson draw from a uniform, capped at 3."""
    return (u > cdf[0]).astype(F32) + (u > cdf[1]) + (u > cdf[2])


def _touch_cdfs(att: np.ndarray, eng: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Poisson thresholds of engineering/manufacturing and other touches."""
    return _poisson_cdf3(att * eng).astype(F32), _poisson_cdf3(att * (1 - eng)).astype(F32)


def _draw_attention(rng: np.random.Generator, scale: np.ndarray) -> np.ndarray:
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


def _step(
    s: _Latent,
    week: int,
    rng: np.random.Generator,
    d: _Dyn = _DYN,
    tab: dict[str, np.ndarray] = _TAB,
) -> _StepOut:
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
        s.att[attn] = _draw_attention(rng, s.att_scale[attn])
        s.te[:, attn], s.to[:, attn] = _touch_cdfs(s.att[attn], s.eng[attn])
    return _StepOut(
        te, to, late, late_rows, koff, broken, turn, gain, lose, churn_rows, churn_comp, churn_day
    )


# compact dtypes of the event buffers (dates that may be missing hold NEVER, so int64)
_ORDERS = {
    "acc": np.int32, "day": np.int32, "amount": np.float64, "line": np.int8,
    "channel": np.int8, "qty": np.int32, "promised": np.int32, "delivered": np.int64,
}  # fmt: skip
_INTER = {
    "acc": np.int32, "sec": np.int32, "type": np.int8, "customer": np.bool_, "dept": np.int8,
    "minutes": np.float32, "contact": np.int32, "resolved": np.int64,
}  # fmt: skip
_LINKS = {"acc": np.int32, "type": np.int8, "start": np.int64, "end": np.int64}
_CHURN = {"acc": np.int32, "day": np.int64, "reason": np.int8}

_MC_ROWS = 1 << 18  # replicate rows per Monte Carlo batch (fits in cache, bounds memory)
_MC_KEY = 0x7472  # spawn key of the truth's random streams


def _truth_probs(
    sub: _Latent,
    week0: int,
    samples: int,
    lead: int,
    horizon: int,
    seed: int,
    key: int,
    regime: Callable[[int], tuple[_Dyn, dict[str, np.ndarray]]] | None = None,
) -> np.ndarray:
    """P(churn in [lead, lead+horizon) days | alive at lead) for each row, by Monte Carlo,
    under the dynamics `regime(week)` gives for each week (SimConfig.regime)."""
    n_weeks = -(-(lead + horizon) // 7)
    n = sub.h.size
    out = np.empty(n)
    per = max(1, _MC_ROWS // samples)
    for b, c0 in enumerate(range(0, n, per)):
        rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(_MC_KEY, key, b)))
        rows = np.arange(c0, min(n, c0 + per))
        rep = sub.take(rows).repeat(samples)
        day = np.full(rep.h.size, NEVER, np.int64)
        for j in range(n_weeks):
            o = _step(rep, week0 + j, rng, *(regime(week0 + j) if regime else (_DYN, _TAB)))
            r = o.churn_rows
            first = day[r] == NEVER
            day[r[first]] = 7 * j + o.churn_day[first]
        d = day.reshape(rows.size, samples)
        alive = samples - (d < lead).sum(1)
        hit = ((d >= lead) & (d < lead + horizon)).sum(1)
        # if no replicate lives to the window start the account is on its way out: p = 1
        out[rows] = np.where(alive > 0, hit / np.maximum(alive, 1), 1.0)
    return out


def _gumbel_argmax(rng: np.random.Generator, logw: np.ndarray) -> np.ndarray:
    """One draw per row from unnormalised log-weights (-inf = impossible)."""
    return np.argmax(logw + rng.gumbel(size=logw.shape), axis=1)


def _cum_rows(w: np.ndarray) -> np.ndarray:
    """Row-cumulative probabilities of non-negative weights (n, k); the last column is 1."""
    cum = np.cumsum(w, axis=1)
    return cum / cum[:, -1:]  # x / x is exactly 1: zero-weight trailing columns stay at 1


def _draw_cum(rng: np.random.Generator, cum: np.ndarray) -> np.ndarray:
    """One draw per row from row-cumulative probabilities that end at 1 (see _cum_rows)."""
    u = rng.random(cum.shape[0], dtype=F32)[:, None]
    return np.minimum((cum <= u).sum(1), cum.shape[1] - 1)


# cumulative channel probabilities for each set of direct links (bit j: link j is active)
_CHANNEL_CUM = _cum_rows(
    _CHANNEL_W
    * np.hstack(
        [
            (np.arange(1 << N_DIRECT)[:, None] >> np.arange(N_DIRECT)) & 1,
            np.ones((1 << N_DIRECT, len(CHANNELS) - N_DIRECT)),
        ]
    )
).astype(F32)


def _choice_rows(rng: np.random.Generator, cum: np.ndarray) -> np.ndarray:
    """One draw per row from row-cumulative probabilities cum (n, k) (np.cumsum(p, axis=1))."""
    u = rng.random(cum.shape[0])[:, None] * cum[:, -1:]
    return np.minimum((cum <= u).sum(1), cum.shape[1] - 1)


def _choice(rng: np.random.Generator, p: np.ndarray, n: int) -> np.ndarray:
    """n draws from one probability vector."""
    return np.minimum(np.searchsorted(np.cumsum(p), rng.random(n), side="right"), p.size - 1)


def _weekday(rng: np.random.Generator, n: int) -> np.ndarray:
    """Day of week (0 = Monday) for business events: mostly weekdays."""
    return np.searchsorted(_WEEKDAY_CDF / _WEEKDAY_CDF[-1], rng.random(n), side="right")


_DIGITS4 = np.array([list(f"{k:04d}".encode()) for k in range(10_000)], np.uint8)


def _id_chars(prefix: str, numbers: np.ndarray, width: int) -> np.ndarray:
    """ASCII rows like b"A000001": prefix, then each number zero-padded to width digits."""
    p = len(prefix)
    out = np.empty((numbers.size, p + width), np.uint8)
    out[:, :p] = np.frombuffer(prefix.encode(), np.uint8)
    rest, col = np.asarray(numbers, np.int64), p + width
    while col > p:  # up to four digits at a time, from the right
        k = min(4, col - p)
        rest, low = np.divmod(rest, 10**k)
        out[:, col - k : col] = _DIGITS4[low][:, 4 - k :]
        col -= k
    return out


def _strings(chars: np.ndarray) -> pd.Series:
    """String column from an (m, w) matrix of ASCII rows (arrow buffers, no Python objects)."""
    m, w = chars.shape
    offsets = np.arange(0, (m + 1) * w, w, dtype=np.int64)
    data = np.ascontiguousarray(chars).ravel()
    arr = pa.LargeStringArray.from_buffers(m, pa.py_buffer(offsets), pa.py_buffer(data))
    return pd.Series(arr, dtype="str")


def _ids(prefix: str, first: int, stop: int, width: int) -> pd.Series:
    """Sequential ids like A000001 for the numbers first..stop-1 (zero-padded to width)."""
    return _strings(_id_chars(prefix, np.arange(first, stop, dtype=np.int64), width))


def _labels(codes: np.ndarray, names: tuple[str, ...] | np.ndarray | pd.Series) -> pd.Series:
    """Strings from integer codes."""
    dictionary = pa.array(np.asarray(names, dtype=object), type=pa.large_string())
    return pd.Series(dictionary.take(pa.array(codes, type=pa.int32())), dtype="str")


class _World:
    """The simulation: per-account parameters and state, event buffers, truth."""

    def __init__(self, cfg: SimConfig) -> None:
        """Store the config and set up the random streams."""
        self.cfg = cfg
        self.rng = np.random.default_rng(cfg.seed)
        self.end_day = 7 * cfg.weeks
        self.orders: list[dict[str, np.ndarray]] = []
        self.inter: list[dict[str, np.ndarray]] = []
        self.links: list[dict[str, np.ndarray]] = []
        self.churn: list[dict[str, np.ndarray]] = []
        self.truth: list[tuple[np.ndarray, int, object]] = []

    # ---- set-up ---------------------------------------------------------------------------
    def _draw_params(self, size: np.ndarray) -> dict[str, np.ndarray]:
        """Latent per-account parameters for accounts of the given size bands."""
        rng, n = self.rng, size.size
        return {
            "tau": rng.beta(2.2, 2.2, n),
            "voice": rng.beta(2.0, 2.0, n),
            "eng": rng.beta(1.5, 3.5, n),
            "p_late": rng.beta(1.2, 9.0, n),
            "olam": 0.9 * _ORDER_F[size] * rng.lognormal(-0.08, 0.4, n),
            "comp": _DYN.comp * rng.lognormal(-0.045, 0.3, n),
            "erosion": _DYN.erosion * rng.lognormal(-0.045, 0.3, n),
            "att_scale": _DYN.attention * _ATT_F[size],
        }

    def _new_latent(self, p: dict[str, np.ndarray], h: np.ndarray, nl: np.ndarray) -> _Latent:
        """Latent rows for fresh accounts with parameters p, health h and nl links."""
        n = h.size
        att = _draw_attention(self.rng, p["att_scale"].astype(F32))
        eng = p["eng"].astype(F32)
        te, to = _touch_cdfs(att, eng)
        mu = _DYN.mu_lo + (_DYN.mu_hi - _DYN.mu_lo) * p["tau"]
        return _Latent(
            h=h.astype(F32),
            nl=nl.astype(np.int8),
            pend=np.zeros((PEND, n), F32),
            att=att,
            te=te,
            to=to,
            eng=eng,
            drift=(_DYN.kappa * mu - p["erosion"] - _DYN.noise * 3.4641016 * 0.5).astype(F32),
            olam=p["olam"].astype(F32),
            p_late=p["p_late"].astype(F32),
            comp=p["comp"].astype(F32),
            att_scale=p["att_scale"].astype(F32),
        )

    def setup(self) -> None:
        """Draw the accounts, their parameters and their state at the start."""
        cfg, rng = self.cfg, self.rng
        n = cfg.n_accounts
        arriving = rng.random(n) < 0.27
        since = np.where(
            arriving,
            rng.integers(0, self.end_day, n),
            -np.ceil(np.minimum(rng.exponential(2.5 * 365, n), 8 * 365 - 1)).astype(np.int64) - 1,
        )
        order = np.argsort(since, kind="stable")  # account ids follow customer_since
        self.since = since[order].astype(np.int64)
        self.pre = self.since < 0
        self.size = _choice(rng, _SIZE_P, n).astype(np.int8)
        self.segment = rng.integers(0, len(SEGMENTS), n)
        self.region = rng.integers(0, len(REGIONS), n)
        self.p = self._draw_params(self.size)
        tenure_y = np.maximum(-self.since, 0) / 365.0
        h0 = np.where(self.pre, rng.normal(0.6, 0.12, n), rng.normal(0.55, 0.08, n)).clip(0.05, 1)
        nl0 = np.where(
            self.pre,
            rng.poisson(0.5 * np.minimum(tenure_y, 6.0)),
            (rng.random(n) < 0.3).astype(np.int64),
        ).clip(0, len(LINK_TYPES))
        self.lat = self._new_latent(self.p, h0, nl0)
        self._burn_in(np.flatnonzero(self.pre), weeks=104)
        self._setup_emission_params(tenure_y)
        self._setup_links()

    def _burn_in(self, idx: np.ndarray, weeks: int) -> None:
        """Run the pre-existing accounts' latent state to a settled mix before the start.

        An account that would churn during the burn-in is replaced by a fresh draw, so the
        accounts alive at the start look like survivors of a steady flow of customers.
        """
        sub = self.lat.take(idx)
        for t in range(-weeks, 0):
            out = _step(sub, t, self.rng)
            r = out.churn_rows
            if r.size:
                p = self._draw_params(self.size[idx[r]])
                for k, v in p.items():
                    self.p[k][idx[r]] = v
                h = self.rng.normal(0.6, 0.12, r.size).clip(0.05, 1)
                nl = self.rng.poisson(0.5 * np.minimum(-self.since[idx[r]] / 365.0, 6.0))
                sub.put(r, self._new_latent(p, h, nl.clip(0, len(LINK_TYPES))))
        self.lat.put(idx, sub)

    def _setup_emission_params(self, tenure_y: np.ndarray) -> None:
        """Observable-side parameters: order value, product lines, wallet, contacts."""
        rng, n = self.rng, self.cfg.n_accounts
        self.val = 1200.0 * _VALUE_F[self.size] * rng.lognormal(-0.125, 0.5, n)
        k_lines = 1 + rng.binomial(5, 0.3, n)
        w = rng.gamma(1.0, 1.0, (n, len(PRODUCT_LINES)))
        rank = np.argsort(np.argsort(-rng.random((n, len(PRODUCT_LINES))), axis=1), axis=1)
        self.line_cum = _cum_rows(np.where(rank < k_lines[:, None], w, 0.0)).astype(F32)
        share = rng.uniform(0.3, 0.85, n)  # supplier's share of the wallet at full health
        yearly = 52.0 * self.p["olam"] * self.val
        self.wallet = np.round(yearly / share * rng.lognormal(0, 0.15, n), -2)
        self.n_contacts = 2 + rng.poisson(0.3 * tenure_y)
        self.main_contact = self.n_contacts - 1
        self.second_contact = self.n_contacts.copy()
        self.late_recent = np.zeros(n)
        self.turn_week = np.full(n, -(10**6))

    def _setup_links(self) -> None:
        """Active link types at the start (pre-existing) or at arrival."""
        rng, n, k = self.rng, self.cfg.n_accounts, len(LINK_TYPES)
        keys = np.log(_GAIN_W) + rng.gumbel(size=(n, k))
        rank = np.argsort(np.argsort(-keys, axis=1), axis=1)
        self.active = rank < self.lat.nl.astype(np.int64)[:, None]
        lo = np.where(self.pre, self.since, 0)
        hi = np.where(self.pre, 0, 1)
        start = lo[:, None] + np.floor(rng.random((n, k)) * (hi - lo)[:, None]).astype(np.int64)
        start[~self.pre] = self.since[~self.pre, None]
        self.link_start = np.where(self.active, start, NEVER)

    # ---- weekly loop ----------------------------------------------------------------------
    def run(self) -> None:
        """Advance the world week by week, emitting events and computing the truth."""
        cfg = self.cfg
        n_cut = (self.end_day - cfg.lead_days - cfg.horizon_days) // cfg.truth_every_days + 1
        if cfg.mc_samples == 0:  # no ground truth (benchmarks): the tables are the same
            n_cut = 0
        cut_weeks = {k * cfg.truth_every_days // 7: k for k in range(max(n_cut, 0))}
        arrival_week = np.where(self.pre, -1, self.since // 7)
        alive = self.pre.copy()
        workers = min(2, os.cpu_count() or 1)
        with ThreadPoolExecutor(max_workers=workers) as pool:
            pending = []
            for t in range(cfg.weeks):
                alive |= arrival_week == t
                idx = np.flatnonzero(alive)
                if t in cut_weeks:
                    elig = idx[self.since[idx] < 7 * t]
                    fut = pool.submit(
                        _truth_probs,
                        self.lat.take(elig),
                        t,
                        cfg.mc_samples,
                        cfg.lead_days,
                        cfg.horizon_days,
                        cfg.seed,
                        cut_weeks[t],
                        cfg.regime,
                    )
                    self.truth.append((elig.astype(np.int32), 7 * t, fut))
                    pending.append(fut)
                    if len(pending) > 2 * workers:  # bound the memory of queued batches
                        pending.pop(0).result()
                churned = self._week(t, idx)
                alive[churned] = False
                if t % 26 == 25:
                    log.info(
                        "simulated week %d/%d, %d accounts alive", t + 1, cfg.weeks, alive.sum()
                    )
            self.truth = [(e, c, f.result()) for e, c, f in self.truth]
        self.alive_end = alive

    def _week(self, t: int, idx: np.ndarray) -> np.ndarray:
        """One week for the live accounts idx; returns the accounts that churned."""
        rng = self.rng
        sub = self.lat.take(idx)
        h0 = sub.h.copy()
        out = _step(sub, t, rng, *self.cfg.regime(t))
        self.lat.put(idx, sub, _DYNAMIC)
        n = idx.size
        w0 = 7 * t
        # churn (never in the arrival week: the relationship has just begun)
        ok = self.since[idx[out.churn_rows]] < w0
        cr, ccomp, cday = out.churn_rows[ok], out.churn_comp[ok], out.churn_day[ok]
        is_churn = np.zeros(n, bool)
        is_churn[cr] = True
        lo = np.maximum(self.since[idx], w0)
        hi = np.full(n, w0 + 7, np.int64)
        hi[cr] = w0 + cday
        # dependency links change (not for accounts that leave this week)
        links_pre = self.active[idx]
        lost, installs = self._link_changes(t, idx, out, is_churn)
        self.late_recent[idx] = 0.85 * self.late_recent[idx] + out.broken
        self._emit_orders(t, idx, h0, out, links_pre & ~lost, lo, hi)
        self._emit_interactions(t, idx, h0, out, lo, hi, installs)
        # contact persons change: the customer's sponsor (latent shock) and others
        turn = np.flatnonzero(out.turn & ~is_churn)
        other = np.flatnonzero((rng.random(n) < 0.004) & ~is_churn)
        for rows, target in ((turn, self.main_contact), (other, self.second_contact)):
            acc = idx[rows]
            self.n_contacts[acc] += 1
            target[acc] = self.n_contacts[acc]
        self.turn_week[idx[turn]] = t
        if cr.size:
            self._record_churn(t, idx[cr], ccomp, w0 + cday)
        return idx[cr]

    def _link_changes(
        self, t: int, idx: np.ndarray, out: _StepOut, is_churn: np.ndarray
    ) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
        """Apply link gains and losses.

        Returns the (n, types) mask of links lost this week and the installation visits that
        come with new physical links, as (rows of idx, day).
        """
        rng, k = self.rng, len(LINK_TYPES)
        lost = np.zeros((idx.size, k), bool)
        g = np.flatnonzero(out.gain & ~is_churn)
        if g.size:
            acc = idx[g]
            tau, eng = self.p["tau"][acc], self.p["eng"][acc]
            w = np.tile(np.log(_GAIN_W), (g.size, 1))
            w[:, _L["co_design"]] += np.log(0.3 + 3.0 * tau * eng)
            typ = _gumbel_argmax(rng, np.where(self.active[acc], -np.inf, w))
            day = np.maximum(7 * t + rng.integers(0, 7, g.size), self.since[acc])
            self.active[acc, typ] = True
            self.link_start[acc, typ] = day
            # physical links come with an installation visit
            phys = np.isin(typ, [_L["ordering_terminal"], _L["vmi"], _L["maintenance_contract"]])
            installs = (g[phys], day[phys])
        else:
            installs = (np.zeros(0, np.int64), np.zeros(0, np.int64))
        r = np.flatnonzero(out.lose & ~is_churn)
        if r.size:
            acc = idx[r]
            typ = _gumbel_argmax(rng, np.where(self.active[acc], 0.0, -np.inf))
            end = np.maximum(7 * t + rng.integers(0, 7, r.size), self.link_start[acc, typ])
            self._close_links(acc, typ, end)
            lost[r, typ] = True
        return lost, installs

    def _close_links(self, acc: np.ndarray, typ: np.ndarray, end: np.ndarray) -> None:
        """Record links (acc, typ) as ended at day end."""
        self.links.append(
            _compact(
                {"acc": acc, "type": typ, "start": self.link_start[acc, typ], "end": end}, _LINKS
            )
        )
        self.active[acc, typ] = False
        self.link_start[acc, typ] = NEVER

    def _record_churn(self, t: int, acc: np.ndarray, comp: np.ndarray, day: np.ndarray) -> None:
        """Record churned accounts with a reason and end their links."""
        rng = self.rng
        reason = np.where(
            comp,
            0,
            np.where(
                self.late_recent[acc] > 1.0,
                1,
                np.where(
                    t - self.turn_week[acc] < 26, 3, np.where(self.p["tau"][acc] < 0.35, 2, 4)
                ),
            ),
        )
        reason = np.where(rng.random(acc.size) < 0.2, len(REASONS) - 1, reason)  # unrecorded
        self.churn.append(_compact({"acc": acc, "day": day, "reason": reason}, _CHURN))
        a, typ = np.nonzero(self.active[acc])
        self._close_links(acc[a], typ, day[a])

    # ---- emission -------------------------------------------------------------------------
    def _emit_orders(
        self,
        t: int,
        idx: np.ndarray,
        h0: np.ndarray,
        out: _StepOut,
        links: np.ndarray,
        lo: np.ndarray,
        hi: np.ndarray,
    ) -> None:
        """Orders of the week: on-time ones drawn here, late ones from the latent step."""
        rng, n = self.rng, idx.size
        mult = _order_mult(h0)
        n_on = rng.poisson(self.lat.olam[idx] * mult * (1 - self.lat.p_late[idx]))
        n_late = out.late.astype(np.int64)
        loc = np.concatenate([np.repeat(np.arange(n), n_on), np.repeat(np.arange(n), n_late)])
        late = np.arange(loc.size) >= n_on.sum()
        m = loc.size
        d = _weekday(rng, m)
        day = 7 * t + d
        lead = rng.integers(7, 36, m)
        promised = day + lead
        delivered = day + np.ceil(lead * rng.uniform(0.4, 1.0, m)).astype(np.int64)
        if late.any():
            koff = np.zeros(n, np.int64)
            koff[out.late_rows] = out.koff
            k = koff[loc[late]]
            dl = d[late]
            e_lo = np.maximum(0, dl + 7 - 7 * k)
            e_hi = np.minimum(6, dl + 35 - 7 * k)
            e = e_lo + np.floor(rng.random(k.size) * (e_hi - e_lo + 1)).astype(np.int64)
            promised[late] = 7 * (t + k) + e
            delivered[late] = promised[late] + np.minimum(rng.geometric(0.12, k.size), 40)
        keep = (day >= lo[loc]) & (day < hi[loc])
        loc, day, promised, delivered, late = (
            loc[keep],
            day[keep],
            promised[keep],
            delivered[keep],
            late[keep],
        )
        acc = idx[loc]
        amount = self.val[acc] * _value_mult(h0[loc]) * rng.lognormal(-0.18, 0.6, acc.size)
        amount = np.maximum(np.round(amount, 2), 1.0)
        line = _draw_cum(rng, self.line_cum[acc])
        qty = np.maximum(
            1, np.round(amount / (_UNIT_PRICE[line] * rng.lognormal(0, 0.3, acc.size)))
        ).astype(np.int64)
        direct = links[:, :N_DIRECT] @ (1 << np.arange(N_DIRECT))  # which direct links
        channel = _draw_cum(rng, _CHANNEL_CUM[direct[loc]])
        self.orders.append(
            _compact(
                {
                    "acc": acc,
                    "day": day,
                    "amount": amount,
                    "line": line,
                    "channel": channel,
                    "qty": qty,
                    "promised": promised,
                    "delivered": delivered,
                },
                _ORDERS,
                key=day,
            )
        )

    def _emit_interactions(
        self,
        t: int,
        idx: np.ndarray,
        h0: np.ndarray,
        out: _StepOut,
        lo: np.ndarray,
        hi: np.ndarray,
        installs: tuple[np.ndarray, np.ndarray],
    ) -> None:
        """Interactions of the week, customer- and supplier-initiated."""
        rng, n = self.rng, idx.size
        tau, voice = self.p["tau"][idx], self.p["voice"][idx]
        sf = _ORDER_F[self.size[idx]] ** 0.5
        eng = _engaged(h0)
        low = _sigmoid((0.42 - h0) * 16.0)
        orders = self.lat.olam[idx] * _order_mult(h0)
        # customer-initiated kinds: (type or -1 for a meeting, rate)
        kinds = [
            (_T["complaint"], voice * eng * (0.01 + 0.3 * out.broken + 0.12 * (1 - h0)) * sf),
            (_T["service_request"], 0.12 * sf * (0.2 + 0.8 * eng)),
            (_T["repair"], 0.03 * sf * (0.3 + 0.7 * eng)),
            (_T["rfq"], sf * (0.01 + 0.05 * (1 - tau) + 0.12 * low)),
            (_T["forecast_shared"], 0.15 * tau**2 * eng * sf),
            (_T["inspection"], 0.5 * orders * (1 - tau) ** 2),
            (-1, 0.2 * sf * (0.1 + 0.9 * eng)),
            (_T["other"], 0.03 * (0.3 + 0.7 * eng)),
        ]
        rates = np.stack([r for _, r in kinds], axis=1)
        pos = np.repeat(np.arange(rates.size), rng.poisson(rates).ravel())
        c_loc, kind = np.divmod(pos, len(kinds))
        c_type = np.array([k for k, _ in kinds])[kind]
        meet = c_type < 0
        c_type[meet] = self._meeting_types(tau[c_loc[meet]])
        c_dept = _choice_rows(rng, _DEPT_CUM[c_type])
        # supplier touches from the latent step, by department
        n_e, n_o = out.te.astype(np.int64), out.to.astype(np.int64)
        s_loc = np.concatenate([np.repeat(np.arange(n), n_e), np.repeat(np.arange(n), n_o)])
        n_e_tot = n_e.sum()
        s_dept = np.concatenate(
            [_choice(rng, _ENG_DEPT_P, n_e_tot), _choice(rng, _OTH_DEPT_P, s_loc.size - n_e_tot)]
        )
        p_tr = self._p_transactional(tau[s_loc])
        ru = rng.random(s_loc.size)
        cat = np.where(ru < 0.2, 0, np.where(ru < 0.2 + 0.8 * p_tr, 1, 2))
        s_type = _choice_rows(rng, _TYPE_CUM[cat, s_dept])
        # installation visits for new physical links
        i_loc, inst_day = installs
        i_type = np.full(i_loc.size, _T["installation"])
        i_dept = np.where(rng.random(i_loc.size) < 0.7, _D["service"], _D["engineering"])

        loc = np.concatenate([c_loc, s_loc, i_loc])
        typ = np.concatenate([c_type, s_type, i_type])
        dept = np.concatenate([c_dept, s_dept, i_dept])
        by_customer = np.concatenate(
            [np.ones(c_loc.size, bool), np.zeros(s_loc.size + i_loc.size, bool)]
        )
        day = 7 * t + _weekday(rng, loc.size)
        day[loc.size - i_loc.size :] = inst_day
        keep = (day >= lo[loc]) & (day < hi[loc])
        loc, typ, dept, by_customer, day = (
            loc[keep],
            typ[keep],
            dept[keep],
            by_customer[keep],
            day[keep],
        )
        m = loc.size
        acc = idx[loc]
        sec = day * 86400 + 7 * 3600 + rng.integers(0, 11 * 3600, m)
        minutes = np.round(_MINUTES[typ] * rng.lognormal(0, 0.35, m))
        contact = np.where(rng.random(m) < 0.75, self.main_contact[acc], self.second_contact[acc])
        hours = np.exp(rng.normal(np.log(30.0) + 1.2 * (1 - h0[loc]), 1.0, m)).clip(1, 24 * 60)
        never = rng.random(m) < 0.04 + 0.15 * low[loc]
        resolved = np.where(
            _RESOLVABLE[typ] & ~never, sec + np.round(hours * 3600).astype(np.int64), NEVER
        )
        self.inter.append(
            _compact(
                {
                    "acc": acc,
                    "sec": sec,
                    "type": typ,
                    "customer": by_customer,
                    "dept": dept,
                    "minutes": minutes,
                    "contact": contact,
                    "resolved": resolved,
                },
                _INTER,
                key=sec,
            )
        )

    @staticmethod
    def _p_transactional(tau: np.ndarray) -> np.ndarray:
        """Share of meetings spent on price, contracts and blame: about 1/2 down to 1/4."""
        return 0.58 - 0.36 * tau

    def _meeting_types(self, tau: np.ndarray) -> np.ndarray:
        """Types of customer-initiated meetings: transactional share falls with trust."""
        tr = self.rng.random(tau.size) < self._p_transactional(tau)
        a = _choice(self.rng, _TRANS_P, tau.size)
        b = _choice(self.rng, _COLLAB_P, tau.size)
        return np.where(tr, a, b)

    # ---- output ---------------------------------------------------------------------------
    def frames(self) -> tuple[dict[str, pd.DataFrame], pd.DataFrame]:
        """Assemble the tables and the truth frame."""
        tables = dict(self.iter_frames())  # one frame per table without chunk_rows
        return tables, tables.pop("truth")

    def iter_frames(self, chunk_rows: int | None = None) -> Iterator[tuple[str, pd.DataFrame]]:
        """Yield (name, frame) for the five tables, then the truth, consuming the event buffers.

        With chunk_rows, orders and interactions come as consecutive frames of at most that
        many rows (ids continue across chunks), so a writer can append and drop each one.
        """
        cfg = self.cfg
        base = np.datetime64(pd.Timestamp(cfg.start).date(), "s")
        n = cfg.n_accounts
        acc_chars = _id_chars("A", np.arange(1, n + 1), max(6, len(str(n))))
        acc_ids = _strings(acc_chars)

        def dates(days: np.ndarray, unit: int = 86400) -> pd.Series:
            """Datetimes from day (or second) offsets; NEVER becomes NaT."""
            days = np.asarray(days, np.int64)
            out = base + (np.where(days == NEVER, 0, days) * unit).astype("timedelta64[s]")
            out[days == NEVER] = np.datetime64("NaT")
            return pd.Series(out)

        def account_col(acc: np.ndarray) -> pd.Series:
            """account_id strings for account indices."""
            return _strings(acc_chars[acc])

        churn_day = np.full(n, NEVER, np.int64)
        ch = _cat(self.churn, _CHURN)
        churn_day[ch["acc"]] = ch["day"]
        limit = np.minimum(churn_day, self.end_day)

        names = pd.Series(
            pc.binary_join_element_wise(
                pa.array(np.array(_ADJ)[self.rng.integers(0, len(_ADJ), n)]),
                pa.array(np.array(_NOUN)[self.rng.integers(0, len(_NOUN), n)]),
                pa.array(self.rng.integers(1, 100, n)).cast(pa.string()),
                " ",
            ),
            dtype="str",
        )
        yield (
            "accounts",
            pd.DataFrame(
                {
                    "account_id": acc_ids,
                    "name": names,
                    "segment": _labels(self.segment, SEGMENTS),
                    "region": _labels(self.region, REGIONS),
                    "size_band": _labels(self.size, SIZE_BANDS),
                    "customer_since": dates(self.since),
                    "annual_wallet": self.wallet.astype(float),
                }
            ),
        )

        o, self.orders = _cat(self.orders, _ORDERS), []
        m = o["day"].size
        for a, b in _chunks(m, chunk_rows):
            yield (
                "orders",
                pd.DataFrame(
                    {
                        "order_id": _ids("O", a + 1, b + 1, max(7, len(str(m)))),
                        "account_id": account_col(o["acc"][a:b]),
                        "order_date": dates(o["day"][a:b]),
                        "amount": o["amount"][a:b],
                        "product_line": _labels(o["line"][a:b], PRODUCT_LINES),
                        "channel": _labels(o["channel"][a:b], CHANNELS),
                        "quantity": o["qty"][a:b].astype(np.int64),
                        "promised_date": dates(o["promised"][a:b]),
                        "delivered_date": dates(_until(o["delivered"][a:b], limit[o["acc"][a:b]])),
                    }
                ),
            )
        del o

        i, self.inter = _cat(self.inter, _INTER), []
        m = i["sec"].size
        for a, b in _chunks(m, chunk_rows):
            account = account_col(i["acc"][a:b])
            contact = pc.binary_join_element_wise(
                pa.array(account),
                pa.array(i["contact"][a:b]).cast(pa.large_string()),
                pa.scalar("-C", pa.large_string()),
            )
            yield (
                "interactions",
                pd.DataFrame(
                    {
                        "interaction_id": _ids("I", a + 1, b + 1, max(7, len(str(m)))),
                        "account_id": account,
                        "occurred_at": dates(i["sec"][a:b], unit=1),
                        "type": _labels(i["type"][a:b], INTERACTION_TYPES),
                        "initiated_by": _labels(
                            1 - i["customer"][a:b].astype(np.int64), ("customer", "supplier")
                        ),
                        "department": _labels(i["dept"][a:b], DEPARTMENTS),
                        "minutes": i["minutes"][a:b].astype(np.float64),
                        "contact_id": pd.Series(contact, dtype="str"),
                        "resolved_at": dates(
                            _until(i["resolved"][a:b], limit[i["acc"][a:b]] * 86400), unit=1
                        ),
                    }
                ),
            )
        del i

        # links still active at the end have no end date
        a, typ = np.nonzero(self.active & self.alive_end[:, None])
        last = {
            "acc": a,
            "type": typ,
            "start": self.link_start[a, typ],
            "end": np.full(a.size, NEVER),
        }
        lk = _cat([*self.links, _compact(last, _LINKS)], _LINKS)
        alpha = np.argsort(np.argsort(LINK_TYPES))  # tie-break by the link_type string
        sl = np.lexsort((alpha[lk["type"]], lk["acc"], lk["start"]))
        lk = {k: v[sl] for k, v in lk.items()}
        yield (
            "links",
            pd.DataFrame(
                {
                    "account_id": account_col(lk["acc"]),
                    "link_type": _labels(lk["type"], LINK_TYPES),
                    "start_date": dates(lk["start"]),
                    "end_date": dates(lk["end"]),
                }
            ),
        )

        sc = np.lexsort((ch["acc"], ch["day"]))
        yield (
            "churn",
            pd.DataFrame(
                {
                    "account_id": account_col(ch["acc"][sc]),
                    "churned_at": dates(ch["day"][sc]),
                    "reason": _labels(ch["reason"][sc], REASONS),
                }
            ),
        )

        t_acc = np.concatenate([e for e, _, _ in self.truth] or [np.zeros(0, np.int64)])
        t_day = np.concatenate(
            [np.full(e.size, c, np.int64) for e, c, _ in self.truth] or [np.zeros(0, np.int64)]
        )
        t_p = np.concatenate([p for _, _, p in self.truth] or [np.zeros(0)])
        st = np.lexsort((t_acc, t_day))
        yield (
            "truth",
            pd.DataFrame(
                {
                    "account_id": account_col(t_acc[st]),
                    "cutoff": dates(t_day[st]),
                    "p_churn": t_p[st].astype(float),
                }
            ),
        )

    def latent_frame(self) -> pd.DataFrame:
        """Per-account latent parameters and final state (for tests and diagnostics)."""
        n = self.cfg.n_accounts
        acc_ids = _ids("A", 1, n + 1, max(6, len(str(n))))
        return pd.DataFrame(
            {
                "account_id": acc_ids,
                "trust": self.p["tau"],
                "voice": self.p["voice"],
                "eng_share": self.p["eng"],
                "p_late": self.p["p_late"],
                "attention": self.lat.att.astype(float),
                "health": self.lat.h.astype(float),
                "n_links": self.lat.nl.astype(np.int64),
            }
        )


def _cat(parts: list[dict[str, np.ndarray]], schema: dict[str, type]) -> dict[str, np.ndarray]:
    """Concatenate weekly buffers column by column, emptying them as it goes (bounds memory)."""
    return {
        k: np.concatenate([p.pop(k) for p in parts]) if parts else np.zeros(0, dt)
        for k, dt in schema.items()
    }


def _until(when: np.ndarray, limit: np.ndarray) -> np.ndarray:
    """NEVER where an event falls on or after the limit (the churn day or the end), else when.

    Applied chunk by chunk, so no temporary as long as a whole event table is alive.
    """
    return np.where(when >= limit, NEVER, when)


def _chunks(n: int, size: int | None) -> Iterator[tuple[int, int]]:
    """Row ranges [a, b) of at most size rows covering n rows (one range if size is None)."""
    if size is None or n <= size:
        yield 0, n
        return
    for a in range(0, n, size):
        yield a, min(n, a + size)


def _compact(
    cols: dict[str, np.ndarray], schema: dict[str, type], key: np.ndarray | None = None
) -> dict[str, np.ndarray]:
    """Cast one week's buffer to the compact dtypes of its schema (sorted by key, if given).

    A week's events are dated within that week, so buffers sorted week by week (stable: ties
    keep the order of emission) concatenate to tables sorted by date, with no global sort.
    """
    order = None if key is None else np.argsort(key, kind="stable")
    return {
        k: (np.asarray(cols[k]) if order is None else np.asarray(cols[k])[order]).astype(
            dt, copy=False
        )
        for k, dt in schema.items()
    }


def simulate_with_latent(
    config: SimConfig,
) -> tuple[dict[str, pd.DataFrame], pd.DataFrame, pd.DataFrame]:
    """Like simulate, plus a frame of each account's latent parameters and final state."""
    t0 = time.perf_counter()
    world = _World(config)
    world.setup()
    world.run()
    tables, truth = world.frames()
    log.info(
        "simulated %d accounts over %d weeks in %.1fs: %s, %d truth rows",
        config.n_accounts,
        config.weeks,
        time.perf_counter() - t0,
        ", ".join(f"{k}={len(v)}" for k, v in tables.items()),
        len(truth),
    )
    return tables, truth, world.latent_frame()


def simulate(config: SimConfig) -> tuple[dict[str, pd.DataFrame], pd.DataFrame]:
    """Return ({table: frame} for accounts, orders, interactions, links, churn; truth frame)."""
    tables, truth, _ = simulate_with_latent(config)
    return tables, truth


_WRITE_CHUNK = 2_000_000  # rows per chunk when writing large tables


def write(config: SimConfig, out: Path, truth: Path, fmt: str = "csv") -> dict[str, int]:
    """Simulate and write the five tables to out/NAME.fmt and the truth to Parquet; row counts.

    Large tables are written in chunks of rows and dropped as they go, so memory peaks at the
    simulator's compact event buffers plus one chunk, not at the full pandas frames.
    """
    from pipeline.io import atomic_dir, atomic_file

    if fmt not in ("csv", "parquet"):
        raise ValueError(f"write: fmt must be csv or parquet, not {fmt!r}")
    t0 = time.perf_counter()
    world = _World(config)
    world.setup()
    world.run()
    counts: dict[str, int] = {}
    # files are renamed into the temporary folder, and the folder into place, only on success
    with atomic_dir(Path(out)) as folder, contextlib.ExitStack() as files:
        sinks: dict[str, _Sink] = {}
        # one writer thread encodes and writes chunk k while this thread builds chunk k + 1
        writer = files.enter_context(ThreadPoolExecutor(max_workers=1))
        pending = None
        for name, frame in world.iter_frames(chunk_rows=_WRITE_CHUNK):
            if name not in sinks:
                kind = "parquet" if name == "truth" else fmt
                path = Path(truth) if name == "truth" else folder / f"{name}.{kind}"
                sinks[name] = _Sink(files.enter_context(atomic_file(path)), kind)
                files.callback(sinks[name].close)  # runs before that file's rename
            if pending is not None:
                pending.result()  # at most one chunk waits: bounds memory, raises errors
            pending = writer.submit(sinks[name].append, frame)
            counts[name] = counts.get(name, 0) + len(frame)
            del frame
        if pending is not None:
            pending.result()
    log.info("simulated and wrote %s in %.1fs", counts, time.perf_counter() - t0)
    return counts


class _Sink:
    """Append frames to one CSV or Parquet file."""

    def __init__(self, path: Path, fmt: str) -> None:
        """Remember the file; nothing is written until the first frame."""
        self.path, self.fmt = path, fmt
        self.rows = 0
        self._writer: pq.ParquetWriter | None = None

    def append(self, frame: pd.DataFrame) -> None:
        """Append the rows of frame (the first frame also writes the header or schema)."""
        if self.fmt == "csv":
            first = self.rows == 0
            frame.to_csv(self.path, mode="w" if first else "a", header=first, index=False)
        else:
            table = pa.Table.from_pandas(frame, preserve_index=False)
            if self._writer is None:
                self._writer = pq.ParquetWriter(self.path, table.schema)
            self._writer.write_table(table)
        self.rows += len(frame)

    def close(self) -> None:
        """Finish the file (idempotent)."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None
