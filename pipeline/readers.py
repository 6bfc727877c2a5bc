"""Finding and reading one table's file: CSV or Parquet into DuckDB (src_<table>), its columns
mapped onto the contract, the checks on the file as a whole (missing, unreadable, empty,
required columns, column types) and the typed select (typed_<table>) the rules run on.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb

from pipeline.contract import DATE_PATTERN, KIND_WORDS, NULL_TOKENS, PARQUET_TYPES, TableSpec
from pipeline.io import BAD_LINES_FIX, read_csv_table
from pipeline.io import sql_literal as _lit
from pipeline.outcome import MAX_EXAMPLES, ROW, Problem, quote

if TYPE_CHECKING:
    from pipeline.rules import Rule


_BLANKS = " \t\r\n"
_REEXPORT = "export the table again as a CSV file (UTF-8, header row) or as Parquet"


@dataclass
class Source:
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
    rules: list[Rule] = field(default_factory=list)
    row: str = "rowid + 1"  # the 1-based row number in src_<table>
    vocab: dict[str, str] = field(default_factory=dict)  # the company's value -> ours

    def ref(self, column: str) -> str:
        """The source column holding contract column `column`."""
        return quote(self.names[self.mapping[column]])


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


def _describe_source(con: duckdb.DuckDBPyConnection, src: Source, table: str) -> None:
    """Headers and types of src_<table>; a column called rowid is renamed (it would hide
    the row number)."""
    description = con.execute(f"SELECT * FROM {table} LIMIT 0").description
    src.headers = [str(d[0]) for d in description]
    src.types = [str(d[1]) for d in description]
    src.names = list(src.headers)
    for i, header in enumerate(src.headers):
        if header.lower() == "rowid":
            src.names[i] = f"{header} (column)"
            con.execute(
                f"ALTER TABLE {table} RENAME COLUMN {quote(header)} TO {quote(src.names[i])}"
            )


def _read_parquet(con: duckdb.DuckDBPyConnection, src: Source) -> None:
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
    con: duckdb.DuckDBPyConnection, src: Source, problems: list[Problem], notes: list[str]
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


def read_source(
    con: duckdb.DuckDBPyConnection,
    spec: TableSpec,
    path: Path,
    problems: list[Problem],
    notes: list[str],
) -> Source | None:
    """Read one table's file into DuckDB and map its columns onto the contract."""
    src = Source(spec, path)
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


def check_types(con: duckdb.DuckDBPyConnection, src: Source, problems: list[Problem]) -> None:
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


def typed_select(src: Source) -> str:
    """Per contract column its text ("col#txt", empty = NULL) and its typed value ("col")."""
    spec = src.spec
    trimmed, texts, values = [f"{src.row} AS {ROW}"], [ROW], [ROW]
    nulls = ", ".join(_lit(t) for t in NULL_TOKENS)
    for column in spec.columns:
        if column.name not in src.mapping:
            continue
        ref, usable = src.ref(column.name), column.name in src.usable
        raw, txt, val = quote(f"{column.name}#t"), quote(f"{column.name}#txt"), quote(column.name)
        native = src.types[src.mapping[column.name]] != "VARCHAR"
        trimmed.append(f"nullif(trim(TRY_CAST({ref} AS VARCHAR), {_lit(_BLANKS)}), '') AS {raw}")
        nat = quote(f"{column.name}#nat")
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


def locate(
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


def usable_source(src: Source, problems: list[Problem], notes: list[str]) -> bool:
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
