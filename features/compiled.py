"""Feature queries at one cutoff, compiled to SQL once per process and run at any cutoff.

Building the Ibis expressions of the 70 features and compiling them with sqlglot costs far
more than DuckDB running them on the default world, and a command often needs several
cutoffs (`churn explain`: six; `churn score`: now and `change_days` before). The queries of
one cutoff (build_features with the join engine and its spine) depend on the cutoff only
through timestamp literals: the cutoff itself and the window bounds, whole days before it.
So they are compiled once, at a stand-in cutoff on a day far from any data (SENTINEL), and
each literal is moved to the real cutoff by the same number of days before the SQL runs.

Plans are also kept on disk (`cache_dir()`: AFTERSALE_CACHE_DIR, else the user's cache
folder), so that the next process (`churn explain` after `churn score`) reads the SQL rather
than compiling it again. A plan file is named by a hash of everything the SQL depends on: the
caller's key, the tables' schemas, the cutoff's time of day, the source of the `features` and
`pipeline` packages, and the versions of Ibis, sqlglot and DuckDB; a file that cannot be read
is compiled again and rewritten.

Only literals positively recognised as Ibis's DuckDB timestamps near the stand-in day are
moved; a query holding any other timestamp literal, or an in-memory table, is not kept and
is built again at each cutoff (as before). Plans are kept per process, keyed by the tables'
names and schemas, the caller's key (feature settings, groups, label mode...) and the
cutoff's time of day. The steps are materialized as temp tables named by the plan, dropped
once the result is read.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import itertools
import json
import logging
import os
import re
import tempfile
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from pathlib import Path

import ibis
import ibis.expr.operations as ops
import ibis.expr.types as ir
import pandas as pd
import pyarrow as pa
import sqlglot as sg
import sqlglot.expressions as sge

log = logging.getLogger(__name__)

SENTINEL = pd.Timestamp("2200-01-01")  # the stand-in cutoff's day: no data lies near it
_NEAR = pd.Timedelta(days=36500)  # literals this close to it came from the cutoff
_LITERAL = re.compile(r"MAKE_TIMESTAMP\((\d+), (\d+), (\d+), (\d+), (\d+), ([0-9.eE+-]+)\)")
_PLANS: OrderedDict[Hashable, Plan | None] = OrderedDict()  # None: cannot be kept
_KEEP = 16  # plans kept per process (each a few hundred kilobytes of SQL)
_IDS = itertools.count()

Tables = dict[str, ir.Table]
Build = Callable[[Tables, pd.Timestamp, Callable[[ir.Table], ir.Table]], ir.Table]


@dataclass(frozen=True)
class Plan:
    """A query of one cutoff as SQL written at the stand-in cutoff over stand-in tables
    (`"__aftersale_<table>__"`): the statements that fill the temp tables `names`, in order,
    then the result's query and its Ibis schema."""

    tables: tuple[str, ...]
    names: tuple[str, ...]
    steps: tuple[str, ...]
    result: str
    schema: ibis.Schema


def _time(match: re.Match) -> pd.Timestamp:
    y, mo, d, h, mi = (int(g) for g in match.groups()[:5])
    micros = round(float(match.group(6)) * 1_000_000)
    return pd.Timestamp(y, mo, d, h, mi) + pd.Timedelta(microseconds=micros)


def _literal(backend, ts: pd.Timestamp) -> str:
    """The SQL Ibis writes for a timestamp literal (compiled, not imitated)."""
    sql = backend.compile(ibis.literal(ts.to_pydatetime(), type="timestamp"))
    return _LITERAL.search(sql).group(0)


def _movable(sql: str) -> bool:
    """Every timestamp literal of `sql` is one Ibis wrote near the stand-in day."""
    found = list(_LITERAL.finditer(sql))
    if len(found) != sql.upper().count("MAKE_TIMESTAMP"):
        return False
    try:
        return all(abs(_time(m) - SENTINEL) < _NEAR for m in found)
    except (ValueError, OverflowError):  # not a time pandas holds: not ours
        return False


def at_cutoff(sql: str, cutoff: pd.Timestamp, backend) -> str:
    """`sql`, written at the stand-in cutoff, moved to `cutoff`'s day: each timestamp literal
    keeps its distance from the stand-in day."""
    shift = pd.Timestamp(cutoff).normalize() - SENTINEL
    memo: dict[str, str] = {}

    def move(match: re.Match) -> str:
        text = match.group(0)
        if text not in memo:
            memo[text] = _literal(backend, _time(match) + shift)
        return memo[text]

    return _LITERAL.sub(move, sql)


def _stand_in(cutoff: pd.Timestamp) -> pd.Timestamp:
    """The stand-in cutoff: the stand-in day at the cutoff's time of day."""
    cutoff = pd.Timestamp(cutoff)
    return SENTINEL + (cutoff - cutoff.normalize())


class _Recorder:
    """Stands in for a cache: records the SQL that would fill a temp table with each table a
    build materializes, and hands back that temp table (unbound: nothing runs here)."""

    def __init__(self, backend) -> None:
        self.backend = backend
        self.prefix = f"_aftersale_plan{next(_IDS)}_"
        self.names: list[str] = []
        self.steps: list[str] = []
        self.movable = True

    def __call__(self, expr: ir.Table) -> ir.Table:
        name = f"{self.prefix}{len(self.names)}"
        sql = _fill(self.backend, name, expr)
        self.movable &= _movable(sql) and _reads_only(expr, self.names)
        self.names.append(name)
        self.steps.append(sql)
        return ibis.table(expr.schema(), name=name)


def _fill(backend, name: str, expr: ir.Table) -> str:
    """The statements that create temp table `name` and fill it with `expr`, as Ibis's
    cache does (the column types are Ibis's, not those DuckDB would infer)."""
    dialect = backend.dialect
    table = sg.table(name, quoted=True)
    columns = expr.schema().to_sqlglot_column_defs(dialect)
    create = sge.Create(
        kind="TABLE",
        this=sge.Schema(this=table, expressions=columns),
        properties=sge.Properties(expressions=[sge.TemporaryProperty()]),
        replace=True,
    )
    names = [sge.to_identifier(c, quoted=True) for c in expr.columns]
    insert = sge.insert(backend.compiler.to_sqlglot(expr), into=table, columns=names)
    return f"{create.sql(dialect)};\n{insert.sql(dialect)}"


def _execute(backend, sql: str) -> None:
    for statement in sql.split(";\n", 1):
        backend.con.execute(statement)


def _stand_in_table(name: str) -> str:
    return f"__aftersale_{name}__"


def _reads_only(expr: ir.Table, steps: Sequence[str]) -> bool:
    """`expr` reads only stand-in tables and earlier steps: nothing held in memory, nothing
    bound to a connection, no SQL of its own."""
    read = expr.op().find((ops.PhysicalTable, ops.SQLQueryResult, ops.SQLStringView))
    return all(
        type(op) is ops.UnboundTable
        and (op.name in steps or (op.name.startswith("__aftersale_") and op.name.endswith("__")))
        for op in read
    )


def _record(backend, tables: Tables, build: Build, cutoff: pd.Timestamp) -> Plan | None:
    """Compile the build at the stand-in cutoff over stand-in tables; None when its SQL holds
    anything that cannot be moved to another cutoff or tables."""
    stand_ins = {
        n: ibis.table(t.schema(), name=_stand_in_table(n)) for n, t in sorted(tables.items())
    }
    rec = _Recorder(backend)
    result = build(stand_ins, _stand_in(cutoff), rec)
    sql = backend.compile(result)
    if not (rec.movable and _movable(sql) and _reads_only(result, rec.names)):
        return None
    return Plan(tuple(stand_ins), tuple(rec.names), tuple(rec.steps), sql, result.schema())


def _drop(backend, names: Sequence[str]) -> None:
    for name in names:
        backend.con.execute(f'DROP TABLE IF EXISTS temp.main."{name}"')


def run(tables: Tables, cutoff: pd.Timestamp, build: Build, key: Hashable) -> pa.Table:
    """The result of `build(tables, cutoff, cache)` as Arrow, through a plan compiled once
    per process for `key` and the tables' schemas (DuckDB only: other backends build it at
    each call).

    `build` must depend on the cutoff only through timestamp literals, read only `tables`,
    and materialize intermediate tables only through `cache`."""
    backend = ibis.get_backend(next(iter(tables.values())))
    cutoff = pd.Timestamp(cutoff)
    plan = None
    if backend.name == "duckdb" and all(_plain(t) for t in tables.values()):
        schemas = tuple(sorted((n, t.schema()) for n, t in tables.items()))
        full = (key, schemas, cutoff - cutoff.normalize())
        if full not in _PLANS:
            path = _plan_file(full)
            _PLANS[full] = _read_plan(path)
            if _PLANS[full] is None:
                _PLANS[full] = _record(backend, tables, build, cutoff)
                _write_plan(path, _PLANS[full])
            while len(_PLANS) > _KEEP:
                _PLANS.popitem(last=False)
        _PLANS.move_to_end(full)
        plan = _PLANS[full]
    if plan is None:
        log.debug("feature query built at %s (not kept)", cutoff)
        return build(tables, cutoff, ir.Table.cache).to_pyarrow()
    return _result(backend, plan, tables, cutoff)


def cache_dir() -> Path | None:
    """Where plans are kept between processes: AFTERSALE_CACHE_DIR ("" or "off": nowhere),
    else $XDG_CACHE_HOME/aftersale, else ~/.cache/aftersale."""
    setting = os.environ.get("AFTERSALE_CACHE_DIR")
    if setting is not None:
        return None if setting.strip() in ("", "off") else Path(setting) / "plans"
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "aftersale" / "plans"


@functools.cache
def _code_version() -> str:
    """A hash of the source the plans are built by (the features and pipeline packages) and
    of the versions of the libraries that write and run the SQL."""
    import duckdb

    digest = hashlib.sha256(f"{ibis.__version__} {sg.__version__} {duckdb.__version__}".encode())
    here = Path(__file__).resolve().parent
    for package in (here, here.parent / "pipeline"):
        for source in sorted(package.glob("*.py")):
            digest.update(source.name.encode() + source.read_bytes())
    return digest.hexdigest()


def _plan_file(full: Hashable) -> Path | None:
    folder = cache_dir()
    if folder is None:
        return None
    name = hashlib.sha256(f"{_code_version()} {full!r}".encode()).hexdigest()[:32]
    return folder / f"{name}.json"


def _read_plan(path: Path | None) -> Plan | None:
    """The plan kept at `path`, its temp tables renamed for this process; None when there is
    none or it cannot be read."""
    if path is None or not path.is_file():
        return None
    try:
        kept = json.loads(path.read_text())
        prefix = f"_aftersale_plan{next(_IDS)}_"

        def renamed(sql: str) -> str:
            return sql.replace(kept["prefix"], prefix)

        return Plan(
            tables=tuple(kept["tables"]),
            names=tuple(renamed(n) for n in kept["names"]),
            steps=tuple(renamed(q) for q in kept["steps"]),
            result=renamed(kept["result"]),
            schema=ibis.schema(kept["schema"]),
        )
    except (OSError, ValueError, KeyError, TypeError) as exc:  # compiled again instead
        log.debug("plan %s not read (%s): compiling it again", path, exc)
        return None


def _write_plan(path: Path | None, plan: Plan | None) -> None:
    """Keep `plan` at `path` (written whole, then renamed); nothing when it cannot be."""
    if path is None or plan is None or not plan.names:
        return
    prefix = plan.names[0][: plan.names[0].rindex("_") + 1]
    schema = {name: str(dtype) for name, dtype in plan.schema.items()}
    if ibis.schema(schema) != plan.schema:  # a type whose text does not read back
        return
    kept = {
        "prefix": prefix,
        "tables": list(plan.tables),
        "names": list(plan.names),
        "steps": list(plan.steps),
        "result": plan.result,
        "schema": schema,
    }
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(
            "w", dir=path.parent, prefix=".plan-", suffix=".json", delete=False
        ) as tmp:
            json.dump(kept, tmp)
        os.replace(tmp.name, path)
    except OSError as exc:  # a read-only or full disk: the next process compiles again
        log.debug("plan not kept at %s: %s", path, exc)
        with contextlib.suppress(OSError, UnboundLocalError):
            os.unlink(tmp.name)


def _plain(table: ir.Table) -> bool:
    """A table of the connection, read by name (a view or table)."""
    return isinstance(table.op(), ops.DatabaseTable)


def _sources(sql: str, plan: Plan, tables: Tables, cutoff: pd.Timestamp, backend) -> str:
    """`sql` of `plan` at `cutoff` over `tables`."""
    for name in plan.tables:
        op = tables[name].op()
        where = op.namespace
        real = sg.table(op.name, db=where.database, catalog=where.catalog, quoted=True)
        stand_in = sg.to_identifier(_stand_in_table(name), quoted=True).sql(backend.dialect)
        sql = sql.replace(stand_in, real.sql(backend.dialect))
    return at_cutoff(sql, cutoff, backend)


def _result(backend, plan: Plan, tables: Tables, cutoff: pd.Timestamp) -> pa.Table:
    """Fill the plan's steps, read its result as Ibis would (the same Arrow types), and drop
    the steps."""
    from ibis.backends.duckdb.converter import DuckDBPyArrowData

    try:
        for sql in plan.steps:
            _execute(backend, _sources(sql, plan, tables, cutoff, backend))
        sql = _sources(plan.result, plan, tables, cutoff, backend)
        table = backend.con.sql(sql).to_arrow_table()
    finally:
        _drop(backend, plan.names)
    return DuckDBPyArrowData.convert_table(table, plan.schema)
