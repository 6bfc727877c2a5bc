"""The join engine: an account's events joined to every cutoff they precede.

The events of a stream are joined to every cutoff of the spine they precede (and, when every
window of the stream is bounded, are no older than the longest window), then grouped per
(account, cutoff). Work grows with events x cutoffs: the right choice for one cutoff, where
there is nothing to join at all (one_cutoff_engine: the cutoff is a literal, and each table is
read in a few grouped passes for all its streams). Streams whose conditions need the cutoff
itself (links active at the cutoff, lateness known at the cutoff) always use the join.
"""

from __future__ import annotations

import ibis
import ibis.expr.operations as ops
import ibis.expr.types as ir
import pandas as pd

from features.conditional import flag_columns, flagged, unique_aggregates
from features.language import Agg, FeatureConfig
from features.streams import KEYS, STREAMS, StreamView, epoch_of, timestamp_literal


def in_window(age: ir.IntegerValue, agg: Agg, cfg: FeatureConfig) -> ir.BooleanValue:
    """Whether an event `age` days before the cutoff's day is inside `agg`'s window."""
    lo, hi = cfg.window(agg.window)
    inside = age > lo
    return inside if hi is None else inside & (age <= hi)


def join_engine(
    ev: ir.Table, spine: ir.Table, aggs: dict[str, Agg], cfg: FeatureConfig, static: bool
) -> ir.Table:
    """Aggregates per (account, cutoff) by joining the events to the cutoffs they precede."""
    s = spine.select(_aid="account_id", _cut="cutoff", _cday="_cday")
    if static:
        joined = ev.join(s, ev.account_id == s._aid)
    else:
        cond = [ev.account_id == s._aid, ev._day < s._cday]
        reach = [cfg.window(a.window)[1] for a in aggs.values()]
        if all(hi is not None for hi in reach):
            cond.append(ev._day >= s._cday - max(reach))
        joined = ev.join(s, cond)
    joined = joined.mutate(cutoff=joined._cut, _age=joined._cday - joined._day)
    conditions = {}
    for name, agg in aggs.items():
        parts = [] if static else [in_window(joined._age, agg, cfg)]
        conditions[name] = parts + ([agg.where(joined, cfg)] if agg.where is not None else [])
    joined, values = flagged(joined, aggs, conditions)
    unique, alias = unique_aggregates(values)
    out = joined.group_by(account_id="_aid", cutoff="_cut").aggregate(**unique)
    return out.select(*KEYS, **{name: out[alias[name]] for name in values})


def one_cutoff_engine(
    tables: dict[str, ir.Table],
    table: str,
    streams: dict[str, dict[str, Agg]],
    cfg: FeatureConfig,
    cutoff: pd.Timestamp,
) -> ir.Table:
    """The join engine for a single cutoff: the streams of one table in a few grouped passes.

    With one cutoff there is nothing to join: each row is placed in time once per stream
    (orders by order date, by promised date, ...), and each aggregate filters on its stream's
    time before the cutoff, its window and its condition. Windows are comparisons of the
    stream's time with constant timestamps (no arithmetic per row), and the time of the
    latest or earliest event is aggregated as a timestamp and turned into seconds afterwards.

    Aggregates over bounded windows of a stream placed by a plain column (order date, ...)
    make a pass of their own over the rows no older than the longest of those windows, so the
    file's row groups outside it are skipped; the rest (unbounded windows, times computed per
    row) make one pass over every row. Distinct counts make a pass per value, grouped by
    (account, value) before counting. Every account is aggregated: build_features keeps the
    spine's.
    """
    day = pd.Timestamp(cutoff).normalize()  # windows count whole days before the cutoff's day

    def days_before(n: int) -> ir.TimestampScalar:
        return timestamp_literal(day - pd.Timedelta(days=n))

    cut = timestamp_literal(cutoff)
    base = tables[table]
    # streams placed by the same time (orders due, orders late) share its column and flags
    first: dict[ops.Node, str] = {}
    shared = {name: first.setdefault(STREAMS[name].at(base).op(), name) for name in streams}

    def pass_of(name: str, agg: Agg) -> tuple[str | None, ops.Node | None]:
        """(the stream whose time bounds the pass's rows, or None; the value it counts
        distinct values of, or None)."""
        plain = isinstance(STREAMS[shared[name]].at(base).op(), ops.Field)
        bounded = plain and cfg.window(agg.window)[1] is not None
        distinct = agg.value(StreamView(base, shared[name])).op() if agg.kind == "nunique" else None
        return (shared[name] if bounded else None, distinct)

    passes: dict[tuple, list[str]] = {}  # pass -> the streams with aggregates in it
    reach: dict[tuple, int] = {}  # pass -> its longest window (days)
    for name, aggs in streams.items():
        for agg in aggs.values():
            key = pass_of(name, agg)
            if name not in passes.setdefault(key, []):
                passes[key].append(name)
            if key[0] is not None:
                reach[key] = max(reach.get(key, 0), cfg.window(agg.window)[1])
    out = None
    for key, names in passes.items():
        # each pass filters the table itself: a shared filtered table would be one query
        # that DuckDB materializes for every pass to read, instead of reading the file
        keep = []  # every account's rows: the spine's are picked by build_features's join,
        # and sorting out the others first (a semi-join on account_id) costs more than it saves
        if key[0] is not None:  # no older than the longest window
            keep.append(STREAMS[key[0]].at(base) >= days_before(reach[key]))
        if key[1] is not None:  # distinct values: the rows with a value
            keep.append(key[1].to_expr().notnull())
        t = (base.filter(*keep) if keep else base).mutate(cutoff=cut)
        t = t.mutate(**{f"_ts__{shared[n]}": STREAMS[shared[n]].at(t) for n in names})
        conditions, every, times = {}, {}, set()
        for name in names:
            view, stream = StreamView(t, shared[name]), STREAMS[name]
            rows = [stream.rows(view)] if stream.rows is not None else []
            for k, agg in streams[name].items():
                if pass_of(name, agg) != key:
                    continue
                lo, hi = cfg.window(agg.window)
                parts = [view._ts < days_before(lo), *rows]
                if hi is not None:
                    parts.append(view._ts >= days_before(hi))
                conditions[k] = parts + ([agg.where(view, cfg)] if agg.where is not None else [])
                if agg.kind in ("max", "min") and agg.value(view).equals(view._epoch):
                    times.add(k)  # `last` or `first`: aggregate the time, in seconds afterwards
                    agg = Agg(agg.kind, agg.stream, agg.window, agg.where, lambda t: t._ts)
                every[k] = agg
        if key[1] is None:
            t, values = flagged(t, every, conditions, shared)
            unique, alias = unique_aggregates(values)
            part = t.group_by("account_id").aggregate(**unique)
            columns = {
                k: epoch_of(part[alias[k]]) if k in times else part[alias[k]] for k in values
            }
        else:
            part = _distinct_counts(t, every, conditions, shared)
            columns = {k: part[k] for k in every}
        part = part.select("account_id", **columns)
        if out is None:
            out = part
        else:  # an account may have rows in one pass and none in another
            part = part.rename(_aid="account_id")
            out = out.outer_join(part, out.account_id == part._aid)
            out = out.mutate(account_id=ibis.coalesce(out.account_id, out._aid)).drop("_aid")
    names = [k for aggs in streams.values() for k in aggs]
    return out.mutate(cutoff=cut).select("account_id", "cutoff", *names)


def _distinct_counts(
    t: ir.Table,
    aggs: dict[str, Agg],
    conditions: dict[str, list[ir.BooleanValue]],
    shared: dict[str, str],
) -> ir.Table:
    """Distinct values per account of one value (the same for every aggregate in `aggs`),
    each aggregate counting those that occur in a row meeting its conditions: grouped by
    (account, value) first, then counted, over only the rows a pass of their own reads. At 1M
    accounts the COUNT(DISTINCT)s inside the wider pass took about 10 s of wall time, these
    passes about 8."""
    t, wheres = flag_columns(t, conditions)
    first = next(iter(aggs.values()))
    value = first.value(StreamView(t, shared[first.stream]))
    t = t.filter(value.notnull()).mutate(_value=value)
    flags = {k: ibis.literal(True) if w is None else w for k, w in wheres.items()}
    pairs = t.group_by("account_id", "_value").aggregate(**{k: f.any() for k, f in flags.items()})
    return pairs.group_by("account_id").aggregate(
        **{k: pairs.account_id.count(where=pairs[k]) for k in flags}
    )
