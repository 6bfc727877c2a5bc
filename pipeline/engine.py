"""The feature engine over the clean store: its settings (params.yaml `features`), the clean
tables as Ibis tables, and the features of every eligible account at one cutoff."""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import ibis
import ibis.expr.types as ir
import pandas as pd
import pyarrow as pa

from features import FeatureConfig, build_features, compiled, eligible_spine
from features.build import ENGINES, KEYS, Cache, choose_engine
from features.catalog import GROUPS
from pipeline.config import defaults
from pipeline.errors import UserError
from pipeline.labels import LabelSpec, spine_active_days
from pipeline.store import Validated, data_end

log = logging.getLogger(__name__)


_FEATURES = defaults("features")  # params.yaml's defaults live in pipeline/config.py only


@dataclass(frozen=True)
class EngineSpec:
    """How features are computed (params.yaml `features`: engine, threads, memory_limit)."""

    engine: str = _FEATURES[
        "engine"
    ]  # auto (join for one cutoff, window for a schedule), join or window
    # None: every core. Sums and means add values rounded to fixed decimal places, exactly
    # (features.build.fixed_point), so the tables are byte-identical with any thread count.
    threads: int | None = _FEATURES["threads"]
    memory_limit: str | None = _FEATURES[
        "memory_limit"
    ]  # DuckDB's, e.g. "4GB": larger work spills to disk

    @classmethod
    def from_params(cls, params: dict) -> EngineSpec:
        spec = cls(**{k: v for k, v in params.items() if k in cls.__dataclass_fields__})
        if spec.engine not in ENGINES:
            raise UserError(
                f"features.engine must be one of {', '.join(ENGINES)}; got {spec.engine!r}"
            )
        if spec.threads is not None and (not isinstance(spec.threads, int) or spec.threads < 1):
            raise UserError(
                f"features.threads must be a whole number >= 1, or empty for every core; "
                f"got {spec.threads!r}"
            )
        return spec


def check_groups(groups: Sequence[str]) -> list[str]:
    """features.groups, checked against the catalog's groups."""
    unknown = [g for g in groups if g not in GROUPS]
    if unknown:
        raise UserError(
            f"features.groups: unknown group(s) {', '.join(map(repr, unknown))}; "
            f"choose from {', '.join(GROUPS)}"
        )
    return list(groups)


def ibis_tables(validated: Validated, spec: EngineSpec | None = None) -> dict[str, ir.Table]:
    """The clean tables as Ibis tables on the validation's DuckDB connection."""
    spec = spec or EngineSpec()
    con = validated.con
    if spec.threads is None:  # DuckDB's default: every core
        con.execute("RESET threads")
    else:
        con.execute(f"SET threads = {int(spec.threads)}")
    # An in-memory DuckDB spills to ./.tmp, which under `dvc repro` is the repository.
    spill = Path(tempfile.gettempdir()) / f"aftersale-duckdb-{os.getpid()}"
    con.execute(f"SET temp_directory = '{spill}'")
    if spec.memory_limit:
        try:
            con.execute(f"SET memory_limit = '{spec.memory_limit}'")
        except Exception as exc:  # DuckDB's message names the accepted units
            raise UserError(f"features.memory_limit {spec.memory_limit!r}: {exc}") from exc
        # results are ordered explicitly; not keeping insertion order lets DuckDB spill more
        con.execute("SET preserve_insertion_order = false")
    con = ibis.duckdb.from_connection(validated.con)
    return {name: con.table(validated.view(name)) for name in validated.columns}


def spine_for(
    tables: dict[str, ir.Table],
    cutoffs: Sequence[pd.Timestamp],
    mode: str,
    label: LabelSpec,
    engine: str = "join",
    cache: Cache = ir.Table.cache,
) -> ir.Table:
    """Eligible (account, cutoff) pairs under the label mode in force."""
    active = spine_active_days(mode, label)
    return eligible_spine(tables, cutoffs, active_days=active, engine=engine, cache=cache)


def _to_pandas(expr: ir.Table) -> pd.DataFrame:
    return _frame(expr.order_by(KEYS[::-1]).to_pyarrow())


def _frame(table: pa.Table) -> pd.DataFrame:
    # through Arrow: the same types as Ibis's to_pandas, several times faster on wide frames
    frame = table.to_pandas()
    frame["cutoff"] = pd.to_datetime(frame["cutoff"]).astype("datetime64[us]")
    return frame.reset_index(drop=True)


def features_at(
    validated: Validated,
    as_of: pd.Timestamp,
    cfg: FeatureConfig,
    label: LabelSpec,
    groups: Sequence[str] = GROUPS,
    spec: EngineSpec | None = None,
    tables: dict[str, ir.Table] | None = None,
) -> pd.DataFrame:
    """One row of features per account eligible at `as_of` (no labels); `tables` are the
    validated tables on another Ibis backend (pipeline/spark.py), else on DuckDB."""
    spec = spec or EngineSpec()
    tables = tables if tables is not None else ibis_tables(validated, spec)
    mode = label.resolve(tables)
    engine = choose_engine(spec.engine, 1)

    def build(tables: dict[str, ir.Table], cutoff: pd.Timestamp, cache: Cache) -> ir.Table:
        spine = spine_for(tables, [cutoff], mode, label, engine, cache)
        feats = build_features(tables, spine, cfg, groups, engine, cutoff=cutoff, cache=cache)
        return feats.order_by(KEYS[::-1])

    if engine != "join":  # the schedule engines: the query holds the cutoff as a table
        return _to_pandas(build(tables, as_of, ir.Table.cache))
    # the query is compiled once per process for these settings: only its cutoff changes
    key = (engine, mode, spine_active_days(mode, label), cfg, tuple(groups))
    return _frame(compiled.run(tables, as_of, build, key))


def check_as_of(validated: Validated, as_of: pd.Timestamp) -> None:
    """The as-of date must fall within the data (after its start, at most a day after its end)."""
    start, stop = pd.Timestamp(validated.data_start), data_end(validated)
    if not start < as_of <= stop:
        raise UserError(
            f"--as-of {as_of.date()} is outside the data, which runs from "
            f"{start.date()} to {validated.data_end}; pick a date after "
            f"{start.date()} and no later than {stop.date()}"
        )


def check_engine(value: str | None) -> str:
    """--engine: duckdb (the default) or spark. Raises UserError otherwise."""
    if value not in (None, "duckdb", "spark"):
        raise UserError(f"--engine must be duckdb or spark, not {value!r}")
    return value or "duckdb"
