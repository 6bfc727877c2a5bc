"""Assemble features for many (account, cutoff) pairs in one query per source table.

The spine holds the (account_id, cutoff) pairs; each source table is joined to it once on the
account and on "event strictly before the cutoff", then aggregated per pair. One cutoff or a
whole snapshot schedule go through the same code.
"""

from __future__ import annotations

from collections.abc import Sequence

import ibis
import ibis.expr.types as ir
import pandas as pd

from features.catalog import GROUPS, VIRTUAL, Feature, FeatureConfig, days_before, plan

# The timestamp that places a row of each source table in time.
SOURCE_TIME = {
    "orders": "order_date",
    "interactions": "occurred_at",
    "links": "start_date",
    "accounts": "customer_since",
    "contacts": "occurred_at",
}
KEYS = ["account_id", "cutoff"]


def cutoff_table(cutoffs: Sequence[pd.Timestamp]) -> ir.Table:
    """A one-column table of cutoffs (timestamps at midnight)."""
    values = pd.DataFrame(
        {"cutoff": pd.to_datetime(pd.Series(list(cutoffs))).astype("datetime64[us]")}
    )
    return ibis.memtable(values).cast({"cutoff": "timestamp"})


def eligible_spine(
    tables: dict[str, ir.Table],
    cutoffs: Sequence[pd.Timestamp],
    active_days: int | None = None,
) -> ir.Table:
    """(account_id, cutoff) for every account eligible at each cutoff (DESIGN section 5).

    Eligible: the relationship started before the cutoff (customer_since, else the first
    order) and the account had not churned before it. With `active_days`, the account must
    also have ordered in the `active_days` before the cutoff (churn by inactivity).
    """
    accounts, orders = tables["accounts"], tables["orders"]
    first = orders.group_by(orders.account_id.name("_aid")).aggregate(
        _first_order=orders.order_date.min()
    )
    acc = accounts.left_join(first, accounts.account_id == first._aid)
    since = acc.customer_since if "customer_since" in accounts.columns else ibis.null("timestamp")
    acc = acc.select("account_id", _start=ibis.coalesce(since, acc._first_order))
    spine = acc.cross_join(cutoff_table(cutoffs)).filter(lambda t: t._start < t.cutoff)
    if "churn" in tables:
        churn = tables["churn"].select(_cid="account_id", _churned_at="churned_at")
        spine = spine.left_join(churn, spine.account_id == churn._cid).filter(
            lambda t: t._churned_at.isnull() | (t._churned_at >= t.cutoff)
        )
    spine = spine.select(*KEYS)
    if active_days is not None:
        s = spine.select(_aid="account_id", _cut="cutoff")
        recent = orders.join(s, [orders.account_id == s._aid, orders.order_date < s._cut])
        recent = (
            recent.filter(
                (recent._cut.epoch_seconds() - recent.order_date.epoch_seconds()) / 86400.0
                <= active_days
            )
            .select(account_id="_aid", cutoff="_cut")
            .distinct()
        )
        spine = recent
    return spine


def _source_aggregates(
    source: ir.Table, name: str, spine: ir.Table, features: list[Feature], cfg: FeatureConfig
) -> ir.Table:
    """Aggregate one source table's events before each cutoff into its features."""
    s = spine.select(_aid="account_id", _cut="cutoff")
    ts = SOURCE_TIME[name]
    if name == "accounts":  # static attributes: no time filter beyond eligibility
        joined = source.join(s, source.account_id == s._aid)
    else:
        joined = source.join(s, [source.account_id == s._aid, source[ts] < s._cut])
    joined = joined.mutate(cutoff=joined._cut)
    age = days_before(joined, ts) if ts in source.columns else ibis.null("float64")
    joined = joined.mutate(age=age)
    if name == "contacts":
        joined = (
            joined.filter(joined.contact_id.notnull())
            .group_by("_aid", "_cut", "contact_id")
            .aggregate(first_age=joined.age.max(), last_age=joined.age.min())
        )
    return joined.group_by(_aid="_aid", _cut="_cut").aggregate(
        **{f.name: f.expr(joined, cfg) for f in features}
    )


def build_features(
    tables: dict[str, ir.Table],
    spine: ir.Table,
    cfg: FeatureConfig,
    groups: Sequence[str] = GROUPS,
) -> ir.Table:
    """Features for every (account_id, cutoff) of `spine`, in catalog order, keys first."""
    unknown = set(groups) - set(GROUPS)
    if unknown:
        raise ValueError(f"unknown feature groups {sorted(unknown)}; choose from {list(GROUPS)}")
    sources = dict(tables) | {v: tables[t] for v, t in VIRTUAL.items() if t in tables}
    chosen = plan({name: list(t.columns) for name, t in tables.items()}, tuple(groups))
    result = spine
    for name, source in sources.items():
        here = [f for f in chosen if f.source == name]
        if not here:
            continue
        agg = _source_aggregates(source, name, spine, here, cfg)
        result = result.left_join(
            agg, [result.account_id == agg._aid, result.cutoff == agg._cut]
        ).drop("_aid", "_cut")
        zero = {f.name: result[f.name].fill_null(0) for f in here if f.fill_zero}
        if zero:
            result = result.mutate(**zero)
    for feature in chosen:
        if feature.source == "derived":
            result = result.mutate(**{feature.name: feature.expr(result, cfg)})
    return result.select(*KEYS, *[f.name for f in chosen])
