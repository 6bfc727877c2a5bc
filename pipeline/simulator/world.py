"""The world: a customer base drawn at the start, then advanced week by week.

`World.setup` draws the accounts (existing customers, run through a burn-in so they look like
survivors, and the ones that arrive later), their latent parameters, contacts and links.
`World.run` advances the live accounts one week at a time with the latent step, records what
the week shows (links gained and lost, contacts changed, churn with its reason, and through
`pipeline.simulator.emission` the orders and interactions) into compact buffers, and submits
the Monte Carlo truth at each cutoff to worker threads. `pipeline.simulator.tables` turns the
buffers into the input tables.
"""

from __future__ import annotations

import logging
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from pipeline.simulator.buffers import CHURN, LINKS, compact
from pipeline.simulator.constants import (
    F32,
    LINK_CODE,
    LINK_TYPES,
    NEVER,
    PEND,
    PRODUCT_LINES,
    REASONS,
    REGIONS,
    SEGMENTS,
)
from pipeline.simulator.draws import choice, cum_rows, gumbel_argmax
from pipeline.simulator.dynamics import (
    DYN,
    DYNAMIC_FIELDS,
    Latent,
    StepOut,
    draw_attention,
    step,
    touch_cdfs,
)
from pipeline.simulator.emission import emit_interactions, emit_orders
from pipeline.simulator.rates import ATT_F, GAIN_W, ORDER_F, SIZE_P, VALUE_F
from pipeline.simulator.settings import SimConfig
from pipeline.simulator.truth import truth_probs

log = logging.getLogger(__name__)


class World:
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
            "olam": 0.9 * ORDER_F[size] * rng.lognormal(-0.08, 0.4, n),
            "comp": DYN.comp * rng.lognormal(-0.045, 0.3, n),
            "erosion": DYN.erosion * rng.lognormal(-0.045, 0.3, n),
            "att_scale": DYN.attention * ATT_F[size],
        }

    def _new_latent(self, p: dict[str, np.ndarray], h: np.ndarray, nl: np.ndarray) -> Latent:
        """Latent rows for fresh accounts with parameters p, health h and nl links."""
        n = h.size
        att = draw_attention(self.rng, p["att_scale"].astype(F32))
        eng = p["eng"].astype(F32)
        te, to = touch_cdfs(att, eng)
        mu = DYN.mu_lo + (DYN.mu_hi - DYN.mu_lo) * p["tau"]
        return Latent(
            h=h.astype(F32),
            nl=nl.astype(np.int8),
            pend=np.zeros((PEND, n), F32),
            att=att,
            te=te,
            to=to,
            eng=eng,
            drift=(DYN.kappa * mu - p["erosion"] - DYN.noise * 3.4641016 * 0.5).astype(F32),
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
        self.size = choice(rng, SIZE_P, n).astype(np.int8)
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
            out = step(sub, t, self.rng)
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
        self.val = 1200.0 * VALUE_F[self.size] * rng.lognormal(-0.125, 0.5, n)
        k_lines = 1 + rng.binomial(5, 0.3, n)
        w = rng.gamma(1.0, 1.0, (n, len(PRODUCT_LINES)))
        rank = np.argsort(np.argsort(-rng.random((n, len(PRODUCT_LINES))), axis=1), axis=1)
        self.line_cum = cum_rows(np.where(rank < k_lines[:, None], w, 0.0)).astype(F32)
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
        keys = np.log(GAIN_W) + rng.gumbel(size=(n, k))
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
                        truth_probs,
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
        out = step(sub, t, rng, *self.cfg.regime(t))
        self.lat.put(idx, sub, DYNAMIC_FIELDS)
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
        emit_orders(self, t, idx, h0, out, links_pre & ~lost, lo, hi)
        emit_interactions(self, t, idx, h0, out, lo, hi, installs)
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
        self, t: int, idx: np.ndarray, out: StepOut, is_churn: np.ndarray
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
            w = np.tile(np.log(GAIN_W), (g.size, 1))
            w[:, LINK_CODE["co_design"]] += np.log(0.3 + 3.0 * tau * eng)
            typ = gumbel_argmax(rng, np.where(self.active[acc], -np.inf, w))
            day = np.maximum(7 * t + rng.integers(0, 7, g.size), self.since[acc])
            self.active[acc, typ] = True
            self.link_start[acc, typ] = day
            # physical links come with an installation visit
            phys = np.isin(
                typ,
                [
                    LINK_CODE["ordering_terminal"],
                    LINK_CODE["vmi"],
                    LINK_CODE["maintenance_contract"],
                ],
            )
            installs = (g[phys], day[phys])
        else:
            installs = (np.zeros(0, np.int64), np.zeros(0, np.int64))
        r = np.flatnonzero(out.lose & ~is_churn)
        if r.size:
            acc = idx[r]
            typ = gumbel_argmax(rng, np.where(self.active[acc], 0.0, -np.inf))
            end = np.maximum(7 * t + rng.integers(0, 7, r.size), self.link_start[acc, typ])
            self._close_links(acc, typ, end)
            lost[r, typ] = True
        return lost, installs

    def _close_links(self, acc: np.ndarray, typ: np.ndarray, end: np.ndarray) -> None:
        """Record links (acc, typ) as ended at day end."""
        self.links.append(
            compact(
                {"acc": acc, "type": typ, "start": self.link_start[acc, typ], "end": end}, LINKS
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
        self.churn.append(compact({"acc": acc, "day": day, "reason": reason}, CHURN))
        a, typ = np.nonzero(self.active[acc])
        self._close_links(acc[a], typ, day[a])
