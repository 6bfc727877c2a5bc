"""The window engine: RANGE window frames over each account's time line.

One marker row per (account, cutoff) joins the account's events in one time line; window
functions with RANGE frames over whole days evaluate every aggregate at every marker, so a
whole snapshot schedule takes one sorted pass over the events. Slower than the sliding engine
(a segment tree per aggregate), but DuckDB can spill it to disk when memory is short.
"""

from __future__ import annotations

import ibis
import ibis.expr.operations as ops
import ibis.expr.types as ir

from features.conditional import aggregate_where, unique_aggregates
from features.language import Agg, FeatureConfig
from features.streams import KEYS


def window_engine(
    ev: ir.Table, spine: ir.Table, aggs: dict[str, Agg], cfg: FeatureConfig
) -> ir.Table:
    """Aggregates at every (account, cutoff) by RANGE windows over each account's time line."""
    used = {"account_id", "_day"}
    for agg in aggs.values():
        parts = [agg.where(ev, cfg)] if agg.where is not None else []
        parts += [agg.value(ev)] if agg.value is not None else []
        used |= {f.name for p in parts for f in p.op().find(ops.Field)}
    schema = ev.schema()
    columns = [c for c in ev.columns if c in used]
    rows = ev.select(*columns).mutate(cutoff=ibis.null("timestamp"), _mark=ibis.literal(False))
    keys = {"account_id": spine.account_id, "_day": spine._cday}
    markers = spine.select(
        # every other column of a marker is unknown, so no aggregate counts it
        *[keys.get(c, ibis.null()).cast(schema[c]).name(c) for c in columns],
        cutoff=spine.cutoff.cast("timestamp"),
        _mark=ibis.literal(True),
    )
    line = rows.union(markers)
    values = {}
    for name, agg in aggs.items():
        lo, hi = cfg.window(agg.window)
        frame = ibis.window(
            group_by=line.account_id,
            order_by=line._day,
            range=(None if hi is None else -hi, -(lo + 1)),
        )
        where = ~line._mark & agg.where(line, cfg) if agg.where is not None else ~line._mark
        values[name] = aggregate_where(line, agg, where, frame)
    unique, alias = unique_aggregates(values)
    out = line.mutate(**unique)
    return out.filter(out._mark).select(*KEYS, **{name: out[alias[name]] for name in values})
