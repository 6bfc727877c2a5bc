"""`check`: one pass over a data folder against the input contract, in the order the problems
are reported: find and read each table's file (pipeline.readers), run the row rules
(pipeline.rules, with the late tail of pipeline.timeline), then create the clean views and
tell the data notes (pipeline.notes). Also the validate section's settings, checked.

Below the stages, not in the validate stage: `pipeline.store.load` checks a raw folder the
same way for every later stage.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import duckdb

from pipeline.contract import EVENT_TIME, LATE_GAP_DAYS, POLICIES, TABLES, parse_date
from pipeline.errors import DataError, UserError
from pipeline.lineage import source_of
from pipeline.notes import data_notes
from pipeline.outcome import Problem, Validated, kept_rows
from pipeline.readers import check_types, locate, read_source, typed_select, usable_source
from pipeline.rules import (
    create_account_keys,
    create_relationship_began,
    flag_rows,
    report_rules,
    table_rules,
)
from pipeline.timeline import event_days, late_tail


def parse_vocabulary(vocabulary: Any) -> dict[str, dict[str, str]]:
    """validate.vocabulary checked: {"table.column": {their value: our value}}, lower-cased."""
    if not vocabulary:
        return {}
    columns = {
        f"{t.name}.{t.vocabulary[0]}": t.vocabulary[1] for t in TABLES.values() if t.vocabulary
    }
    if not isinstance(vocabulary, dict):
        raise UserError(
            "validate.vocabulary must map 'table.column' to {your value: our value}; "
            f"got {vocabulary!r}"
        )
    out: dict[str, dict[str, str]] = {}
    for key, pairs in vocabulary.items():
        if key not in columns:
            raise UserError(
                f"validate.vocabulary: {key!r} is not a vocabulary column; "
                f"use one of {', '.join(sorted(columns))}"
            )
        if not pairs:
            continue
        if not isinstance(pairs, dict):
            raise UserError(f"validate.vocabulary.{key} must map your values to ours")
        ours = columns[key]
        wrong = {k: v for k, v in pairs.items() if str(v).strip().lower() not in ours}
        if wrong:
            k, v = next(iter(wrong.items()))
            raise UserError(
                f"validate.vocabulary.{key}: {k!r} maps to {v!r}, which is not one of ours "
                f"({', '.join(ours)})"
            )
        out[key] = {str(k).strip().lower(): str(v).strip().lower() for k, v in pairs.items()}
    return out


def _parse_gap_days(gap_days: Any) -> int | None:
    """validate.gap_days as a whole number of days of at least 1, or None (no check)."""
    if gap_days is None or gap_days == "":
        return None
    if isinstance(gap_days, bool) or not isinstance(gap_days, int) or gap_days < 1:
        raise UserError(
            f"validate.gap_days must be a whole number of days (>= 1) or null; got {gap_days!r}"
        )
    return gap_days


def _parse_end_date(end_date: Any) -> dt.date | None:
    """validate.end_date as a date (pipeline.contract.parse_date: YAML gives a date, the
    command line text), or None."""
    if end_date is None or end_date == "":
        return None
    return parse_date(end_date, "validate.end_date").date()


def check(
    data_dir: Path,
    con: duckdb.DuckDBPyConnection | None = None,
    policy: str = "fail",
    end_date: Any = None,
    vocabulary: dict[str, dict[str, str]] | None = None,
    gap_days: int | None = LATE_GAP_DAYS,
) -> Validated:
    """Check every table of `data_dir` against the contract; create clean views when it passes.

    `vocabulary` maps a company's own values of a vocabulary column onto ours, per
    "table.column" (validate.vocabulary in params.yaml). Without an `end_date`, event dates
    after a stretch of more than `gap_days` days without any event, and few beside the events
    before it, are problems (validate.gap_days; None: no such check): see
    `pipeline.timeline.late_tail`.
    """
    data_dir = Path(data_dir)
    if policy not in POLICIES:
        raise UserError(f"validate.policy must be one of {', '.join(POLICIES)}; got {policy!r}")
    end = _parse_end_date(end_date)
    gap_days = _parse_gap_days(gap_days)
    own_values = parse_vocabulary(vocabulary)
    if not data_dir.is_dir():
        raise DataError(f"data directory not found: {data_dir}")
    con = con or duckdb.connect()
    con.execute("SET TimeZone = 'UTC'; SET enable_progress_bar = false")
    problems: list[Problem] = []
    notes: list[str] = []
    result = Validated(
        con,
        data_dir,
        {},
        {},
        problems,
        notes,
        policy=policy,
        end_date=None if end is None else end.isoformat(),
        source=source_of(data_dir),
    )
    sources = result.sources
    for spec in TABLES.values():
        path = locate(data_dir, spec, problems, notes)
        src = None if path is None else read_source(con, spec, path, problems, notes)
        if src is None:
            continue
        result.rows[spec.name] = src.rows
        if usable_source(src, problems, notes):
            check_types(con, src, problems)
            if spec.vocabulary:
                src.vocab = own_values.get(f"{spec.name}.{spec.vocabulary[0]}", {})
                if src.vocab:
                    notes.append(
                        f"{spec.name}.{spec.vocabulary[0]}: mapped by validate.vocabulary: "
                        + ", ".join(f"{k!r} -> {v!r}" for k, v in src.vocab.items())
                    )
            sources[spec.name] = src
    accounts = sources.get("accounts")
    has_accounts = accounts is not None and "account_id" in accounts.usable
    for name, src in sources.items():
        con.execute(f"CREATE OR REPLACE TEMP VIEW typed_{name} AS {typed_select(src)}")
    days = event_days(con, sources) if end is None else []
    late = late_tail(days, gap_days) if gap_days is not None else None
    result.latest_event = days[-1][0] if days else None
    for name, src in sources.items():
        if name == "churn" and has_accounts:
            create_relationship_began(con, sources, policy == "drop")
        src.rules, joins = table_rules(src, policy, end, has_accounts, late)
        flag_rows(con, src, joins)
        report_rules(con, src, problems, result)
        if name == "accounts" and has_accounts:
            create_account_keys(con)
    result.columns = {
        t: [c.name for c in s.spec.columns if c.name in s.mapping] for t, s in sources.items()
    }
    if not result.failed:
        _clean_views(result)
    return result


def _clean_views(result: Validated) -> None:
    """clean_<table>: the kept rows' typed contract columns, in file order; and the time range."""
    for name, src in list(result.sources.items()):
        if src.kept == 0:  # only under the drop policy: under fail every row is kept here
            if src.spec.required:
                result.problems.append(
                    Problem(
                        name,
                        None,
                        "no rows left after dropping the rows with problems",
                        0,
                        "fix the problems listed for the table",
                        [],
                        True,
                    )
                )
            else:
                result.notes.append(f"{name}: every row was dropped; the table is left out")
                del result.columns[name]
            continue
        result.kept[name] = src.kept
        result.con.execute(
            f"CREATE OR REPLACE TEMP VIEW clean_{name} AS {kept_rows(result, name, with_row=False)}"
        )
    if result.failed:
        return
    parts = [
        f"SELECT min({c}) AS lo, max({c}) AS hi FROM clean_{t}"
        for t, c in EVENT_TIME.items()
        if t in result.kept
    ]
    result.data_start, result.data_end = result.con.execute(
        "SELECT CAST(CAST(min(lo) AS DATE) AS VARCHAR), CAST(CAST(max(hi) AS DATE) AS VARCHAR) "
        f"FROM ({' UNION ALL '.join(parts)})"
    ).fetchone()
    data_notes(result)
