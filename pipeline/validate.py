"""Check raw tables against the input contract and write clean, typed Parquet.

Each file is read once into DuckDB; every rule is then a query, so every problem is found in
one pass and reported together (docs/data-contract.md lists the rules, messages and fixes).
Under the `fail` policy any problem means nothing is written (the CLI exits with code 2); under
`drop` the rows with problems are left out of the clean tables and written, with the reasons,
to rejects.csv beside them. Problems with a whole file or column (missing, unreadable, of the
wrong type, empty) fail under both policies: no choice of rows would fix them. A row exported
twice is a problem of its own: `drop` keeps its first copy. Facts that one table states and
another contradicts are problems where the data cannot be right (unknown accounts, churn before
the relationship began, event dates far after the rest of the data) and, in a passing run,
notes where it can (events after churn, orders before customer_since, dates after today).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from pipeline.contract import (
    DATE_ORDERS,
    DATE_PATTERN,
    EVENT_TIME,
    KIND_WORDS,
    LATE_GAP_DAYS,
    LATE_SHARE,
    NULL_TOKENS,
    OTHER_DATE_PATTERN,
    PARQUET_TYPES,
    PLAUSIBLE_DATES,
    POLICIES,
    TABLES,
    TableSpec,
    parse_date,
)
from pipeline.errors import DataError, UserError
from pipeline.io import (
    BAD_LINES_FIX,
    NUMBER_FIX,
    atomic_dir,
    read_csv_table,
    write_json,
    write_table,
)
from pipeline.io import sql_literal as _lit
from pipeline.lineage import recorded_source, source_of

log = logging.getLogger(__name__)

MAX_EXAMPLES = 5
REPORT_NAME = "validation.json"
REJECTS_NAME = "rejects.csv"
ROW = "_row"  # 1-based position of the row among the rows read (the header is not a row)
_BLANKS = " \t\r\n"
_REEXPORT = "export the table again as a CSV file (UTF-8, header row) or as Parquet"
# Said first in a table's "duplicate ids" fix, where an id repeated means more than a copy.
_DUPLICATE_FIX = {
    "churn": "an account churns once here (churn is final: see the note on events after "
    "churn); give the date it left for good, or correct the wrong row; ",
}


@dataclass
class Problem:
    """One contract violation: where, how many rows, a few examples and how to fix it."""

    table: str
    column: str | None
    check: str
    count: int
    fix: str
    examples: list[dict[str, Any]] = field(default_factory=list)
    fatal: bool = False  # about a whole file or column: dropping rows cannot fix it

    def render(self) -> str:
        """The problem as a few readable lines."""
        where = f"{self.table}.{self.column}" if self.column else self.table
        rows = "" if not self.count else f" ({self.count} row{'s' if self.count != 1 else ''})"
        lines = [f"- {where}: {self.check}{rows}. Fix: {self.fix}"]
        for example in self.examples:
            shown = ", ".join(f"{k}={v!r}" for k, v in example.items())
            lines.append(f"    e.g. {shown}")
        return "\n".join(lines)


@dataclass(frozen=True)
class _Rule:
    """A row-level check: a predicate over the typed row `t` (and the joined a, b)."""

    column: str | None
    check: str
    predicate: str
    fix: str
    show: tuple[str, ...]
    mixed: str | None = None  # the check's name when the column also holds good values


@dataclass(frozen=True)
class _Late:
    """Where the late tail of the timeline starts, the gap before it and where the rest ends."""

    first: dt.date
    gap: int  # days without any event before `first`
    rest_end: dt.date  # the last day with an event before the gap


@dataclass
class _Source:
    """One input file read into DuckDB (src_<table>) and its columns mapped onto the contract."""

    spec: TableSpec
    path: Path
    headers: list[str] = field(default_factory=list)  # as in the file
    names: list[str] = field(default_factory=list)  # as in src_<table>
    types: list[str] = field(default_factory=list)
    mapping: dict[str, int] = field(default_factory=dict)  # contract column -> position
    rows: int = 0
    kept: int = 0
    usable: set[str] = field(default_factory=set)  # contract columns of an acceptable type
    encoding: str | None = None
    unreadable: int = 0  # CSV lines DuckDB could not parse
    rules: list[_Rule] = field(default_factory=list)
    row: str = "rowid + 1"  # the 1-based row number in src_<table>
    vocab: dict[str, str] = field(default_factory=dict)  # the company's value -> ours

    def ref(self, column: str) -> str:
        """The source column holding contract column `column`."""
        return _q(self.names[self.mapping[column]])


@dataclass
class Validated:
    """The outcome of checking a data directory: clean views on a DuckDB connection."""

    con: duckdb.DuckDBPyConnection
    data_dir: Path
    columns: dict[str, list[str]]  # table -> contract columns present, for tables kept
    rows: dict[str, int]  # rows read per table
    problems: list[Problem]
    notes: list[str]
    data_start: str | None = None
    data_end: str | None = None
    policy: str = "fail"
    end_date: str | None = None
    kept: dict[str, int] = field(default_factory=dict)  # rows in each clean table
    mapped: dict[str, dict[str, Any]] = field(default_factory=dict)  # vocabulary -> 'other'
    facts: dict[str, Any] = field(default_factory=dict)  # counts behind the data notes
    source: str | None = None  # the input folder, as pipeline.lineage.source_of records it
    latest_event: dt.date | None = None  # the last day with an event date, rows dropped or not
    sources: dict[str, _Source] = field(default_factory=dict, repr=False)

    @property
    def failed(self) -> list[Problem]:
        """The problems that stop the run under the policy in force."""
        if self.policy == "drop":
            return [p for p in self.problems if p.fatal]
        return list(self.problems)

    @property
    def ok(self) -> bool:
        return not self.failed

    @property
    def dropped(self) -> dict[str, int]:
        """Rows (and unreadable lines) left out of each clean table under the drop policy."""
        if self.policy != "drop" or not self.ok:
            return {}
        out = {t: s.rows + s.unreadable - self.kept.get(t, 0) for t, s in self.sources.items()}
        return {t: n for t, n in out.items() if n}

    def view(self, table: str) -> str:
        """Name of the clean, typed view of `table`."""
        return f"clean_{table}"

    def report(self) -> dict[str, Any]:
        """The validation report as plain data (written as validation.json)."""
        tables = {}
        for name, cols in self.columns.items():
            src = self.sources.get(name)
            tables[name] = {"rows": self.rows.get(name, 0), "columns": cols}
            if src is not None:
                tables[name].update(file=src.path.name, encoding=src.encoding)
            if name in self.kept:
                tables[name]["clean_rows"] = self.kept[name]
        return {
            "data_dir": str(self.data_dir),
            "source": self.source,
            "ok": self.ok,
            "policy": self.policy,
            "end_date": self.end_date,
            "tables": tables,
            "data_start": self.data_start,
            "data_end": self.data_end,
            "notes": self.notes,
            "facts": self.facts,
            "problems": [p.__dict__ for p in self.problems],
            "dropped": self.dropped,
            "mapped_to_other": self.mapped,
        }

    def summary(self) -> str:
        """The problems as readable text, the ones that stop the run first."""
        return "\n".join(p.render() for p in sorted(self.problems, key=lambda p: not p.fatal))

    def raise_if_failed(self) -> None:
        """Raise a DataError listing every problem when any of them stops the run."""
        if not self.failed:
            return
        head = f"{len(self.problems)} problem(s) in the input data at {self.data_dir}"
        if self.policy == "drop":
            head += f"; {len(self.failed)} cannot be fixed by dropping rows"
        raise DataError(f"{head}:\n{self.summary()}")


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _first_line(exc: BaseException) -> str:
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    useful = [ln for ln in lines if not ln.startswith("Invalid Input Error: CSV Error")]
    return ((useful or lines or [type(exc).__name__])[0])[:300]


def _find_file(data_dir: Path, table: str) -> tuple[Path | None, list[Path]]:
    wanted = {f"{table}.csv", f"{table}.parquet"}
    found = sorted(p for p in data_dir.iterdir() if p.name.lower() in wanted and p.is_file())
    return (found[0] if len(found) == 1 else None), found


def _normal(header: str) -> str:
    return header.replace("\ufeff", "").strip(_BLANKS).lower()


def _describe_source(con: duckdb.DuckDBPyConnection, src: _Source, table: str) -> None:
    """Headers and types of src_<table>; a column called rowid is renamed (it would hide
    the row number)."""
    description = con.execute(f"SELECT * FROM {table} LIMIT 0").description
    src.headers = [str(d[0]) for d in description]
    src.types = [str(d[1]) for d in description]
    src.names = list(src.headers)
    for i, header in enumerate(src.headers):
        if header.lower() == "rowid":
            src.names[i] = f"{header} (column)"
            con.execute(f"ALTER TABLE {table} RENAME COLUMN {_q(header)} TO {_q(src.names[i])}")


def _read_parquet(con: duckdb.DuckDBPyConnection, src: _Source) -> None:
    """src_<table>: a view on a Parquet file (read where used, with its file row number), or
    a temp table when the file has a column of that name."""
    table, source = f"src_{src.spec.name}", f"read_parquet({_lit(str(src.path))})"
    described = con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()
    if "file_row_number" not in {str(d[0]).lower() for d in described}:
        numbered = f"{source[:-1]}, file_row_number=true)"
        con.execute(f"CREATE OR REPLACE TEMP VIEW {table} AS SELECT * FROM {numbered}")
        src.headers = [str(d[0]) for d in described]
        src.types = [str(d[1]) for d in described]
        src.names, src.row = list(src.headers), "file_row_number + 1"
        src.rows = con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        return
    created = con.execute(f"CREATE OR REPLACE TEMP TABLE {table} AS SELECT * FROM {source}")
    src.rows = created.fetchone()[0]
    _describe_source(con, src, table)


def _read_csv(
    con: duckdb.DuckDBPyConnection, src: _Source, problems: list[Problem], notes: list[str]
) -> None:
    """Read a CSV file into src_<table> with the product's one CSV reader (pipeline.io); its
    rowid keeps the file's order."""
    table = src.spec.name
    src.encoding, src.rows, lines = read_csv_table(con, src.path, table)
    _describe_source(con, src, f"src_{table}")
    if src.encoding != "utf-8":
        notes.append(
            f"{table}: {src.path.name} is not UTF-8; read it as {src.encoding} "
            "(if names look wrong, export the file again as UTF-8)"
        )
    src.unreadable = len(lines)
    if lines:
        problems.append(
            Problem(
                table,
                None,
                f"lines of {src.path.name} that cannot be read",
                len(lines),
                BAD_LINES_FIX,
                [
                    {"line": str(n), "error": kind, "text": (text or "")[:200]}
                    for n, kind, text in lines[:MAX_EXAMPLES]
                ],
            )
        )


def _read(
    con: duckdb.DuckDBPyConnection,
    spec: TableSpec,
    path: Path,
    problems: list[Problem],
    notes: list[str],
) -> _Source | None:
    """Read one table's file into DuckDB and map its columns onto the contract."""
    src = _Source(spec, path)
    try:
        if path.stat().st_size == 0:
            problems.append(
                Problem(
                    spec.name, None, f"{path.name} is empty (no header row)", 0, _REEXPORT, [], True
                )
            )
            return None
        if path.suffix.lower() == ".csv":
            _read_csv(con, src, problems, notes)
        else:
            _read_parquet(con, src)
    except (duckdb.Error, OSError, UnicodeError) as exc:
        problems.append(
            Problem(
                spec.name,
                None,
                f"cannot read {path.name}: {_first_line(exc)}",
                0,
                _REEXPORT,
                [],
                True,
            )
        )
        return None
    by_name: dict[str, list[int]] = {}
    for i, header in enumerate(src.headers):
        by_name.setdefault(_normal(header), []).append(i)
    for i, header in enumerate(src.headers):  # DuckDB renames a repeated name to NAME_1, ...
        base = re.fullmatch(r"(.+)_[0-9]+", _normal(header))
        if base and base.group(1) in by_name and i not in by_name[base.group(1)]:
            by_name[base.group(1)].append(i)
    for column in spec.columns:
        positions = by_name.get(column.name, [])
        if len(positions) > 1:
            names = ", ".join(repr(src.headers[i]) for i in positions)
            problems.append(
                Problem(
                    spec.name,
                    column.name,
                    f"several columns are called {column.name} ({names})",
                    0,
                    "keep one of them",
                    [],
                    True,
                )
            )
        elif positions:
            src.mapping[column.name] = positions[0]
    return src


def _check_types(con: duckdb.DuckDBPyConnection, src: _Source, problems: list[Problem]) -> None:
    """Typed (Parquet) columns must hold a type that can mean what the contract says."""
    for name, i in src.mapping.items():
        kind, sql_type = src.spec.column(name).kind, src.types[i]
        if re.fullmatch(PARQUET_TYPES[kind], sql_type):
            src.usable.add(name)
            continue
        col = src.ref(name)
        shown = con.execute(
            f"SELECT count(*) OVER (), {src.row} AS r, TRY_CAST({col} AS VARCHAR) FROM "
            f"src_{src.spec.name} WHERE {col} IS NOT NULL ORDER BY r LIMIT {MAX_EXAMPLES}"
        ).fetchall()
        if not shown:  # an all-empty column has whatever type the writer picked
            src.usable.add(name)
            continue
        how = {
            "ts": f"pd.to_datetime(df[{name!r}])",
            "float": f"pd.to_numeric(df[{name!r}])",
        }.get(kind, f"df[{name!r}].astype(str)")
        problems.append(
            Problem(
                src.spec.name,
                name,
                f"column stored as {sql_type}; it must hold {KIND_WORDS[kind]}",
                shown[0][0],
                f"write {name} as {KIND_WORDS[kind]} (in pandas, e.g. {how})",
                [{ROW: str(r), name: v} for _, r, v in shown],
                True,
            )
        )


def _typed_select(src: _Source) -> str:
    """Per contract column its text ("col#txt", empty = NULL) and its typed value ("col")."""
    spec = src.spec
    trimmed, texts, values = [f"{src.row} AS {ROW}"], [ROW], [ROW]
    nulls = ", ".join(_lit(t) for t in NULL_TOKENS)
    for column in spec.columns:
        if column.name not in src.mapping:
            continue
        ref, usable = src.ref(column.name), column.name in src.usable
        raw, txt, val = _q(f"{column.name}#t"), _q(f"{column.name}#txt"), _q(column.name)
        native = src.types[src.mapping[column.name]] != "VARCHAR"
        trimmed.append(f"nullif(trim(TRY_CAST({ref} AS VARCHAR), {_lit(_BLANKS)}), '') AS {raw}")
        nat = _q(f"{column.name}#nat")
        if native and usable:
            trimmed.append(f"{ref} AS {nat}")
            texts.append(nat)
        if column.kind in ("ts", "float") and not native:
            texts.append(f"CASE WHEN lower({raw}) IN ({nulls}) THEN NULL ELSE {raw} END AS {txt}")
        elif column.kind == "float" and native and usable:
            texts.append(
                f"CASE WHEN isnan(CAST({nat} AS DOUBLE)) THEN NULL ELSE {raw} END AS {txt}"
            )
        else:
            texts.append(f"{raw} AS {txt}")
        values.append(txt)
        if not usable:
            values.append(f"NULL AS {val}")
        elif column.kind == "ts" and native:
            values.append(f"CAST({nat} AS TIMESTAMP) AS {val}")
        elif column.kind == "ts":
            values.append(
                f"CASE WHEN regexp_full_match({txt}, {_lit(DATE_PATTERN)}) "
                f"THEN TRY_CAST({txt} AS TIMESTAMP) END AS {val}"
            )
        elif column.kind == "float":
            cast = f"CAST({nat} AS DOUBLE)" if native else f"TRY_CAST({txt} AS DOUBLE)"
            values.append(f"CASE WHEN isfinite({cast}) THEN {cast} END AS {val}")
        elif spec.vocabulary and column.name == spec.vocabulary[0]:
            allowed = ", ".join(_lit(v) for v in spec.vocabulary[1])
            # the company's own values first (validate.vocabulary), then ours, else 'other'
            own = "".join(
                f"WHEN lower({txt}) = {_lit(k)} THEN {_lit(v)} " for k, v in src.vocab.items()
            )
            values.append(
                f"CASE WHEN {txt} IS NULL THEN NULL {own}WHEN lower({txt}) IN ({allowed}) "
                f"THEN lower({txt}) ELSE 'other' END AS {val}"
            )
        else:
            values.append(f"{txt} AS {val}")
    return (
        f"SELECT {', '.join(values)} FROM (SELECT {', '.join(texts)} FROM "
        f"(SELECT {', '.join(trimmed)} FROM src_{spec.name}))"
    )


def _rules(
    src: _Source,
    policy: str,
    end_date: dt.date | None,
    has_accounts: bool,
    late: _Late | None = None,
) -> tuple[list[_Rule], str]:
    """The row-level rules for one table and the joins they need (aliases a, b)."""
    spec, present, usable = src.spec, set(src.mapping), src.usable
    rules: list[_Rule] = []
    key_cols = [c for c in (spec.key, "account_id") if c and c in present]
    lo, hi = PLAUSIBLE_DATES

    def show(*cols: str) -> tuple[str, ...]:
        return tuple(dict.fromkeys([*key_cols, *cols]))

    for column in spec.columns:
        name = column.name
        if name not in present:
            continue
        txt, val = f"t.{_q(name + '#txt')}", f"t.{_q(name)}"
        if column.required:
            rules.append(
                _Rule(
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
                _Rule(
                    name,
                    "dates in another format than YYYY-MM-DD",
                    f"{txt} IS NOT NULL AND {val} IS NULL AND {other}",
                    "write every date as YYYY-MM-DD (or YYYY-MM-DD HH:MM:SS)",
                    show(name),
                    mixed="dates in another format than the rest of the column (mixed formats)",
                )
            )
            rules.append(
                _Rule(
                    name,
                    "dates that do not parse",
                    f"{txt} IS NOT NULL AND {val} IS NULL AND NOT {other}",
                    "write dates as YYYY-MM-DD or YYYY-MM-DD HH:MM:SS (a real calendar date); "
                    "leave the cell empty when unknown",
                    show(name),
                )
            )
            rules.append(
                _Rule(
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
                    _Rule(
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
                    _Rule(
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
                _Rule(
                    name,
                    "values that are not numbers",
                    f"{txt} IS NOT NULL AND {val} IS NULL",
                    NUMBER_FIX,
                    show(name),
                )
            )
            if column.non_negative:
                rules.append(
                    _Rule(
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
        _Rule(
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
        key = f"t.{_q(spec.key)}"
        same = f"OVER (PARTITION BY {key})"  # the rows of one id: not all one row's copies
        rules.append(
            _Rule(
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
            later, earlier = f"t.{_q(order.later)}", f"t.{_q(order.earlier)}"
            rules.append(
                _Rule(
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
            _Rule(
                "account_id",
                "rows pointing at accounts not in the accounts table",
                "t.account_id IS NOT NULL AND a.account_id IS NULL",
                "add the accounts to accounts, or drop those rows",
                show(),
            )
        )
        if policy == "drop":
            rules.append(
                _Rule(
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
            _Rule(
                "churned_at",
                "churned before the relationship began (customer_since, else the first order)",
                "CAST(t.churned_at AS DATE) < CAST(b.began AS DATE)",
                "check churned_at and the account's customer_since and first order",
                (*show("churned_at"), "b.began"),
            )
        )
    return rules, joins


def _copies(con: duckdb.DuckDBPyConnection, src: _Source) -> None:
    """copies_<table>: per row, copy_of: the first row identical to it in every column.

    Copies share their key's text, so in a table with a key only the rows of a repeated key
    are compared column by column (sorting every column of a large table costs memory)."""
    name = src.spec.name
    texts = [f"TRY_CAST({_q(n)} AS VARCHAR)" for n in src.names]
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


def _flags(con: duckdb.DuckDBPyConnection, src: _Source, joins: str) -> None:
    """copies_<table> and flags_<table>: per row one flag per rule (f0, f1, ...), _bad (any),
    g<k> (a good value in a mixed-format rule's column), o (mapped to 'other'), copy_of."""
    name, spec = src.spec.name, src.spec
    _copies(con, src)
    cols = [f"coalesce({r.predicate}, false) AS f{k}" for k, r in enumerate(src.rules)]
    cols.append("d.copy_of")
    cols += [f"t.{_q(r.column)} IS NOT NULL AS g{k}" for k, r in enumerate(src.rules) if r.mixed]
    vocab = spec.vocabulary[0] if spec.vocabulary else None
    if vocab in src.usable:
        cols.append(
            f"coalesce(t.{_q(vocab)} = 'other' AND lower(t.{_q(vocab + '#txt')}) <> 'other', "
            "false) AS o"
        )
    if "relationship_began" in joins:
        cols.append("CAST(CAST(b.began AS DATE) AS VARCHAR) AS began")
    bad = " OR ".join(f"f{k}" for k in range(len(src.rules))) or "false"
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE flags_{name} AS SELECT *, ({bad}) AS _bad FROM "
        f"(SELECT t.{ROW}{''.join(', ' + c for c in cols)} FROM typed_{name} t{joins})"
    )


def _report_rules(
    con: duckdb.DuckDBPyConnection, src: _Source, problems: list[Problem], result: Validated
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
                select.append(f"TRY_CAST(s.{src.ref(col)} AS VARCHAR) AS {_q(col)}")
        rows = con.execute(
            f"SELECT {', '.join(select)} FROM flags_{name} f JOIN src_{name} s "
            f"ON s.{src.row} = f.{ROW} WHERE f.f{k} ORDER BY f.{ROW} LIMIT {MAX_EXAMPLES}"
        )
        names = [d[0] for d in rows.description]
        examples = [dict(zip(names, r, strict=True)) for r in rows.fetchall()]
        problems.append(Problem(name, rule.column, rule.check, n, rule.fix, examples))
    if mapped:
        _map_counts(con, src, result)


def _account_keys(con: duckdb.DuckDBPyConnection) -> None:
    """account_keys: every account id, and whether a row that is kept holds it."""
    con.execute(
        "CREATE OR REPLACE TEMP TABLE account_keys AS SELECT t.account_id, "
        "bool_or(NOT f._bad) AS kept FROM typed_accounts t JOIN flags_accounts f "
        f"USING ({ROW}) WHERE t.account_id IS NOT NULL GROUP BY 1"
    )


def _relationship_began(
    con: duckdb.DuckDBPyConnection, sources: dict[str, _Source], drop: bool
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


def _map_counts(con: duckdb.DuckDBPyConnection, src: _Source, result: Validated) -> None:
    """Count the vocabulary values mapped to 'other' in the rows that are kept."""
    name, col = src.spec.name, src.spec.vocabulary[0]
    rows = con.execute(
        f"SELECT lower(t.{_q(col + '#txt')}) AS v, count(*) AS n FROM typed_{name} t "
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


def _event_days(
    con: duckdb.DuckDBPyConnection, sources: dict[str, _Source]
) -> list[tuple[dt.date, int]]:
    """The timeline: every day with an event date (contract columns marked `event`, values in
    the plausible range) in any table, and how many there are, in order."""
    lo, hi = PLAUSIBLE_DATES
    parts = [
        f"SELECT CAST({_q(c.name)} AS DATE) AS d FROM typed_{name} "
        f"WHERE {_q(c.name)} >= TIMESTAMP {_lit(lo)} AND {_q(c.name)} < TIMESTAMP {_lit(hi)}"
        for name, src in sources.items()
        for c in src.spec.columns
        if c.event and c.name in src.usable
    ]
    if not parts:
        return []
    return con.execute(
        f"SELECT d, count(*) FROM ({' UNION ALL '.join(parts)}) GROUP BY d ORDER BY d"
    ).fetchall()


def _late_tail(days: list[tuple[dt.date, int]], gap_days: int) -> _Late | None:
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
        late, left = _Late(days[i][0], gap, days[i - 1][0]), rest
    return late


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


def _locate(
    data_dir: Path, spec: TableSpec, problems: list[Problem], notes: list[str]
) -> Path | None:
    """The table's file, or None with a problem (required table) or a note (optional)."""
    path, found = _find_file(data_dir, spec.name)
    if len(found) > 1:
        problems.append(
            Problem(
                spec.name,
                None,
                "more than one file for the table",
                0,
                f"keep one of {', '.join(p.name for p in found)}",
                [],
                True,
            )
        )
    elif path is None and spec.required:
        problems.append(
            Problem(
                spec.name,
                None,
                "required table is missing",
                0,
                f"put {spec.name}.csv or {spec.name}.parquet in {data_dir}",
                [],
                True,
            )
        )
    elif path is None and spec.name == "churn":
        notes.append(
            "churn: no table; churn is labelled by inactivity (label.mode auto): an account "
            "churns at a cutoff when it places no order in the label window"
        )
    elif path is None:
        notes.append(f"{spec.name}: no table; features that need it are left out")
    return path


def _usable_source(src: _Source, problems: list[Problem], notes: list[str]) -> bool:
    """Structural checks (required columns, rows); notes on optional and unknown columns."""
    spec, name = src.spec, src.path.name
    missing = [c for c in spec.required_columns if c not in src.mapping]
    for column in missing:
        problems.append(
            Problem(
                spec.name,
                column,
                "required column is missing",
                0,
                f"add the column; {name} has: {', '.join(src.headers) or 'no columns'}",
                [],
                True,
            )
        )
    if missing:
        return False
    if src.rows == 0:
        fix = "export the table again with its rows"
        if not spec.required:
            fix += f", or remove {name} if there is no such data"
        problems.append(Problem(spec.name, None, "table has no rows", 0, fix, [], True))
        return False
    absent = [c.name for c in spec.columns if not c.required and c.name not in src.mapping]
    if absent:
        notes.append(f"{spec.name}: optional columns absent: {', '.join(absent)}")
    known = {c.name for c in spec.columns}
    extra = [h for h in src.headers if _normal(h) not in known]
    if extra:
        notes.append(f"{spec.name}: columns not in the contract, ignored: {', '.join(extra)}")
    return True


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
    before it, are problems (validate.gap_days; None: no such check): see `_late_tail`.
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
        path = _locate(data_dir, spec, problems, notes)
        src = None if path is None else _read(con, spec, path, problems, notes)
        if src is None:
            continue
        result.rows[spec.name] = src.rows
        if _usable_source(src, problems, notes):
            _check_types(con, src, problems)
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
        con.execute(f"CREATE OR REPLACE TEMP VIEW typed_{name} AS {_typed_select(src)}")
    days = _event_days(con, sources) if end is None else []
    late = _late_tail(days, gap_days) if gap_days is not None else None
    result.latest_event = days[-1][0] if days else None
    for name, src in sources.items():
        if name == "churn" and has_accounts:
            _relationship_began(con, sources, policy == "drop")
        src.rules, joins = _rules(src, policy, end, has_accounts, late)
        _flags(con, src, joins)
        _report_rules(con, src, problems, result)
        if name == "accounts" and has_accounts:
            _account_keys(con)
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
            f"CREATE OR REPLACE TEMP VIEW clean_{name} AS {_kept(result, name, with_row=False)}"
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
    _data_notes(result)


def _share(n: int, total: int) -> str:
    """`n of total (share)`, the share with two decimals below 1%."""
    if not total:
        return f"{n:,}"
    return f"{n:,} of {total:,} ({n / total:.{1 if n >= total / 100 else 2}%})"


def _data_notes(result: Validated) -> None:
    """Facts of valid data that shape the model (zero amounts, one-order and order-less
    accounts, the history's length), as notes and, with their counts, in `result.facts`."""
    con, notes, facts = result.con, result.notes, result.facts
    orders = _kept(result, "orders", with_row=True)
    accounts = _kept(result, "accounts", with_row=True)
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
    con, churn = result.con, _kept(result, "churn", with_row=True)
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
        f"JOIN ({_kept(result, 'accounts', with_row=True)}) a USING (account_id) "
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
        f"CAST({_q(TABLES[t].key or 'account_id')} AS VARCHAR) AS id, "
        f"CAST({_q(c.name)} AS DATE) AS d FROM ({_kept(result, t, with_row=True)}) "
        f"WHERE CAST({_q(c.name)} AS DATE) > {day}"
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


def _kept(result: Validated, name: str, with_row: bool) -> str:
    """A query for the rows of `name` that are kept: its contract columns (and _row)."""
    cols = ", ".join(_q(c) for c in [*([ROW] if with_row else []), *result.columns[name]])
    src = result.sources[name]
    dropped = f" WHERE {ROW} NOT IN (SELECT {ROW} FROM flags_{name} WHERE _bad)"
    return f"SELECT {cols} FROM typed_{name}" + (dropped if src.kept < src.rows else "")


def _open_clean(data_dir: Path) -> Validated | None:
    """Views over a folder that `write_clean` wrote, trusting its report; None if it is not one.

    The report is written last, so a table file newer than it was changed afterwards and the
    folder is checked again in full.
    """
    report_path = Path(data_dir) / REPORT_NAME
    try:
        report = json.loads(report_path.read_text())
        written = report_path.stat().st_mtime
        tables = report["tables"]
        files = {t: Path(data_dir) / f"{t}.parquet" for t in tables}
        if (
            not report.get("ok")
            or not tables
            or any(not f.is_file() or f.stat().st_mtime > written for f in files.values())
        ):
            return None
        columns = {t: list(info["columns"]) for t, info in tables.items()}
        kept = {t: int(info.get("clean_rows", info["rows"])) for t, info in tables.items()}
    except (OSError, ValueError, KeyError, TypeError):
        return None
    con = duckdb.connect()
    for table, path in files.items():
        con.execute(f"CREATE VIEW clean_{table} AS SELECT * FROM read_parquet({_lit(str(path))})")
    return Validated(
        con,
        Path(data_dir),
        columns,
        kept,
        [],
        list(report.get("notes", [])),
        report.get("data_start"),
        report.get("data_end"),
        kept=kept,
        facts=dict(report.get("facts") or {}),
        source=report.get("source") or recorded_source(report.get("data_dir")),
    )


def load(data_dir: Path, settings: dict[str, Any] | None = None) -> Validated:
    """Clean views of `data_dir`: a folder `churn validate` wrote opens as is; any other is
    checked first with `settings` (the `validate` section of params.yaml: policy, end_date,
    vocabulary, gap_days), as the validate stage checks it, raising a DataError that names every
    problem. Rows dropped under the drop policy are counted in a warning."""
    opened = _open_clean(data_dir)
    if opened is not None:
        return opened
    settings = settings or {}
    result = check(
        data_dir,
        policy=settings.get("policy") or "fail",
        end_date=settings.get("end_date"),
        vocabulary=settings.get("vocabulary"),
        gap_days=settings.get("gap_days", LATE_GAP_DAYS),
    )
    result.raise_if_failed()
    if result.dropped:
        log.warning(
            "%s: dropped %d rows with problems (%s), as validate.policy drop says; "
            "churn validate --data %s lists them in %s",
            data_dir,
            sum(result.dropped.values()),
            ", ".join(f"{t} {n}" for t, n in result.dropped.items()),
            data_dir,
            REJECTS_NAME,
        )
    return result


def _where(table: str, rule: _Rule) -> str:
    return f"{table}.{rule.column}: {rule.check}" if rule.column else f"{table}: {rule.check}"


def rejects(result: Validated) -> pd.DataFrame:
    """The rows left out under the drop policy: table, row, line, problems, original record."""
    con, frames = result.con, []
    for name, src in result.sources.items():
        if src.rules and src.kept < src.rows:
            record = ", ".join(
                f"{_lit(h)}, TRY_CAST(s.{_q(n)} AS VARCHAR)"
                for h, n in zip(src.headers, src.names, strict=True)
            )
            reasons = ", ".join(
                f"CASE WHEN c.f{k} THEN {_lit(_where(name, r))}"
                + (" || ' (copy of row ' || c.copy_of || ')'" if "d.copy_of" in r.show else "")
                + " END"
                for k, r in enumerate(src.rules)
            )
            frames.append(
                con.execute(
                    f'SELECT {_lit(name)} AS "table", c.{ROW} AS "row", NULL AS line, '
                    f"concat_ws('; ', {reasons}) AS problems, "
                    f"CAST(json_object({record}) AS VARCHAR) AS record FROM flags_{name} c "
                    f"JOIN src_{name} s ON s.{src.row} = c.{ROW} WHERE c._bad ORDER BY c.{ROW}"
                ).df()
            )
        if src.unreadable:
            frames.append(
                con.execute(
                    f'SELECT {_lit(name)} AS "table", NULL AS "row", line, '
                    "'cannot be read: ' || string_agg(DISTINCT lower(error_type), ', ' "
                    "ORDER BY lower(error_type)) AS problems, any_value(csv_line) AS record "
                    f"FROM rej_{name} GROUP BY line ORDER BY line"
                ).df()
            )
    columns = ["table", "row", "line", "problems", "record"]
    frames = [f[columns] for f in frames if len(f)]
    if not frames:
        return pd.DataFrame({c: pd.Series(dtype="object") for c in columns})
    return pd.concat(frames, ignore_index=True).astype({"row": "Int64", "line": "Int64"})


def write_clean(result: Validated, out_dir: Path) -> None:
    """Write the clean tables as Parquet plus validation.json (and rejects.csv), all or nothing."""
    result.raise_if_failed()
    with atomic_dir(out_dir) as tmp:
        for table in result.kept:
            target = tmp / f"{table}.parquet"
            cols = ", ".join(_q(c) for c in result.columns[table])
            result.con.execute(
                f"COPY (SELECT {cols} FROM ({_kept(result, table, with_row=True)}) "
                f"ORDER BY {ROW}) TO {_lit(str(target))} (FORMAT parquet)"
            )
        if result.policy == "drop":
            write_table(rejects(result), tmp / REJECTS_NAME)
        write_json(result.report(), tmp / REPORT_NAME)
    log.info("wrote %d clean tables to %s", len(result.kept), out_dir)
