"""What checking a data folder finds: `Problem` (one contract violation) and `Validated` (the
whole outcome: clean views on a DuckDB connection, the problems, the notes, the report), with
the names every part of the check shares to speak of it (ROW, MAX_EXAMPLES, `quote`) and
`kept_rows`, the query for the rows a check keeps.

The bottom of the validation modules: readers, rules, notes, checking and the store all import
it, and it imports none of them (but for type hints).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

from pipeline.errors import DataError

if TYPE_CHECKING:
    from pipeline.readers import Source


MAX_EXAMPLES = 5
ROW = "_row"  # 1-based position of the row among the rows read (the header is not a row)


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
    sources: dict[str, Source] = field(default_factory=dict, repr=False)

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


def quote(name: str) -> str:
    """`name` as a SQL identifier (double-quoted)."""
    return '"' + name.replace('"', '""') + '"'


def kept_rows(result: Validated, name: str, with_row: bool) -> str:
    """A query for the rows of `name` that are kept: its contract columns (and _row)."""
    cols = ", ".join(quote(c) for c in [*([ROW] if with_row else []), *result.columns[name]])
    src = result.sources[name]
    dropped = f" WHERE {ROW} NOT IN (SELECT {ROW} FROM flags_{name} WHERE _bad)"
    return f"SELECT {cols} FROM typed_{name}" + (dropped if src.kept < src.rows else "")
