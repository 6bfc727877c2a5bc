"""Churn labels: the label window after a cutoff, its mode (explicit churn records or
inactivity), and the label column of the training frame."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import ibis
import ibis.expr.types as ir

from features.build import KEYS
from pipeline.config import defaults
from pipeline.errors import UserError

log = logging.getLogger(__name__)


LABEL = "label"


LABEL_MODES = ("auto", "explicit", "inactivity")


_LABEL = defaults("label")  # params.yaml's defaults live in pipeline/config.py only


@dataclass(frozen=True)
class LabelSpec:
    """How churn is defined: the label window [cutoff + lead, cutoff + lead + horizon)."""

    mode: str = _LABEL["mode"]
    lead_days: int = _LABEL["lead_days"]
    horizon_days: int = _LABEL["horizon_days"]
    active_days: int = _LABEL["active_days"]  # inactivity: eligible if it ordered this recently

    @classmethod
    def from_params(cls, params: dict) -> LabelSpec:
        spec = cls(**{k: v for k, v in params.items() if k in cls.__dataclass_fields__})
        if spec.mode not in LABEL_MODES:
            raise UserError(
                f"label.mode must be one of {', '.join(LABEL_MODES)}; got {spec.mode!r}"
            )
        if spec.horizon_days <= 0 or spec.lead_days < 0:
            raise UserError("label.horizon_days must be > 0 and label.lead_days >= 0")
        return spec

    def resolve(self, tables: dict[str, ir.Table]) -> str:
        """The label mode in force for this data (`auto`: explicit when a churn table exists)."""
        if self.mode == "auto":
            return "explicit" if "churn" in tables else "inactivity"
        if self.mode == "explicit" and "churn" not in tables:
            raise UserError(
                "churn labels are 'explicit' (label.mode, or the setting the model was trained "
                "with) but the data has no churn table: add churn.csv, or set label.mode to "
                "inactivity or auto and retrain"
            )
        return self.mode

    @property
    def window_days(self) -> int:
        return self.lead_days + self.horizon_days


def spine_active_days(mode: str, label: LabelSpec) -> int | None:
    """The recent order an account needs to be eligible: only with inactivity labels."""
    return label.active_days if mode == "inactivity" else None


def add_labels(
    tables: dict[str, ir.Table], spine: ir.Table, mode: str, label: LabelSpec
) -> ir.Table:
    """Add the label; explicit-mode rows that churn inside the lead gap are dropped."""
    lo = spine.cutoff + ibis.interval(days=label.lead_days)
    hi = spine.cutoff + ibis.interval(days=label.window_days)
    s = spine.mutate(_lo=lo, _hi=hi)
    if mode == "explicit":
        churn = tables["churn"].select(_cid="account_id", _at="churned_at")
        t = s.left_join(churn, s.account_id == churn._cid)
        t = t.filter(t._at.isnull() | (t._at >= t._lo))
        return t.select(*KEYS, **{LABEL: (t._at.notnull() & (t._at < t._hi)).cast("int8")})
    orders = tables["orders"]
    hits = orders.join(
        s,
        [orders.account_id == s.account_id, orders.order_date >= s._lo, orders.order_date < s._hi],
    )
    counts = hits.group_by(_aid=hits.account_id, _cut=hits.cutoff).aggregate(_n=hits.count())
    t = s.left_join(counts, [s.account_id == counts._aid, s.cutoff == counts._cut])
    return t.select(*KEYS, **{LABEL: t._n.isnull().cast("int8")})
