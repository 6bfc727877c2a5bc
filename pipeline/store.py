"""The clean-data store every later stage reads: `load` gives a data folder's clean views (a
folder `write_clean` wrote opens as is, any other is checked first), `write_clean` writes them
as Parquet with validation.json (and, under the drop policy, `rejects`: rejects.csv).

`Validated` (pipeline.outcome) is the store's handle: import it from here.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import pandas as pd

from pipeline.checking import check
from pipeline.config import with_defaults
from pipeline.io import atomic_dir, write_json, write_table
from pipeline.io import sql_literal as _lit
from pipeline.lineage import recorded_source
from pipeline.outcome import ROW, Validated, kept_rows, quote

if TYPE_CHECKING:
    from pipeline.rules import Rule

__all__ = ["REJECTS_NAME", "REPORT_NAME", "Validated", "load", "rejects", "write_clean"]


log = logging.getLogger(__name__)
REPORT_NAME = "validation.json"
REJECTS_NAME = "rejects.csv"


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
    settings = with_defaults("validate", settings)
    result = check(
        data_dir,
        policy=settings["policy"] or "fail",
        end_date=settings["end_date"],
        vocabulary=settings["vocabulary"],
        gap_days=settings["gap_days"],
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


def _where(table: str, rule: Rule) -> str:
    return f"{table}.{rule.column}: {rule.check}" if rule.column else f"{table}: {rule.check}"


def rejects(result: Validated) -> pd.DataFrame:
    """The rows left out under the drop policy: table, row, line, problems, original record."""
    con, frames = result.con, []
    for name, src in result.sources.items():
        if src.rules and src.kept < src.rows:
            record = ", ".join(
                f"{_lit(h)}, TRY_CAST(s.{quote(n)} AS VARCHAR)"
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
            cols = ", ".join(quote(c) for c in result.columns[table])
            result.con.execute(
                f"COPY (SELECT {cols} FROM ({kept_rows(result, table, with_row=True)}) "
                f"ORDER BY {ROW}) TO {_lit(str(target))} (FORMAT parquet)"
            )
        if result.policy == "drop":
            write_table(rejects(result), tmp / REJECTS_NAME)
        write_json(result.report(), tmp / REPORT_NAME)
    log.info("wrote %d clean tables to %s", len(result.kept), out_dir)


def data_end(validated: Validated) -> pd.Timestamp:
    """The first day after the data: scores 'as of the end of the data' use this cutoff."""
    return pd.Timestamp(validated.data_end) + pd.Timedelta(days=1)
