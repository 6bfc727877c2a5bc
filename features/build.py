"""Assemble features for many (account, cutoff) pairs, by one of three engines.

The spine holds the (account_id, cutoff) pairs: every account eligible at each cutoff
(eligible_spine; docs/point-in-time.md). Each feature is a combination of windowed aggregates
over an account's events of one stream (features/streams.py, features/catalog.py). Per
stream, the aggregates are computed by one of three engines, which give the same values:

- `join` (features/join.py): the events joined to every cutoff they precede, then grouped
  per (account, cutoff); for a single cutoff, each table read in a few grouped passes.
- `window` (features/window.py): RANGE window frames over each account's time line, one
  sorted pass for a whole schedule; DuckDB can spill it.
- `sliding` (features/sliding_engine.py): DuckDB sorts the events once and compiled loops
  slide every window from cutoff to cutoff; the default for a schedule.

Streams whose conditions need the cutoff itself (links active at the cutoff, lateness known at
the cutoff) always use the join; they are small (links) or restricted to few rows (late orders).
This module chooses the engine, runs it per stream, and combines the aggregates into features.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from types import SimpleNamespace

import ibis
import ibis.expr.types as ir
import pandas as pd

from features.catalog import GROUPS, plan
from features.fixed_point import LIMIT, UNIT, fixed_point
from features.join import join_engine, one_cutoff_engine
from features.language import Agg, Feature, FeatureConfig
from features.sliding_engine import release, sliding_engine
from features.streams import KEYS, STREAMS, cutoff_table, day_of, events, timestamp_literal
from features.window import window_engine

__all__ = [  # also what the application and the tests import from here
    "ENGINES",
    "KEYS",
    "LIMIT",
    "UNIT",
    "Cache",
    "aggregates",
    "build_features",
    "choose_engine",
    "eligible_spine",
    "fixed_point",
]

ENGINES = ("auto", "join", "window", "sliding")
Cache = Callable[[ir.Table], ir.Table]  # materializes a table: Ibis's cache, or compiled.py's


def eligible_spine(
    tables: dict[str, ir.Table],
    cutoffs: Sequence[pd.Timestamp],
    active_days: int | None = None,
    engine: str = "join",
    cache: Cache = ir.Table.cache,
) -> ir.Table:
    """(account_id, cutoff) for every account eligible at each cutoff (docs/point-in-time.md).

    Eligible: the relationship started before the cutoff (customer_since, else the first
    order) and the account had not churned before it. With `active_days`, the account must
    also have ordered in the `active_days` before the cutoff (churn by inactivity). One
    cutoff is a literal in the query, not a table: the query differs from one cutoff to the
    next only in its timestamp literals (features/compiled.py). `cache` materializes a table.
    """
    accounts, orders = tables["accounts"], tables["orders"]
    if "customer_since" in accounts.columns:  # the first order counts only where it is unknown
        unknown = accounts.filter(accounts.customer_since.isnull()).account_id
        orders = orders.filter(orders.account_id.isin(unknown))
    first = orders.group_by(orders.account_id.name("_aid")).aggregate(
        _first_order=orders.order_date.min()
    )
    acc = accounts.left_join(first, accounts.account_id == first._aid)
    since = acc.customer_since if "customer_since" in accounts.columns else ibis.null("timestamp")
    acc = acc.select("account_id", _start=ibis.coalesce(since, acc._first_order))
    if len(cutoffs) == 1:
        spine = acc.mutate(cutoff=timestamp_literal(cutoffs[0]))
    else:
        spine = acc.cross_join(cutoff_table(cutoffs))
    spine = spine.filter(lambda t: t._start < t.cutoff)
    if "churn" in tables:
        churn = tables["churn"].select(_cid="account_id", _churned_at="churned_at")
        spine = spine.left_join(churn, spine.account_id == churn._cid).filter(
            lambda t: t._churned_at.isnull() | (t._churned_at >= t.cutoff)
        )
    spine = cache(spine.select(*KEYS))
    if active_days is not None:
        recent = {"n": Agg("count", "orders", (0, active_days))}
        n = aggregates(tables, spine, "orders", recent, FeatureConfig(), engine)
        spine = n.filter(n.n > 0).select(*KEYS)
    return spine


def choose_engine(engine: str, cutoffs: int) -> str:
    """`auto`: the join for one cutoff, sliding windows for a schedule."""
    if engine not in ENGINES:
        raise ValueError(f"unknown feature engine {engine!r}; choose from {list(ENGINES)}")
    if engine == "auto":
        return "join" if cutoffs <= 1 else "sliding"
    return engine


def _stream_aggs(features: list[Feature]) -> dict[str, dict[str, Agg]]:
    """Per stream, every aggregate the features need, named `<feature>__<key>`."""
    out: dict[str, dict[str, Agg]] = {}
    for f in features:
        for key, agg in f.aggs.items():
            out.setdefault(agg.stream, {})[f"{f.name}__{key}"] = agg
    return out


def aggregates(
    tables: dict[str, ir.Table],
    spine: ir.Table,
    stream: str,
    aggs: dict[str, Agg],
    cfg: FeatureConfig,
    engine: str = "join",
) -> ir.Table:
    """(account_id, cutoff, one column per aggregate) for the pairs of `spine` with events."""
    spine = spine.mutate(_cday=day_of(spine.cutoff))
    ev = events(tables, stream)
    kind = STREAMS[stream]
    if engine in ("window", "sliding") and not (kind.join_only or kind.static):
        slide = engine == "sliding"
        return (sliding_engine if slide else window_engine)(ev, spine, aggs, cfg)
    return join_engine(ev, spine, aggs, cfg, kind.static)


def build_features(
    tables: dict[str, ir.Table],
    spine: ir.Table,
    cfg: FeatureConfig,
    groups: Sequence[str] = GROUPS,
    engine: str = "join",
    cutoff: pd.Timestamp | None = None,
    cache: Cache = ir.Table.cache,
) -> ir.Table:
    """Features for every (account_id, cutoff) of `spine`, in catalog order, keys first.

    `cutoff`: the spine's only cutoff, when it has one; the join engine then reads each table
    once for all its streams. `cache` materializes a table (an Ibis cache by default).
    """
    unknown = set(groups) - set(GROUPS)
    if unknown:
        raise ValueError(f"unknown feature groups {sorted(unknown)}; choose from {list(GROUPS)}")
    if engine not in ENGINES[1:]:
        raise ValueError(f"feature engine must be one of {ENGINES[1:]}, not {engine!r}")
    chosen = plan({name: list(t.columns) for name, t in tables.items()}, tuple(groups))
    spine = cache(spine.select(*KEYS))
    result = spine
    kinds: dict[str, str] = {}
    parts = []  # one query per stream, or per table for a single cutoff, built when needed
    by_table: dict[str, dict[str, dict[str, Agg]]] = {}
    for stream, aggs in _stream_aggs(chosen).items():
        kinds |= {name: agg.kind for name, agg in aggs.items()}
        kind = STREAMS[stream]
        if engine == "join" and cutoff is not None and not (kind.static or kind.prepare):
            by_table.setdefault(kind.table, {})[stream] = aggs
        else:
            parts.append(functools.partial(aggregates, tables, spine, stream, aggs, cfg, engine))
    parts += [
        functools.partial(one_cutoff_engine, tables, t, st, cfg, cutoff)
        for t, st in by_table.items()
    ]
    for make in parts:
        # Materialized one at a time: compiling one query for every stream is slow.
        part = make()
        agg = cache(part.rename(_aid="account_id", _cut="cutoff"))
        release(part)
        result = result.left_join(
            agg, [result.account_id == agg._aid, result.cutoff == agg._cut]
        ).drop("_aid", "_cut")
    # counts are 0 where the join found no events; other aggregates stay unknown
    result = result.mutate(
        **{n: result[n].fill_null(0) for n, k in kinds.items() if k in ("count", "nunique")}
    )
    cutoff_epoch = result.cutoff.epoch_seconds().cast("float64")
    values = {}
    for f in chosen:
        if f.source == "derived":
            continue
        a = SimpleNamespace(cutoff_epoch=cutoff_epoch)
        for key in f.aggs:
            setattr(a, key, result[f"{f.name}__{key}"])
        value = f.expr(a, cfg)
        values[f.name] = value.fill_null(0) if f.fill_zero else value
    result = result.select(*KEYS, **values)
    for f in chosen:
        if f.source == "derived":
            result = result.mutate(**{f.name: f.expr(result, cfg)})
    return result.select(*KEYS, *[f.name for f in chosen])
