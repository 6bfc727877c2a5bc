"""Streams: an account's events placed in time, and the cutoffs they are seen from.

A stream is the rows of one input table, each placed at one time (orders by order date, by
promised date, interactions by when they occurred, ...), optionally reshaped first (order gaps,
first contacts) or restricted to some rows (late orders). Every feature's aggregates run over
one stream (features/language.py `Agg.stream`). A feature is computed at a cutoff from the
events placed strictly before it (docs/point-in-time.md); `KEYS`, (account_id, cutoff), are
the keys of the spine and of every table of features. The helpers here turn times into what
the engines compare: whole days, seconds, or a timestamp literal for a single cutoff.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import ibis
import ibis.expr.types as ir
import pandas as pd

KEYS = ["account_id", "cutoff"]  # the keys of the spine and of every table of features
SECONDS_A_DAY = 86400


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


def timestamp_literal(ts: pd.Timestamp) -> ir.TimestampScalar:
    """A time as a timestamp literal: the only way a single cutoff enters a query."""
    return ibis.literal(pd.Timestamp(ts).to_pydatetime(), type="timestamp")


def day_of(ts: ir.TimestampValue) -> ir.IntegerValue:
    """Whole days since 1970-01-01 (the day a time falls on)."""
    return ts.epoch_seconds().cast("int64") // SECONDS_A_DAY


def epoch_of(ts: ir.TimestampValue) -> ir.FloatingValue:
    """Seconds since 1970-01-01 of a time."""
    return ts.epoch_seconds().cast("float64")


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
    return t.mutate(_epoch=epoch_of(t._ts), _day=day_of(t._ts))


class StreamView:
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
            return {"_ts": ts, "_epoch": epoch_of(ts), "_day": day_of(ts)}[name]
        return getattr(self._table, name)

    def __getitem__(self, name: str) -> ir.Value:
        return getattr(self, name)
