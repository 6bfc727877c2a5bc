"""What a week of latent state shows in the tables: the orders and the interactions.

Orders: on-time ones drawn from the account's order rate and health, late ones placed by the
latent step (their broken promise falls due weeks later); value, product line and channel
(direct channels only while the link of that name is active). Interactions: the customer's own
(complaints and service requests while engaged, RFQs and inspections as trust falls, meetings
whose transactional share falls with trust), the supplier's touches from the latent step, and
the installation visits that come with new physical links.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from pipeline.simulator.buffers import INTERACTIONS, ORDERS, compact
from pipeline.simulator.constants import DEPT_CODE, N_DIRECT, NEVER, TYPE_CODE
from pipeline.simulator.draws import choice, choice_rows, draw_cum
from pipeline.simulator.dynamics import StepOut, engaged, order_mult, sigmoid, value_mult
from pipeline.simulator.rates import (
    CHANNEL_CUM,
    COLLAB_P,
    DEPT_CUM,
    ENG_DEPT_P,
    MINUTES,
    ORDER_F,
    OTH_DEPT_P,
    RESOLVABLE,
    TRANS_P,
    TYPE_CUM,
    UNIT_PRICE,
    WEEKDAY_CDF,
)

if TYPE_CHECKING:
    from pipeline.simulator.world import World


def _weekday(rng: np.random.Generator, n: int) -> np.ndarray:
    """Day of week (0 = Monday) for business events: mostly weekdays."""
    return np.searchsorted(WEEKDAY_CDF / WEEKDAY_CDF[-1], rng.random(n), side="right")


def emit_orders(
    world: World,
    t: int,
    idx: np.ndarray,
    h0: np.ndarray,
    out: StepOut,
    links: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
) -> None:
    """Orders of the week: on-time ones drawn here, late ones from the latent step."""
    rng, n = world.rng, idx.size
    mult = order_mult(h0)
    n_on = rng.poisson(world.lat.olam[idx] * mult * (1 - world.lat.p_late[idx]))
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
    amount = world.val[acc] * value_mult(h0[loc]) * rng.lognormal(-0.18, 0.6, acc.size)
    amount = np.maximum(np.round(amount, 2), 1.0)
    line = draw_cum(rng, world.line_cum[acc])
    qty = np.maximum(
        1, np.round(amount / (UNIT_PRICE[line] * rng.lognormal(0, 0.3, acc.size)))
    ).astype(np.int64)
    direct = links[:, :N_DIRECT] @ (1 << np.arange(N_DIRECT))  # which direct links
    channel = draw_cum(rng, CHANNEL_CUM[direct[loc]])
    world.orders.append(
        compact(
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
            ORDERS,
            key=day,
        )
    )


def emit_interactions(
    world: World,
    t: int,
    idx: np.ndarray,
    h0: np.ndarray,
    out: StepOut,
    lo: np.ndarray,
    hi: np.ndarray,
    installs: tuple[np.ndarray, np.ndarray],
) -> None:
    """Interactions of the week, customer- and supplier-initiated."""
    rng, n = world.rng, idx.size
    tau, voice = world.p["tau"][idx], world.p["voice"][idx]
    sf = ORDER_F[world.size[idx]] ** 0.5
    eng = engaged(h0)
    low = sigmoid((0.42 - h0) * 16.0)
    orders = world.lat.olam[idx] * order_mult(h0)
    # customer-initiated kinds: (type or -1 for a meeting, rate)
    kinds = [
        (TYPE_CODE["complaint"], voice * eng * (0.01 + 0.3 * out.broken + 0.12 * (1 - h0)) * sf),
        (TYPE_CODE["service_request"], 0.12 * sf * (0.2 + 0.8 * eng)),
        (TYPE_CODE["repair"], 0.03 * sf * (0.3 + 0.7 * eng)),
        (TYPE_CODE["rfq"], sf * (0.01 + 0.05 * (1 - tau) + 0.12 * low)),
        (TYPE_CODE["forecast_shared"], 0.15 * tau**2 * eng * sf),
        (TYPE_CODE["inspection"], 0.5 * orders * (1 - tau) ** 2),
        (-1, 0.2 * sf * (0.1 + 0.9 * eng)),
        (TYPE_CODE["other"], 0.03 * (0.3 + 0.7 * eng)),
    ]
    rates = np.stack([r for _, r in kinds], axis=1)
    pos = np.repeat(np.arange(rates.size), rng.poisson(rates).ravel())
    c_loc, kind = np.divmod(pos, len(kinds))
    c_type = np.array([k for k, _ in kinds])[kind]
    meet = c_type < 0
    c_type[meet] = _meeting_types(rng, tau[c_loc[meet]])
    c_dept = choice_rows(rng, DEPT_CUM[c_type])
    # supplier touches from the latent step, by department
    n_e, n_o = out.te.astype(np.int64), out.to.astype(np.int64)
    s_loc = np.concatenate([np.repeat(np.arange(n), n_e), np.repeat(np.arange(n), n_o)])
    n_e_tot = n_e.sum()
    s_dept = np.concatenate(
        [choice(rng, ENG_DEPT_P, n_e_tot), choice(rng, OTH_DEPT_P, s_loc.size - n_e_tot)]
    )
    p_tr = _p_transactional(tau[s_loc])
    ru = rng.random(s_loc.size)
    cat = np.where(ru < 0.2, 0, np.where(ru < 0.2 + 0.8 * p_tr, 1, 2))
    s_type = choice_rows(rng, TYPE_CUM[cat, s_dept])
    # installation visits for new physical links
    i_loc, inst_day = installs
    i_type = np.full(i_loc.size, TYPE_CODE["installation"])
    i_dept = np.where(rng.random(i_loc.size) < 0.7, DEPT_CODE["service"], DEPT_CODE["engineering"])

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
    minutes = np.round(MINUTES[typ] * rng.lognormal(0, 0.35, m))
    contact = np.where(rng.random(m) < 0.75, world.main_contact[acc], world.second_contact[acc])
    hours = np.exp(rng.normal(np.log(30.0) + 1.2 * (1 - h0[loc]), 1.0, m)).clip(1, 24 * 60)
    never = rng.random(m) < 0.04 + 0.15 * low[loc]
    resolved = np.where(
        RESOLVABLE[typ] & ~never, sec + np.round(hours * 3600).astype(np.int64), NEVER
    )
    world.inter.append(
        compact(
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
            INTERACTIONS,
            key=sec,
        )
    )


def _p_transactional(tau: np.ndarray) -> np.ndarray:
    """Share of meetings spent on price, contracts and blame: about 1/2 down to 1/4."""
    return 0.58 - 0.36 * tau


def _meeting_types(rng: np.random.Generator, tau: np.ndarray) -> np.ndarray:
    """Types of customer-initiated meetings: transactional share falls with trust."""
    tr = rng.random(tau.size) < _p_transactional(tau)
    a = choice(rng, TRANS_P, tau.size)
    b = choice(rng, COLLAB_P, tau.size)
    return np.where(tr, a, b)
