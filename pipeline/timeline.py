"""The timeline of event dates across the tables, and where it ends in a late tail: event dates
long after the rest of the data (a typo such as 2099 for 2023), which the rules report when no
validate.end_date is set (validate.gap_days).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING

import duckdb

from pipeline.contract import LATE_SHARE, PLAUSIBLE_DATES
from pipeline.io import sql_literal as _lit
from pipeline.outcome import quote

if TYPE_CHECKING:
    from pipeline.readers import Source


@dataclass(frozen=True)
class Late:
    """Where the late tail of the timeline starts, the gap before it and where the rest ends."""

    first: dt.date
    gap: int  # days without any event before `first`
    rest_end: dt.date  # the last day with an event before the gap


def event_days(
    con: duckdb.DuckDBPyConnection, sources: dict[str, Source]
) -> list[tuple[dt.date, int]]:
    """The timeline: every day with an event date (contract columns marked `event`, values in
    the plausible range) in any table, and how many there are, in order."""
    lo, hi = PLAUSIBLE_DATES
    parts = [
        f"SELECT CAST({quote(c.name)} AS DATE) AS d FROM typed_{name} "
        f"WHERE {quote(c.name)} >= TIMESTAMP {_lit(lo)} AND {quote(c.name)} < TIMESTAMP {_lit(hi)}"
        for name, src in sources.items()
        for c in src.spec.columns
        if c.event and c.name in src.usable
    ]
    if not parts:
        return []
    return con.execute(
        f"SELECT d, count(*) FROM ({' UNION ALL '.join(parts)}) GROUP BY d ORDER BY d"
    ).fetchall()


def late_tail(days: list[tuple[dt.date, int]], gap_days: int) -> Late | None:
    """Where the timeline `days` ends in a late tail, or None.

    From the latest gap of more than `gap_days` days without any event backwards: the events
    after a gap are a late tail when they are at most LATE_SHARE of those before it, or, when
    the gap is longer than the whole history before it, fewer than those. Each tail found is
    cut off and the next gap judged against what is left, until one is not a tail; so the
    rows kept pass the same rule again. Dense data never has such a gap; sparse data (a
    handful of rows) needs the second arm's contrast to be judged late.
    """
    before, total = [], 0  # before[i]: event dates on days before days[i]
    for _, n in days:
        before.append(total)
        total += n
    late, left = None, total
    for i in range(len(days) - 1, 0, -1):
        gap = (days[i][0] - days[i - 1][0]).days
        if gap <= gap_days:
            continue
        tail, rest = left - before[i], before[i]
        span = (days[i - 1][0] - days[0][0]).days
        if tail > LATE_SHARE * rest and not (gap > span and tail < rest):
            break
        late, left = Late(days[i][0], gap, days[i - 1][0]), rest
    return late
