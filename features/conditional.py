"""Conditional aggregates: each aggregate over the rows that meet its own conditions.

An aggregate of a feature holds over the rows of its window and of its condition (an event
type, a department, ...). The join engines and the window engine write it the same way: every
distinct condition a flag column computed once per row, each aggregate of its value where its
flags hold (NULL elsewhere), sums and means in fixed point, and an aggregate that several
features share computed once.
"""

from __future__ import annotations

import functools
import operator

import ibis
import ibis.expr.operations as ops
import ibis.expr.types as ir

from features.fixed_point import UNIT, fixed_point
from features.language import Agg
from features.streams import StreamView


def aggregate_where(
    t: ir.Table, agg: Agg, where: ir.BooleanValue | None, over: ibis.Window | None = None
) -> ir.Value:
    """`agg` of its value over the rows where `where` holds (all rows for None), written as an
    aggregate of the value there and of NULL elsewhere: DuckDB computes that faster than the
    same aggregate with a FILTER clause. Sums and means add fixed_point values (then a
    float64 again), over the window `over` when given."""
    value = t.account_id if agg.kind == "count" else agg.value(t)
    exact = agg.kind in ("sum", "mean") and value.type().is_floating()
    if exact:
        value = fixed_point(value)
    if where is not None:
        value = ibis.ifelse(where, value, ibis.null(value.type()))
    out = getattr(value, agg.kind)()
    if over is not None:
        out = out.over(over)
    return out.cast("float64") / UNIT if exact else out


def flag_columns(
    t: ir.Table, conditions: dict[str, list[ir.BooleanValue]]
) -> tuple[ir.Table, dict[str, ir.BooleanValue | None]]:
    """Every distinct condition (a window, an event type, ...) as a column computed once per
    row: (table, key -> the conjunction of its flags, None for no condition)."""
    flags: dict[ops.Node, str] = {}
    names = {
        key: [flags.setdefault(p.op(), f"_flag{len(flags)}") for p in parts]
        for key, parts in conditions.items()
    }
    t = t.mutate(**{name: op.to_expr().fill_null(False) for op, name in flags.items()})
    return t, {
        key: functools.reduce(operator.and_, [t[c] for c in cs]) if cs else None
        for key, cs in names.items()
    }


def flagged(
    t: ir.Table,
    aggs: dict[str, Agg],
    conditions: dict[str, list[ir.BooleanValue]],
    shared: dict[str, str] | None = None,
) -> tuple[ir.Table, dict[str, ir.Value]]:
    """Conditions as flag columns (flag_columns), and each aggregate restricted to the
    conjunction of its own: (table, aggregates).

    `shared`: stream -> the stream whose time column (`_ts__<stream>`) it reads, when the
    table places its rows by several streams; values are then read through the aggregate's
    stream (`_epoch` is that stream's time)."""
    shared = shared or {}
    t, wheres = flag_columns(t, conditions)
    values = {}
    for key, agg in aggs.items():
        view = StreamView(t, shared[agg.stream]) if agg.stream in shared else t
        values[key] = aggregate_where(view, agg, wheres[key])
    return t, values


def unique_aggregates(values: dict[str, ir.Value]) -> tuple[dict[str, ir.Value], dict[str, str]]:
    """Compute an aggregate that several features share once: (unique ones, name -> unique)."""
    first: dict[ops.Node, str] = {}
    alias = {name: first.setdefault(expr.op(), name) for name, expr in values.items()}
    return {name: values[name] for name in first.values()}, alias
