"""Check raw tables against the input contract and write clean, typed Parquet.

Every problem is found in one pass (DuckDB queries over the raw files) and reported together;
on any problem nothing is written and the CLI exits with code 2.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from pipeline.contract import EVENT_TIME, SQL_TYPES, TABLES, TableSpec
from pipeline.errors import DataError
from pipeline.io import atomic_dir, write_json

log = logging.getLogger(__name__)

MAX_EXAMPLES = 5
REPORT_NAME = "validation.json"


@dataclass
class Problem:
    """One contract violation: where, how many rows, a few examples and how to fix it."""

    table: str
    column: str | None
    check: str
    count: int
    fix: str
    examples: list[dict[str, Any]] = field(default_factory=list)

    def render(self) -> str:
        where = f"{self.table}.{self.column}" if self.column else self.table
        rows = "" if not self.count else f" ({self.count} row{'s' if self.count != 1 else ''})"
        lines = [f"- {where}: {self.check}{rows}. Fix: {self.fix}"]
        for example in self.examples:
            shown = ", ".join(f"{k}={v!r}" for k, v in example.items())
            lines.append(f"    e.g. {shown}")
        return "\n".join(lines)


@dataclass
class Validated:
    """The outcome of checking a data directory: clean views on a DuckDB connection."""

    con: duckdb.DuckDBPyConnection
    data_dir: Path
    columns: dict[str, list[str]]  # table -> contract columns present, for tables present
    rows: dict[str, int]
    problems: list[Problem]
    notes: list[str]
    data_start: str | None = None
    data_end: str | None = None

    @property
    def ok(self) -> bool:
        return not self.problems

    def view(self, table: str) -> str:
        """Name of the clean, typed view of `table`."""
        return f"clean_{table}"

    def report(self) -> dict[str, Any]:
        """The validation report as plain data (written as validation.json)."""
        return {
            "data_dir": str(self.data_dir),
            "ok": self.ok,
            "tables": {t: {"rows": self.rows[t], "columns": c} for t, c in self.columns.items()},
            "data_start": self.data_start,
            "data_end": self.data_end,
            "notes": self.notes,
            "problems": [p.__dict__ for p in self.problems],
        }

    def raise_if_failed(self) -> None:
        """Raise a DataError listing every problem."""
        if self.problems:
            body = "\n".join(p.render() for p in self.problems)
            raise DataError(
                f"{len(self.problems)} problem(s) in the input data at {self.data_dir}:\n{body}"
            )


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _lit(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _find_file(data_dir: Path, table: str) -> tuple[Path | None, list[Path]]:
    found = [p for p in (data_dir / f"{table}.csv", data_dir / f"{table}.parquet") if p.is_file()]
    return (found[0] if len(found) == 1 else None), found


def _examples(con: duckdb.DuckDBPyConnection, raw: str, where: str, cols: list[str]) -> list[dict]:
    select = ", ".join(["_row"] + [_q(c) for c in cols])
    rows = con.execute(
        f"SELECT {select} FROM {raw} WHERE {where} ORDER BY _row LIMIT {MAX_EXAMPLES}"
    )
    names = [d[0] for d in rows.description]
    return [
        {n: (None if v is None else str(v)) for n, v in zip(names, r, strict=True)}
        for r in rows.fetchall()
    ]


def _count(con: duckdb.DuckDBPyConnection, raw: str, where: str) -> int:
    return con.execute(f"SELECT count(*) FROM {raw} WHERE {where}").fetchone()[0]


def _register_raw(
    con: duckdb.DuckDBPyConnection, spec: TableSpec, path: Path, problems: list[Problem]
) -> list[str] | None:
    """Create the raw view `raw_<table>` with a file row number; return its column names."""
    raw = f"raw_{spec.name}"
    if path.suffix == ".csv":
        source = f"read_csv({_lit(str(path))}, all_varchar=true, header=true)"
    else:
        source = f"read_parquet({_lit(str(path))})"
    try:
        con.execute(f"CREATE VIEW {raw} AS SELECT row_number() OVER () AS _row, * FROM {source}")
        return [c for c in con.sql(f"SELECT * FROM {raw} LIMIT 0").columns if c != "_row"]
    except duckdb.Error as exc:
        problems.append(
            Problem(
                spec.name,
                None,
                f"cannot read {path.name}: {str(exc).splitlines()[0]}",
                0,
                "export the table again as UTF-8 CSV with a header row, or as Parquet",
            )
        )
        return None


def _check_table(
    con: duckdb.DuckDBPyConnection, spec: TableSpec, present: list[str], problems: list[Problem]
) -> None:
    raw = f"raw_{spec.name}"
    key_cols = [c for c in (spec.key, "account_id") if c and c in present]
    for column in spec.columns:
        if column.name not in present:
            continue
        col = _q(column.name)
        show = list(dict.fromkeys(key_cols + [column.name]))
        if column.required:
            where = f"{col} IS NULL"
            n = _count(con, raw, where)
            if n:
                problems.append(
                    Problem(
                        spec.name,
                        column.name,
                        "empty values in a required column",
                        n,
                        "fill the column or drop those rows",
                        _examples(con, raw, where, show),
                    )
                )
        if column.kind in ("ts", "float"):
            sql_type = SQL_TYPES[column.kind]
            where = f"{col} IS NOT NULL AND TRY_CAST({col} AS {sql_type}) IS NULL"
            n = _count(con, raw, where)
            if n:
                what = (
                    "dates that do not parse"
                    if column.kind == "ts"
                    else "values that are not numbers"
                )
                fix = (
                    "write dates as YYYY-MM-DD or YYYY-MM-DD HH:MM:SS"
                    if column.kind == "ts"
                    else "use plain numbers with a dot as decimal separator, no units"
                )
                problems.append(
                    Problem(spec.name, column.name, what, n, fix, _examples(con, raw, where, show))
                )
    if spec.key and spec.key in present:
        key = _q(spec.key)
        where = f"{key} IN (SELECT {key} FROM {raw} GROUP BY {key} HAVING count(*) > 1)"
        n = _count(con, raw, where)
        if n:
            problems.append(
                Problem(
                    spec.name,
                    spec.key,
                    "duplicate ids",
                    n,
                    f"keep one row per {spec.key}",
                    _examples(con, raw, where, key_cols),
                )
            )


def _check_foreign_key(con: duckdb.DuckDBPyConnection, table: str, problems: list[Problem]) -> None:
    raw = f"raw_{table}"
    where = (
        "account_id IS NOT NULL AND CAST(account_id AS VARCHAR) NOT IN "
        "(SELECT CAST(account_id AS VARCHAR) FROM raw_accounts WHERE account_id IS NOT NULL)"
    )
    n = _count(con, raw, where)
    if n:
        problems.append(
            Problem(
                table,
                "account_id",
                "rows pointing at accounts not in the accounts table",
                n,
                "add the accounts to accounts, or drop those rows",
                _examples(con, raw, where, ["account_id"]),
            )
        )


def _clean_select(spec: TableSpec, present: list[str], notes: list[str], con) -> str:
    parts = []
    for column in spec.columns:
        if column.name not in present:
            continue
        col = _q(column.name)
        if spec.vocabulary and column.name == spec.vocabulary[0]:
            allowed = ", ".join(_lit(v) for v in spec.vocabulary[1])
            norm = f"lower(trim(CAST({col} AS VARCHAR)))"
            n = _count(con, f"raw_{spec.name}", f"{norm} NOT IN ({allowed})")
            if n:
                notes.append(
                    f"{spec.name}.{column.name}: {n} rows with values outside the "
                    "vocabulary were mapped to 'other'"
                )
            parts.append(f"CASE WHEN {norm} IN ({allowed}) THEN {norm} ELSE 'other' END AS {col}")
        elif column.kind in ("id", "str"):
            parts.append(f"trim(CAST({col} AS VARCHAR)) AS {col}")
        else:
            parts.append(f"CAST({col} AS {SQL_TYPES[column.kind]}) AS {col}")
    return ", ".join(parts)


def check(data_dir: Path, con: duckdb.DuckDBPyConnection | None = None) -> Validated:
    """Check every table of `data_dir` against the contract; create clean views on success."""
    data_dir = Path(data_dir)
    con = con or duckdb.connect()
    problems: list[Problem] = []
    notes: list[str] = []
    columns: dict[str, list[str]] = {}
    rows: dict[str, int] = {}
    if not data_dir.is_dir():
        raise DataError(f"data directory not found: {data_dir}")
    for spec in TABLES.values():
        path, found = _find_file(data_dir, spec.name)
        if len(found) > 1:
            problems.append(
                Problem(
                    spec.name,
                    None,
                    "both a CSV and a Parquet file",
                    0,
                    f"keep one of {', '.join(p.name for p in found)}",
                )
            )
            continue
        if path is None:
            if spec.required:
                problems.append(
                    Problem(
                        spec.name,
                        None,
                        "required table is missing",
                        0,
                        f"put {spec.name}.csv or {spec.name}.parquet in {data_dir}",
                    )
                )
            else:
                notes.append(f"{spec.name}: no table; features that need it are left out")
            continue
        present = _register_raw(con, spec, path, problems)
        if present is None:
            continue
        missing = [c for c in spec.required_columns if c not in present]
        for name in missing:
            problems.append(
                Problem(
                    spec.name,
                    name,
                    "required column is missing",
                    0,
                    f"add the column; {path.name} has: {', '.join(present) or 'no columns'}",
                )
            )
        if missing:
            continue
        rows[spec.name] = _count(con, f"raw_{spec.name}", "true")
        if spec.required and rows[spec.name] == 0:
            problems.append(
                Problem(
                    spec.name, None, "table has no rows", 0, "export the table again with its data"
                )
            )
        absent = [c.name for c in spec.columns if not c.required and c.name not in present]
        if absent:
            notes.append(f"{spec.name}: optional columns absent: {', '.join(absent)}")
        columns[spec.name] = [c.name for c in spec.columns if c.name in present]
        _check_table(con, spec, present, problems)
    if "accounts" in columns:
        for table in columns:
            if table != "accounts":
                _check_foreign_key(con, table, problems)
    result = Validated(con, data_dir, columns, rows, problems, notes)
    if problems:
        return result
    for table, present in columns.items():
        select = _clean_select(TABLES[table], present, notes, con)
        con.execute(f"CREATE VIEW clean_{table} AS SELECT {select} FROM raw_{table}")
    _set_time_range(result)
    return result


def _set_time_range(result: Validated) -> None:
    parts = [
        f"SELECT min({c}) AS lo, max({c}) AS hi FROM clean_{t}"
        for t, c in EVENT_TIME.items()
        if t in result.columns
    ]
    lo, hi = result.con.execute(
        f"SELECT min(lo), max(hi) FROM ({' UNION ALL '.join(parts)})"
    ).fetchone()
    result.data_start = None if lo is None else str(lo.date())
    result.data_end = None if hi is None else str(hi.date())


def load(data_dir: Path) -> Validated:
    """Check `data_dir` and return its clean views, or raise a DataError naming every problem."""
    result = check(data_dir)
    result.raise_if_failed()
    return result


def write_clean(result: Validated, out_dir: Path) -> None:
    """Write the clean tables as Parquet plus validation.json, all or nothing."""
    result.raise_if_failed()
    with atomic_dir(out_dir) as tmp:
        for table in result.columns:
            target = tmp / f"{table}.parquet"
            result.con.execute(
                f"COPY (SELECT * FROM clean_{table}) TO {_lit(str(target))} (FORMAT parquet)"
            )
        write_json(result.report(), tmp / REPORT_NAME)
    log.info("wrote %d clean tables to %s", len(result.columns), out_dir)
