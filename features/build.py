"""Assemble features for many (account, cutoff) pairs, by one of three engines.

The spine holds the (account_id, cutoff) pairs. Each feature is a combination of windowed
aggregates over an account's events of one stream (features/catalog.py). Per stream, the
aggregates are computed by one of three engines, which give the same values:

- `join`: the events are joined to every cutoff they precede (and, when every window of the
  stream is bounded, no older than the longest window), then grouped per (account, cutoff).
  Work grows with events x cutoffs: the right choice for one cutoff.
- `window`: one marker row per (account, cutoff) joins the account's events in one time line;
  window functions with RANGE frames over whole days evaluate every aggregate at every marker,
  so a whole snapshot schedule takes one sorted pass over the events. DuckDB can spill it.
- `sliding`: DuckDB evaluates every condition once per event and sorts the events by
  (account, day); compiled loops (features/sliding.py) slide each window from one cutoff of
  the account to the next. The same work as `window` without a segment tree per aggregate:
  several times faster, the default for a schedule; the sorted events must fit in memory.

Streams whose conditions need the cutoff itself (links active at the cutoff, lateness known at
the cutoff) always use the join; they are small (links) or restricted to few rows (late orders).
"""

from __future__ import annotations

import functools
import itertools
import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import SimpleNamespace

import ibis
import ibis.expr.operations as ops
import ibis.expr.types as ir
import numpy as np
import pandas as pd
import pyarrow as pa

from features import sliding
from features.catalog import GROUPS, plan
from features.language import Agg, Feature, FeatureConfig

KEYS = ["account_id", "cutoff"]
_TABLES = itertools.count()  # names of the arrays the sliding engine hands to DuckDB
_SLIDING = "_sliding_"
SLIDING_ROWS = 4_000_000  # events the sliding engine holds in memory at a time (about)
ENGINES = ("auto", "join", "window", "sliding")
Cache = Callable[[ir.Table], ir.Table]  # materializes a table: Ibis's cache, or compiled.py's
SECONDS_A_DAY = 86400
UNIT = 1_000_000  # sums and means add real values in whole millionths (fixed_point)
LIMIT = 9e12  # and no larger than this: a value in millionths still fits 64 bits


def _closed(start: str, end: str) -> Callable[[ir.Table], ir.Value]:
    """The later of two times, unknown while the second is unknown."""
    return lambda t: ibis.ifelse(
        t[end].isnull(), ibis.null("timestamp"), ibis.greatest(t[start], t[end])
    )


def _first_contacts(t: ir.Table) -> ir.Table:
    """One row per customer contact person: the time of its first interaction."""
    t = t.filter(t.contact_id.notnull())
    return t.group_by("account_id", "contact_id").aggregate(occurred_at=t.occurred_at.min())


def _order_gaps(t: ir.Table) -> ir.Table:
    """One row per day an account ordered on, after its first: the days since the previous
    day it ordered on (`gap_days`), placed at that day (`order_day`). A gap row depends only
    on the order days up to its own, so it is known at every cutoff after it.

    Every order is placed after the one before it in day order; the orders on a day already
    ordered on then have a gap of 0 and are dropped, which leaves one row per later day with
    the gap from the day before. (Without a DISTINCT over (account, day) first: at 1M
    accounts that hash aggregate of 74 M orders took as long as the window itself.)"""
    t = t.filter(t.order_date.notnull())
    days = t.select("account_id", order_day=t.order_date.truncate("D"))
    previous = days.order_day.lag().over(group_by=days.account_id, order_by=days.order_day)
    seconds = days.order_day.epoch_seconds() - previous.epoch_seconds()
    gaps = days.mutate(gap_days=seconds.cast("float64") / SECONDS_A_DAY)
    return gaps.filter(gaps.gap_days > 0)


def _late(t: ir.Table) -> ir.BooleanValue:
    return t.delivered_date.isnull() | (t.delivered_date > t.promised_date)


@dataclass(frozen=True)
class Stream:
    """Rows of a table placed in time: what a feature's aggregates run over."""

    table: str
    at: Callable[[ir.Table], ir.Value]  # the time that places a row
    rows: Callable[[ir.Table], ir.BooleanValue] | None = None  # which rows belong
    prepare: Callable[[ir.Table], ir.Table] | None = None  # reshape the table first
    join_only: bool = False  # conditions use the cutoff itself
    static: bool = False  # attributes of the account: no time condition


STREAMS = {
    "orders": Stream("orders", lambda t: t.order_date),
    "orders_due": Stream("orders", lambda t: t.promised_date),
    "orders_late": Stream("orders", lambda t: t.promised_date, rows=_late, join_only=True),
    "order_gaps": Stream("orders", lambda t: t.order_day, prepare=_order_gaps),
    "orders_closed": Stream("orders", _closed("promised_date", "delivered_date")),
    "interactions": Stream("interactions", lambda t: t.occurred_at),
    "resolutions": Stream("interactions", lambda t: t.resolved_at),
    "interactions_closed": Stream("interactions", _closed("occurred_at", "resolved_at")),
    "contacts_first": Stream("interactions", lambda t: t.occurred_at, prepare=_first_contacts),
    "links": Stream("links", lambda t: t.start_date, join_only=True),
    "accounts": Stream(
        "accounts",
        lambda t: t.customer_since if "customer_since" in t.columns else ibis.null("timestamp"),
        static=True,
    ),
}


def cutoff_table(cutoffs: Sequence[pd.Timestamp]) -> ir.Table:
    """A one-column table of cutoffs (timestamps at midnight)."""
    values = pd.DataFrame(
        {"cutoff": pd.to_datetime(pd.Series(list(cutoffs))).astype("datetime64[us]")}
    )
    return ibis.memtable(values).cast({"cutoff": "timestamp"})


def _timestamp(ts: pd.Timestamp) -> ir.TimestampScalar:
    """A time as a timestamp literal: the only way a single cutoff enters a query."""
    return ibis.literal(pd.Timestamp(ts).to_pydatetime(), type="timestamp")


def _day(ts: ir.TimestampValue) -> ir.IntegerValue:
    """Whole days since 1970-01-01 (the day a time falls on)."""
    return ts.epoch_seconds().cast("int64") // SECONDS_A_DAY


def events(tables: dict[str, ir.Table], name: str) -> ir.Table:
    """The rows of stream `name`, with their time `_ts`, `_epoch` (seconds) and `_day`."""
    stream = STREAMS[name]
    t = tables[stream.table]
    if stream.prepare is not None:
        t = stream.prepare(t)
    t = t.mutate(_ts=stream.at(t))
    if not stream.static:
        t = t.filter(t._ts.notnull())
    if stream.rows is not None:
        t = t.filter(stream.rows(t))
    return t.mutate(_epoch=_epoch(t._ts), _day=_day(t._ts))


def _in_window(age: ir.IntegerValue, agg: Agg, cfg: FeatureConfig) -> ir.BooleanValue:
    lo, hi = cfg.window(agg.window)
    inside = age > lo
    return inside if hi is None else inside & (age <= hi)


def fixed_point(value: ir.Value) -> ir.Value:
    """A real value as the sums and means of features add it: a whole number of millionths
    (UNIT; values beyond +-LIMIT count as +-LIMIT). Sums of whole numbers are exact, so they
    do not depend on the order rows are added in, and features come out byte-identical
    whatever the number of threads that aggregate them (a sum of doubles differs in its last
    bits from run to run). Other values are returned as they are (integers add up exactly)."""
    if not value.type().is_floating():
        return value
    # not least/greatest: DuckDB's skip NULLs, and an unknown value must stay unknown
    clamped = ibis.ifelse(value > LIMIT, LIMIT, ibis.ifelse(value < -LIMIT, -LIMIT, value))
    return _round(clamped * UNIT).cast("int64")  # Spark's cast would truncate: round first


@ibis.udf.scalar.builtin(name="round")
def _round(x: float) -> float:
    """The nearest whole number (halves away from zero): SQL's one-argument ROUND, which DuckDB
    computes several times faster than Ibis's ROUND(x, 0)."""


def _aggregate(
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


def _join_engine(
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
        parts = [] if static else [_in_window(joined._age, agg, cfg)]
        conditions[name] = parts + ([agg.where(joined, cfg)] if agg.where is not None else [])
    joined, values = _flagged(joined, aggs, conditions)
    unique, alias = _unique(values)
    out = joined.group_by(account_id="_aid", cutoff="_cut").aggregate(**unique)
    return out.select(*KEYS, **{name: out[alias[name]] for name in values})


def _window_engine(
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
        values[name] = _aggregate(line, agg, where, frame)
    unique, alias = _unique(values)
    out = line.mutate(**unique)
    return out.filter(out._mark).select(*KEYS, **{name: out[alias[name]] for name in values})


def _sliding_engine(
    ev: ir.Table, spine: ir.Table, aggs: dict[str, Agg], cfg: FeatureConfig
) -> ir.Table:
    """Aggregates at every (account, cutoff) by sliding windows (features/sliding.py).

    DuckDB evaluates each aggregate's condition and value once per event, numbers the
    accounts and sorts the events by (account, day); compiled loops then slide every window
    along each account's cutoffs. Rows of one account and day are also sorted by their
    values, so that sums add up in the same order run after run. The sorted events arrive in
    batches and are processed a few million rows at a time (SLIDING_ROWS), whole accounts at
    once, so memory holds the result and one part of the events, not all of them.
    """
    codes = spine.select("account_id").distinct().mutate(_code=ibis.row_number()).cache()
    marks = spine.join(codes, "account_id").select("_code", "_cday", *KEYS)
    marks = marks.order_by("_code", "_cday").to_pyarrow()
    mark_codes = marks["_code"].to_numpy()
    columns: dict[ops.Node, str] = {}  # each distinct condition and value, computed once

    def column(expr: ir.Value, prefix: str) -> str:
        return columns.setdefault(expr.op(), f"{prefix}{len(columns)}")

    plan: dict[tuple, str] = {}  # (kind, window, condition, value) -> the first name
    alias, nunique = {}, set()
    for name, agg in aggs.items():
        mask = agg.where(ev, cfg).fill_null(False) if agg.where is not None else ibis.literal(True)
        value = None
        if agg.value is not None:
            value = agg.value(ev)
            mask &= value.notnull()
            if agg.kind in ("sum", "mean") and value.type().is_floating():
                value = fixed_point(value).cast("float64") / UNIT  # as the other engines add
            value = column(value if agg.kind == "nunique" else value.cast("float64"), "_v")
        if agg.kind == "nunique":
            nunique.add(value)
        key = (agg.kind, cfg.window(agg.window), column(mask, "_m"), value)
        alias[name] = plan.setdefault(key, name)
    exprs = {name: op.to_expr() for op, name in columns.items()}
    masks = [c for c in exprs if c.startswith("_m")]
    values = {c: e.fill_null(0) if c not in nunique else e for c, e in exprs.items() if c[1] == "v"}
    # conditions travel as bits of a few integers: far fewer columns to sort and fetch
    words = {
        f"_w{w}": functools.reduce(
            operator.add,
            [exprs[m].cast("int64") * (1 << b) for b, m in enumerate(masks[w : w + 62])],
        )
        for w in range(0, len(masks), 62)
    }
    rows = ev.join(codes, "account_id").select("_code", "_day", **words, **values)
    size = min(SLIDING_ROWS, 1 << 20)
    batches = rows.order_by("_code", "_day", *values).to_pyarrow_batches(chunk_size=size)

    def slide(part: pa.Table, first: int, last: int) -> pa.Table:
        """The aggregates at the markers of accounts first..last, from their events `part`."""
        bits = {
            m: (part[f"_w{i - i % 62}"].to_numpy() >> (i % 62)) & 1 == 1
            for i, m in enumerate(masks)
        }
        numbers = {
            c: pd.factorize(part[c].to_pandas())[0] if c in nunique else part[c].to_numpy()
            for c in values
        }
        specs = []
        for kind, (lo, hi), mask, value in plan:
            number = None if value is None else numbers[value]
            if kind == "nunique":  # value codes, not values
                specs.append((kind, lo, hi, bits[mask], None, number))
            else:
                specs.append((kind, lo, hi, bits[mask], number, None))
        lo, hi = np.searchsorted(mark_codes, [first, last + 1])
        mk = marks.slice(lo, hi - lo)
        results = sliding.slide(
            part["_code"].to_numpy() - first,
            part["_day"].to_numpy(),
            mk["_code"].to_numpy() - first,
            mk["_cday"].to_numpy(),
            last - first + 1,
            specs,
        )
        out = {"account_id": mk["account_id"], "cutoff": mk["cutoff"]}
        for (kind, *_), name, (value, known) in zip(plan, plan.values(), results, strict=True):
            if kind in ("count", "nunique"):
                out[name] = pa.array(value.astype("int64"))
            else:
                out[name] = pa.array(value, mask=~known)
        return pa.table(out)

    done, pending, size = -1, [], 0  # accounts done; batches waiting; their rows
    parts = []  # (no query may run on the connection while it streams the events)
    for batch in itertools.chain(batches, [None]):
        if batch is not None:
            pending.append(batch)
            size += batch.num_rows
            if size < SLIDING_ROWS:
                continue
        part = pa.Table.from_batches(pending, schema=batches.schema)
        if batch is None:  # the end: every account left, those without events included
            last = int(mark_codes[-1]) if mark_codes.size else done
            pending, size = [], 0
        else:  # whole accounts only: the last one may go on in the next batch
            code = part["_code"].to_numpy()
            last = int(code[-1]) - 1
            cut = int(np.searchsorted(code, last, side="right"))
            part, rest = part.slice(0, cut), part.slice(cut)
            pending, size = rest.to_batches(), rest.num_rows
        if last > done:
            parts.append(slide(part, done + 1, last))
            done = last
    if not parts:  # no marker at all: an empty table of the right shape
        parts.append(slide(pa.Table.from_batches([], schema=batches.schema), 0, -1))
    # DuckDB reads the result where it lies, until build_features has copied it (_release)
    backend, view = ibis.get_backend(ev), f"{_SLIDING}{next(_TABLES)}"
    backend.con.register(view, pa.concat_tables(parts))
    table = backend.table(view)
    return table.select(*KEYS, **{name: table[alias[name]] for name in aggs})


def _release(part: ir.Table) -> None:
    """Let go of the arrays of the sliding engine that `part` reads (once it is copied)."""
    for table in part.op().find(ops.DatabaseTable):
        if table.name.startswith(_SLIDING):
            ibis.get_backend(part).con.unregister(table.name)


class _StreamView:
    """A table seen as one stream's rows: `_ts` is that stream's time (`_ts__<stream>`);
    `_epoch` and `_day` are computed from it only where an expression reads them."""

    def __init__(self, table: ir.Table, stream: str) -> None:
        self._table, self._stream = table, stream

    def __getattr__(self, name: str) -> ir.Value:
        if name in ("_ts", "_epoch", "_day"):
            column = f"_ts__{self._stream}"
            if column in self._table.columns:
                ts = self._table[column]
            else:  # computed from the table's own columns
                ts = STREAMS[self._stream].at(self._table)
            return {"_ts": ts, "_epoch": _epoch(ts), "_day": _day(ts)}[name]
        return getattr(self._table, name)

    def __getitem__(self, name: str) -> ir.Value:
        return getattr(self, name)


def _one_cutoff_engine(
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
        return _timestamp(day - pd.Timedelta(days=n))

    cut = _timestamp(cutoff)
    base = tables[table]
    # streams placed by the same time (orders due, orders late) share its column and flags
    first: dict[ops.Node, str] = {}
    shared = {name: first.setdefault(STREAMS[name].at(base).op(), name) for name in streams}

    def pass_of(name: str, agg: Agg) -> tuple[str | None, ops.Node | None]:
        """(the stream whose time bounds the pass's rows, or None; the value it counts
        distinct values of, or None)."""
        plain = isinstance(STREAMS[shared[name]].at(base).op(), ops.Field)
        bounded = plain and cfg.window(agg.window)[1] is not None
        distinct = (
            agg.value(_StreamView(base, shared[name])).op() if agg.kind == "nunique" else None
        )
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
            view, stream = _StreamView(t, shared[name]), STREAMS[name]
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
            t, values = _flagged(t, every, conditions, shared)
            unique, alias = _unique(values)
            part = t.group_by("account_id").aggregate(**unique)
            columns = {k: _epoch(part[alias[k]]) if k in times else part[alias[k]] for k in values}
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
    t, wheres = _flag_columns(t, conditions)
    first = next(iter(aggs.values()))
    value = first.value(_StreamView(t, shared[first.stream]))
    t = t.filter(value.notnull()).mutate(_value=value)
    flags = {k: ibis.literal(True) if w is None else w for k, w in wheres.items()}
    pairs = t.group_by("account_id", "_value").aggregate(**{k: f.any() for k, f in flags.items()})
    return pairs.group_by("account_id").aggregate(
        **{k: pairs.account_id.count(where=pairs[k]) for k in flags}
    )


def _epoch(ts: ir.TimestampValue) -> ir.FloatingValue:
    """Seconds since 1970-01-01 of a time."""
    return ts.epoch_seconds().cast("float64")


def _flag_columns(
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


def _flagged(
    t: ir.Table,
    aggs: dict[str, Agg],
    conditions: dict[str, list[ir.BooleanValue]],
    shared: dict[str, str] | None = None,
) -> tuple[ir.Table, dict[str, ir.Value]]:
    """Conditions as flag columns (_flag_columns), and each aggregate restricted to the
    conjunction of its own: (table, aggregates).

    `shared`: stream -> the stream whose time column (`_ts__<stream>`) it reads, when the
    table places its rows by several streams; values are then read through the aggregate's
    stream (`_epoch` is that stream's time)."""
    shared = shared or {}
    t, wheres = _flag_columns(t, conditions)
    values = {}
    for key, agg in aggs.items():
        view = _StreamView(t, shared[agg.stream]) if agg.stream in shared else t
        values[key] = _aggregate(view, agg, wheres[key])
    return t, values


def _unique(values: dict[str, ir.Value]) -> tuple[dict[str, ir.Value], dict[str, str]]:
    """Compute an aggregate that several features share once: (unique ones, name -> unique)."""
    first: dict[ops.Node, str] = {}
    alias = {name: first.setdefault(expr.op(), name) for name, expr in values.items()}
    return {name: values[name] for name in first.values()}, alias


def eligible_spine(
    tables: dict[str, ir.Table],
    cutoffs: Sequence[pd.Timestamp],
    active_days: int | None = None,
    engine: str = "join",
    cache: Cache = ir.Table.cache,
) -> ir.Table:
    """(account_id, cutoff) for every account eligible at each cutoff (DESIGN section 5).

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
        spine = acc.mutate(cutoff=_timestamp(cutoffs[0]))
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
    spine = spine.mutate(_cday=_day(spine.cutoff))
    ev = events(tables, stream)
    kind = STREAMS[stream]
    if engine in ("window", "sliding") and not (kind.join_only or kind.static):
        slide = engine == "sliding"
        return (_sliding_engine if slide else _window_engine)(ev, spine, aggs, cfg)
    return _join_engine(ev, spine, aggs, cfg, kind.static)


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
        functools.partial(_one_cutoff_engine, tables, t, st, cfg, cutoff)
        for t, st in by_table.items()
    ]
    for make in parts:
        # Materialized one at a time: compiling one query for every stream is slow.
        part = make()
        agg = cache(part.rename(_aid="account_id", _cut="cutoff"))
        _release(part)
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
