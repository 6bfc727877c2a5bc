"""The row-level rules: per table, each rule a SQL predicate over its typed rows; the flags they
set on every row (flags_<table>), the cross-table facts they join (account_keys,
relationship_began) and the problems they report, with examples.

`table_rules` lists every rule of the contract in the order the problems are reported; the
functions after it evaluate them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import duckdb

from pipeline.contract import DATE_ORDERS, DATE_PATTERN, OTHER_DATE_PATTERN, PLAUSIBLE_DATES
from pipeline.io import NUMBER_FIX
from pipeline.io import sql_literal as _lit
from pipeline.outcome import MAX_EXAMPLES, ROW, Problem, Validated, quote

if TYPE_CHECKING:
    from pipeline.readers import Source
    from pipeline.timeline import Late


# Said first in a table's "duplicate ids" fix, where an id repeated means more than a copy.
_DUPLICATE_FIX = {
    "churn": "an account churns once here (churn is final: see the note on events after "
    "churn); give the date it left for good, or correct the wrong row; ",
}


@dataclass(frozen=True)
class Rule:
    """A row-level check: a predicate over the typed row `t` (and the joined a, b)."""

    column: str | None
    check: str
    predicate: str
    fix: str
    show: tuple[str, ...]
    mixed: str | None = None  # the check's name when the column also holds good values


def table_rules(
    src: Source,
    policy: str,
    end_date: dt.date | None,
    has_accounts: bool,
    late: Late | None = None,
) -> tuple[list[Rule], str]:
    """The row-level rules for one table and the joins they need (aliases a, b)."""
    spec, present, usable = src.spec, set(src.mapping), src.usable
    rules: list[Rule] = []
    key_cols = [c for c in (spec.key, "account_id") if c and c in present]
    lo, hi = PLAUSIBLE_DATES

    def show(*cols: str) -> tuple[str, ...]:
        return tuple(dict.fromkeys([*key_cols, *cols]))

    for column in spec.columns:
        name = column.name
        if name not in present:
            continue
        txt, val = f"t.{quote(name + '#txt')}", f"t.{quote(name)}"
        if column.required:
            rules.append(
                Rule(
                    name,
                    "empty values in a required column",
                    f"{txt} IS NULL",
                    "fill the column or drop those rows",
                    show(name),
                )
            )
        if name not in usable:
            continue
        if column.kind == "ts":
            other = (
                f"(regexp_full_match({txt}, {_lit(OTHER_DATE_PATTERN)}) AND NOT "
                f"regexp_full_match({txt}, {_lit(DATE_PATTERN)}))"
            )
            rules.append(
                Rule(
                    name,
                    "dates in another format than YYYY-MM-DD",
                    f"{txt} IS NOT NULL AND {val} IS NULL AND {other}",
                    "write every date as YYYY-MM-DD (or YYYY-MM-DD HH:MM:SS)",
                    show(name),
                    mixed="dates in another format than the rest of the column (mixed formats)",
                )
            )
            rules.append(
                Rule(
                    name,
                    "dates that do not parse",
                    f"{txt} IS NOT NULL AND {val} IS NULL AND NOT {other}",
                    "write dates as YYYY-MM-DD or YYYY-MM-DD HH:MM:SS (a real calendar date); "
                    "leave the cell empty when unknown",
                    show(name),
                )
            )
            rules.append(
                Rule(
                    name,
                    f"dates before {lo} or from {hi} on",
                    f"({val} < TIMESTAMP {_lit(lo)} OR {val} >= TIMESTAMP {_lit(hi)})",
                    "placeholders such as 0001-01-01 or 9999-12-31 stand for 'unknown' or "
                    "'never': leave the cell empty instead; otherwise correct the year",
                    show(name),
                )
            )
            if column.event and end_date is not None:
                rules.append(
                    Rule(
                        name,
                        f"dated after the data's end date {end_date} (validate.end_date)",
                        f"CAST({val} AS DATE) > DATE {_lit(end_date.isoformat())}",
                        "correct the dates, or set validate.end_date to the day the data was "
                        "exported",
                        show(name),
                    )
                )
            if column.event and late is not None:
                rules.append(
                    Rule(
                        name,
                        f"dated long after the rest of the data (from {late.first} on, after "
                        f"{late.gap} days without any event; the rest ends {late.rest_end})",
                        f"CAST({val} AS DATE) >= DATE {_lit(late.first.isoformat())} "
                        f"AND {val} < TIMESTAMP {_lit(hi)}",
                        "correct the year (a typo such as 2099 for 2023 is the usual cause); if "
                        "the dates are real, set validate.end_date to the day the data was "
                        "exported (the dates up to it are then trusted)",
                        show(name),
                    )
                )
        elif column.kind == "float":
            rules.append(
                Rule(
                    name,
                    "values that are not numbers",
                    f"{txt} IS NOT NULL AND {val} IS NULL",
                    NUMBER_FIX,
                    show(name),
                )
            )
            if column.non_negative:
                rules.append(
                    Rule(
                        name,
                        "negative values",
                        f"{val} < 0",
                        f"{name} cannot be below zero: correct the sign, or leave credit notes "
                        "and returns out of the export",
                        show(name),
                    )
                )
    joins = f" JOIN copies_{spec.name} d ON d.{ROW} = t.{ROW}"
    rules.append(
        Rule(
            None,
            "rows that are exact copies of an earlier row (exported twice)",
            f"d.copy_of < t.{ROW}",
            "remove the repeated rows: each is identical in every column to the row given as "
            "copy_of (under validate.policy drop the first copy is kept, the others dropped)"
            + (
                ""
                if spec.key
                else "; rows that are really distinct (two links set up the same day) need a "
                "column that tells them apart, such as an id (columns outside the contract count "
                "here and are ignored otherwise)"
            ),
            (*show(*([] if spec.key else spec.required_columns)), "d.copy_of"),
        )
    )
    if spec.key and spec.key in present:
        key = f"t.{quote(spec.key)}"
        same = f"OVER (PARTITION BY {key})"  # the rows of one id: not all one row's copies
        rules.append(
            Rule(
                spec.key,
                "duplicate ids",
                f"{key} IS NOT NULL AND min(d.copy_of) {same} < max(d.copy_of) {same}",
                _DUPLICATE_FIX.get(spec.name, "")
                + f"keep one row per {spec.key}: rows with the same id that differ in another "
                "column are all rejected (which one is right cannot be told)",
                show(),
            )
        )
    for order in DATE_ORDERS:
        if order.table == spec.name and {order.later, order.earlier} <= usable:
            later, earlier = f"t.{quote(order.later)}", f"t.{quote(order.earlier)}"
            rules.append(
                Rule(
                    order.later,
                    order.check,
                    f"CAST({later} AS DATE) < CAST({earlier} AS DATE)",
                    order.fix,
                    show(order.earlier, order.later),
                )
            )
    if spec.name != "accounts" and "account_id" in present and has_accounts:
        joins += " LEFT JOIN account_keys a ON a.account_id = t.account_id"
        rules.append(
            Rule(
                "account_id",
                "rows pointing at accounts not in the accounts table",
                "t.account_id IS NOT NULL AND a.account_id IS NULL",
                "add the accounts to accounts, or drop those rows",
                show(),
            )
        )
        if policy == "drop":
            rules.append(
                Rule(
                    "account_id",
                    "rows of accounts that were dropped (see the accounts problems)",
                    "a.account_id IS NOT NULL AND NOT a.kept",
                    "fix the accounts rows; these rows come back with them",
                    show(),
                )
            )
    if spec.name == "churn" and "churned_at" in usable and has_accounts:
        joins += " LEFT JOIN relationship_began b ON b.account_id = t.account_id"
        rules.append(
            Rule(
                "churned_at",
                "churned before the relationship began (customer_since, else the first order)",
                "CAST(t.churned_at AS DATE) < CAST(b.began AS DATE)",
                "check churned_at and the account's customer_since and first order",
                (*show("churned_at"), "b.began"),
            )
        )
    return rules, joins


def _copies(con: duckdb.DuckDBPyConnection, src: Source) -> None:
    """copies_<table>: per row, copy_of: the first row identical to it in every column.

    Copies share their key's text, so in a table with a key only the rows of a repeated key
    are compared column by column (sorting every column of a large table costs memory)."""
    name = src.spec.name
    texts = [f"TRY_CAST({quote(n)} AS VARCHAR)" for n in src.names]
    every = ", ".join(texts)
    if src.spec.key not in src.mapping:
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE copies_{name} AS SELECT {src.row} AS {ROW}, "
            f"min({src.row}) OVER (PARTITION BY {every}) AS copy_of FROM src_{name}"
        )
        return
    key, aliased = src.ref(src.spec.key), [f"_c{i}" for i in range(len(texts))]
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE copies_{name} AS WITH k AS (SELECT {src.row} AS {ROW}, "
        f"count(*) OVER (PARTITION BY {key}) AS _n, "
        + ", ".join(f"{t} AS {a}" for t, a in zip(texts, aliased, strict=True))
        + f" FROM src_{name}) SELECT {ROW}, {ROW} AS copy_of FROM k WHERE _n = 1 UNION ALL "
        f"SELECT {ROW}, min({ROW}) OVER (PARTITION BY {', '.join(aliased)}) FROM k WHERE _n > 1"
    )


def flag_rows(con: duckdb.DuckDBPyConnection, src: Source, joins: str) -> None:
    """copies_<table> and flags_<table>: per row one flag per rule (f0, f1, ...), _bad (any),
    g<k> (a good value in a mixed-format rule's column), o (mapped to 'other'), copy_of."""
    name, spec = src.spec.name, src.spec
    _copies(con, src)
    cols = [f"coalesce({r.predicate}, false) AS f{k}" for k, r in enumerate(src.rules)]
    cols.append("d.copy_of")
    cols += [f"t.{quote(r.column)} IS NOT NULL AS g{k}" for k, r in enumerate(src.rules) if r.mixed]
    vocab = spec.vocabulary[0] if spec.vocabulary else None
    if vocab in src.usable:
        cols.append(
            f"coalesce(t.{quote(vocab)} = 'other' AND lower(t.{quote(vocab + '#txt')}) <> 'other', "
            "false) AS o"
        )
    if "relationship_began" in joins:
        cols.append("CAST(CAST(b.began AS DATE) AS VARCHAR) AS began")
    bad = " OR ".join(f"f{k}" for k in range(len(src.rules))) or "false"
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE flags_{name} AS SELECT *, ({bad}) AS _bad FROM "
        f"(SELECT t.{ROW}{''.join(', ' + c for c in cols)} FROM typed_{name} t{joins})"
    )


def report_rules(
    con: duckdb.DuckDBPyConnection, src: Source, problems: list[Problem], result: Validated
) -> None:
    """Count each rule's breaches, the rows kept and the values mapped in one query; examples."""
    name, rules = src.spec.name, src.rules
    mixed = [k for k, r in enumerate(rules) if r.mixed]
    vocab = src.spec.vocabulary[0] if src.spec.vocabulary else None
    has_vocab = vocab in src.usable
    counts = list(
        con.execute(
            "SELECT "
            + "".join(f"count(*) FILTER (WHERE f{k}), " for k in range(len(rules)))
            + "".join(f"count(*) FILTER (WHERE g{k}), " for k in mixed)
            + ("count(*) FILTER (WHERE o AND NOT _bad), " if has_vocab else "0, ")
            + f"count(*) FILTER (WHERE NOT _bad) FROM flags_{name}"
        ).fetchone()
    )
    src.kept, mapped = counts.pop(), counts.pop()
    good = dict(zip(mixed, counts[len(rules) :], strict=True))
    for k, (rule, n) in enumerate(zip(rules, counts[: len(rules)], strict=True)):
        if not n:
            continue
        if rule.mixed and good[k]:
            rule = rules[k] = replace(rule, check=rule.mixed)
        select = [f"CAST(f.{ROW} AS VARCHAR) AS {ROW}"]
        for col in rule.show:
            if col == "b.began":
                select.append("f.began AS relationship_began")
            elif col == "d.copy_of":
                select.append("CAST(f.copy_of AS VARCHAR) AS copy_of")
            else:
                select.append(f"TRY_CAST(s.{src.ref(col)} AS VARCHAR) AS {quote(col)}")
        rows = con.execute(
            f"SELECT {', '.join(select)} FROM flags_{name} f JOIN src_{name} s "
            f"ON s.{src.row} = f.{ROW} WHERE f.f{k} ORDER BY f.{ROW} LIMIT {MAX_EXAMPLES}"
        )
        names = [d[0] for d in rows.description]
        examples = [dict(zip(names, r, strict=True)) for r in rows.fetchall()]
        problems.append(Problem(name, rule.column, rule.check, n, rule.fix, examples))
    if mapped:
        _map_counts(con, src, result)


def create_account_keys(con: duckdb.DuckDBPyConnection) -> None:
    """account_keys: every account id, and whether a row that is kept holds it."""
    con.execute(
        "CREATE OR REPLACE TEMP TABLE account_keys AS SELECT t.account_id, "
        "bool_or(NOT f._bad) AS kept FROM typed_accounts t JOIN flags_accounts f "
        f"USING ({ROW}) WHERE t.account_id IS NOT NULL GROUP BY 1"
    )


def create_relationship_began(
    con: duckdb.DuckDBPyConnection, sources: dict[str, Source], drop: bool
) -> None:
    """relationship_began: per account, customer_since, else its first order's date."""
    kept = " AND NOT f._bad" if drop else ""
    since = "t.customer_since" if "customer_since" in sources["accounts"].usable else "NULL"
    orders = sources.get("orders")
    has_orders = orders is not None and {"account_id", "order_date"} <= orders.usable
    con.execute(
        "CREATE OR REPLACE TEMP TABLE relationship_began AS SELECT k.account_id, "
        f"coalesce(k.since, {'o.first' if has_orders else 'NULL'}) AS began FROM "
        f"(SELECT t.account_id, min({since}) AS since FROM typed_accounts t "
        f"JOIN flags_accounts f USING ({ROW}) WHERE t.account_id IS NOT NULL{kept} GROUP BY 1) k"
        + (
            " LEFT JOIN (SELECT t.account_id, min(t.order_date) AS first FROM typed_orders t "
            f"JOIN flags_orders f USING ({ROW}) WHERE t.account_id IS NOT NULL{kept} "
            "GROUP BY 1) o USING (account_id)"
            if has_orders
            else ""
        )
    )


def _map_counts(con: duckdb.DuckDBPyConnection, src: Source, result: Validated) -> None:
    """Count the vocabulary values mapped to 'other' in the rows that are kept."""
    name, col = src.spec.name, src.spec.vocabulary[0]
    rows = con.execute(
        f"SELECT lower(t.{quote(col + '#txt')}) AS v, count(*) AS n FROM typed_{name} t "
        f"JOIN flags_{name} f USING ({ROW}) WHERE f.o AND NOT f._bad GROUP BY 1 "
        "ORDER BY n DESC, v"
    ).fetchall()
    total = sum(n for _, n in rows)
    result.mapped[f"{name}.{col}"] = {"rows": total, "values": dict(rows[:50])}
    shown = ", ".join(f"{v!r} {n}" for v, n in rows[:MAX_EXAMPLES])
    more = ", ..." if len(rows) > MAX_EXAMPLES else ""
    result.notes.append(
        f"{name}.{col}: values outside the vocabulary mapped to 'other' in {total} "
        f"row{'s' if total != 1 else ''} ({shown}{more}); map them in your export if "
        "they mean one of the known types"
    )
