"""The data notes: facts of valid data that shape the model and contradictions the data may
have for a good reason, told in a passing run (notes) and counted in the report (facts): zero
amounts, one-order and order-less accounts, the history's length, events after churn, orders
before customer_since, event dates after today.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import duckdb

from pipeline.contract import TABLES
from pipeline.io import sql_literal as _lit
from pipeline.outcome import MAX_EXAMPLES, ROW, Validated, kept_rows, quote


def _share(n: int, total: int) -> str:
    """`n of total (share)`, the share with two decimals below 1%."""
    if not total:
        return f"{n:,}"
    return f"{n:,} of {total:,} ({n / total:.{1 if n >= total / 100 else 2}%})"


def data_notes(result: Validated) -> None:
    """Facts of valid data that shape the model (zero amounts, one-order and order-less
    accounts, the history's length), as notes and, with their counts, in `result.facts`."""
    con, notes, facts = result.con, result.notes, result.facts
    orders = kept_rows(result, "orders", with_row=True)
    accounts = kept_rows(result, "accounts", with_row=True)
    n_orders, zero = con.execute(
        "SELECT count(*), count(*) FILTER (WHERE amount = 0) FROM clean_orders"
    ).fetchone()
    zero_ids = [
        r[0]
        for r in con.execute(
            f"SELECT order_id FROM ({orders}) WHERE amount = 0 ORDER BY {ROW} LIMIT {MAX_EXAMPLES}"
        ).fetchall()
    ]
    n_accounts, one, none = con.execute(
        "SELECT count(*), count(*) FILTER (WHERE o.n = 1), count(*) FILTER (WHERE o.n IS NULL) "
        "FROM clean_accounts a LEFT JOIN (SELECT account_id, count(*) AS n FROM clean_orders "
        "GROUP BY 1) o USING (account_id)"
    ).fetchone()
    none_ids = [
        r[0]
        for r in con.execute(
            f"SELECT a.account_id FROM ({accounts}) a WHERE NOT EXISTS (SELECT 1 FROM "
            f"clean_orders o WHERE o.account_id = a.account_id) ORDER BY a.{ROW} "
            f"LIMIT {MAX_EXAMPLES}"
        ).fetchall()
    ]
    days = (dt.date.fromisoformat(result.data_end) - dt.date.fromisoformat(result.data_start)).days
    facts.update(
        orders=n_orders,
        zero_amount_orders=zero,
        zero_amount_examples=zero_ids,
        accounts=n_accounts,
        one_order_accounts=one,
        no_order_accounts=none,
        no_order_examples=none_ids,
        history_days=days,
        history_weeks=round(days / 7, 1),
        absent_tables=[t for t in TABLES if t not in result.kept],
    )
    if zero:
        notes.append(
            f"orders: {_share(zero, n_orders)} orders have amount 0 (e.g. "
            f"{', '.join(zero_ids)}); they count as orders (recency, frequency, the inactivity "
            "label) but add nothing to order values"
        )
    if one:
        notes.append(
            f"accounts: {_share(one, n_accounts)} accounts have exactly one order (one-time "
            "buyers: no gap between orders to learn from)"
        )
    if none:
        notes.append(
            f"accounts: {_share(none, n_accounts)} accounts have no order at all (e.g. "
            f"{', '.join(none_ids)})"
        )
    _after_churn(result)
    _before_customer_since(result)
    _after_today(result)
    notes.append(
        f"history: {days / 7:.1f} weeks ({days} days, {result.data_start} to "
        f"{result.data_end}); the training schedule is chosen from it (churn featurize)"
    )


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}{'' if n == 1 else 's'}"


# The events that say an account is still a customer, and how an example names one.
_ACTIVITY = {
    "orders": ("order_date", "'order ' || e.order_id"),
    "interactions": ("occurred_at", "e.type || ' ' || e.interaction_id"),
    "links": ("start_date", "e.link_type || ' link'"),
}


def _by_account(con: duckdb.DuckDBPyConnection, rows: str) -> list[tuple[Any, ...]]:
    """Per account of `rows` (account_id, anchor, d, what, _row: events contradicting the
    account's anchor date), in file order: the id, the anchor, its first such event (what,
    day) and how many there are."""
    return con.execute(
        f"SELECT account_id, anchor, arg_min(what, (d, what)), min(d), count(*) FROM ({rows}) "
        f"GROUP BY account_id, anchor, {ROW} ORDER BY {ROW}"
    ).fetchall()


def _after_churn(result: Validated) -> None:
    """Note the accounts with orders, interactions or new links on a day after their churn.

    A customer who came back, or a wrong churn date: which, the data cannot tell, so it is a
    note. Churn is final in the pipeline (an account churned before a cutoff is neither a
    training row nor scored at it), so these events are never used for the account.
    """
    tables = [t for t in _ACTIVITY if t in result.kept]
    if "churn" not in result.kept or not tables:
        return
    con, churn = result.con, kept_rows(result, "churn", with_row=True)
    events = " UNION ALL ".join(
        f"SELECT {_lit(t)} AS t, e.account_id, CAST(e.{_ACTIVITY[t][0]} AS DATE) AS d, "
        f"{_ACTIVITY[t][1]} AS what FROM clean_{t} e"
        for t in tables
    )
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE after_churn AS SELECT e.*, c.{ROW}, "
        f"CAST(c.churned_at AS DATE) AS anchor FROM ({events}) e JOIN ({churn}) c "
        "USING (account_id) WHERE e.d > CAST(c.churned_at AS DATE)"
    )
    accounts = _by_account(con, "SELECT * FROM after_churn")
    if not accounts:
        return
    per_table = dict(con.execute("SELECT t, count(*) FROM after_churn GROUP BY t").fetchall())
    counts = {t: per_table.get(t, 0) for t in tables}
    result.facts.update(
        events_after_churn=counts,
        accounts_active_after_churn=len(accounts),
        active_after_churn_examples=[r[0] for r in accounts[:MAX_EXAMPLES]],
    )
    shown = "; ".join(f"{a}: churned {c}, {w} on {d}" for a, c, w, d, _ in accounts[:MAX_EXAMPLES])
    kinds = {"orders": "order", "interactions": "interaction", "links": "new link"}
    result.notes.append(
        f"churn: {_share(len(accounts), result.kept['churn'])} churned accounts have events on "
        f"a later day than their churned_at: "
        + ", ".join(_plural(counts[t], kinds[t]) for t in tables)
        + f" (e.g. {shown}). A customer who came back, or a wrong churn date? Churn is final "
        "here: from churned_at on, an account is in no training row and is not scored (status "
        "churned), so these events go unused. For a customer who came back, remove its churn "
        "row (or give the date it left for good); otherwise correct churned_at"
    )


def _before_customer_since(result: Validated) -> None:
    """Note the orders dated before their account's customer_since.

    Plausible (customer_since is often a CRM migration or a contract date), so a note: the
    relationship begins at customer_since (eligibility, tenure) and the earlier orders still
    count in the account's features.
    """
    if "customer_since" not in result.columns.get("accounts", []):
        return
    accounts = _by_account(
        result.con,
        f"SELECT a.{ROW}, o.account_id, CAST(o.order_date AS DATE) AS d, 'order ' || "
        "o.order_id AS what, CAST(a.customer_since AS DATE) AS anchor FROM clean_orders o "
        f"JOIN ({kept_rows(result, 'accounts', with_row=True)}) a USING (account_id) "
        "WHERE CAST(o.order_date AS DATE) < CAST(a.customer_since AS DATE)",
    )
    if not accounts:
        return
    n = sum(r[4] for r in accounts)
    result.facts.update(
        orders_before_customer_since=n,
        accounts_ordering_before_customer_since=len(accounts),
        ordering_before_customer_since_examples=[r[0] for r in accounts[:MAX_EXAMPLES]],
    )
    shown = "; ".join(
        f"{a}: customer since {s}, {w} on {d}" for a, s, w, d, _ in accounts[:MAX_EXAMPLES]
    )
    result.notes.append(
        f"orders: {_plural(n, 'order')} of {_plural(len(accounts), 'account')} "
        f"{'is' if n == 1 else 'are'} dated before the account's customer_since (e.g. "
        f"{shown}). The relationship is taken to begin at customer_since (the account is "
        "trained on and scored from then on, tenure counts from it) while the earlier orders "
        "still count in its features; if customer_since is a later date than the first "
        "business (a CRM migration, a renewal), leave it empty so that the first order dates "
        "the relationship"
    )


def _after_today(result: Validated, today: dt.date | None = None) -> None:
    """Note event dates after today (the machine's date) when no end date is set.

    An export cannot hold events that have not happened yet, but the clock is not data: a
    problem from it would make the same input fail today and pass later (and a simulated
    world may be set in the future), so it is a note; validate.end_date makes it a problem.
    """
    today = today or dt.date.today()
    if result.end_date is not None or result.latest_event is None or result.latest_event <= today:
        return
    day = f"DATE {_lit(today.isoformat())}"
    parts = [
        f"SELECT {_lit(f'{t}.{c.name}')} AS col, {ROW}, "
        f"CAST({quote(TABLES[t].key or 'account_id')} AS VARCHAR) AS id, "
        f"CAST({quote(c.name)} AS DATE) AS d FROM ({kept_rows(result, t, with_row=True)}) "
        f"WHERE CAST({quote(c.name)} AS DATE) > {day}"
        for t in result.kept
        for c in TABLES[t].columns
        if c.event and c.name in result.columns[t]
    ]
    rows = result.con.execute(
        f"SELECT col, id, d, count(*) OVER () FROM ({' UNION ALL '.join(parts)}) "
        f"ORDER BY d DESC, col, {ROW} LIMIT {MAX_EXAMPLES}"
    ).fetchall()
    if not rows:
        return
    result.facts["event_dates_after_today"] = rows[0][3]
    shown = ", ".join(f"{col} {d} ({i})" for col, i, d, _ in rows)
    result.notes.append(
        f"dates: {_plural(rows[0][3], 'event date')} after today ({today}, this machine's "
        f"date; latest first: {shown}): an export cannot hold events that have not happened "
        "yet. Correct them, or set validate.end_date to the day the data was exported to "
        "have them reported as problems"
    )
