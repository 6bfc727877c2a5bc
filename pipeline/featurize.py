"""Features for one cutoff, or the training frame over a snapshot schedule with labels."""

from __future__ import annotations

import dataclasses
import itertools
import logging
import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd
import pyarrow as pa

from features import FeatureConfig, build_features, compiled, eligible_spine
from features.build import ENGINES, Cache, choose_engine
from features.catalog import GROUPS
from pipeline.errors import UserError
from pipeline.validate import Validated

log = logging.getLogger(__name__)

KEYS = ["account_id", "cutoff"]
LABEL = "label"
LABEL_MODES = ("auto", "explicit", "inactivity")


@dataclass(frozen=True)
class LabelSpec:
    """How churn is defined: the label window [cutoff + lead, cutoff + lead + horizon)."""

    mode: str = "auto"
    lead_days: int = 0
    horizon_days: int = 90
    active_days: int = 365  # inactivity mode: eligible only if it ordered this recently

    @classmethod
    def from_params(cls, params: dict) -> LabelSpec:
        spec = cls(**{k: v for k, v in params.items() if k in cls.__dataclass_fields__})
        if spec.mode not in LABEL_MODES:
            raise UserError(
                f"label.mode must be one of {', '.join(LABEL_MODES)}; got {spec.mode!r}"
            )
        if spec.horizon_days <= 0 or spec.lead_days < 0:
            raise UserError("label.horizon_days must be > 0 and label.lead_days >= 0")
        return spec

    def resolve(self, tables: dict[str, ir.Table]) -> str:
        """The label mode in force for this data (`auto`: explicit when a churn table exists)."""
        if self.mode == "auto":
            return "explicit" if "churn" in tables else "inactivity"
        if self.mode == "explicit" and "churn" not in tables:
            raise UserError(
                "churn labels are 'explicit' (label.mode, or the setting the model was trained "
                "with) but the data has no churn table: add churn.csv, or set label.mode to "
                "inactivity or auto and retrain"
            )
        return self.mode

    @property
    def window_days(self) -> int:
        return self.lead_days + self.horizon_days


@dataclass(frozen=True)
class EngineSpec:
    """How features are computed (params.yaml `features`: engine, threads, memory_limit)."""

    engine: str = "auto"  # auto (join for one cutoff, window for a schedule), join or window
    # None: every core. Sums and means add values rounded to fixed decimal places, exactly
    # (features.build.fixed_point), so the tables are byte-identical with any thread count.
    threads: int | None = None
    memory_limit: str | None = None  # DuckDB's, e.g. "4GB": larger work spills to disk

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


def data_end(validated: Validated) -> pd.Timestamp:
    """The first day after the data: scores 'as of the end of the data' use this cutoff."""
    return pd.Timestamp(validated.data_end) + pd.Timedelta(days=1)


def snapshot_schedule(
    data_start: pd.Timestamp,
    data_stop: pd.Timestamp,
    label: LabelSpec,
    every_days: int = 28,
    warmup_days: int = 182,
    start: str | None = None,
    end: str | None = None,
) -> list[pd.Timestamp]:
    """Training cutoffs every `every_days`, each with a complete label window before `data_stop`.

    A derived first cutoff is rounded up to a Monday, so that schedules line up week by week.
    """
    first = (
        pd.Timestamp(start) if start else data_start.normalize() + pd.Timedelta(days=warmup_days)
    )
    if not start:
        first += pd.Timedelta(days=(7 - first.weekday()) % 7)
    last_possible = data_stop - pd.Timedelta(days=label.window_days)
    last = min(pd.Timestamp(end), last_possible) if end else last_possible
    cutoffs = list(pd.date_range(first, last, freq=f"{every_days}D"))
    if not cutoffs:
        raise UserError(
            f"no training cutoff fits between {first.date()} and {last.date()}: the data "
            f"({data_start.date()} to {data_stop.date()}) is too short for a {warmup_days}-day "
            f"warm-up plus a {label.window_days}-day label window; lower schedule.warmup_days "
            "or label.horizon_days, or provide more history"
        )
    return cutoffs


# Tried in this order when schedule.every_days / schedule.warmup_days are null: the first
# pair that leaves schedule.min_train_cutoffs training cutoffs wins (multiples of a week, so
# that cutoffs stay on Mondays).
EVERY_DAYS = (28, 14, 7)
WARMUP_DAYS = (182, 91)


@dataclass(frozen=True)
class Schedule:
    """The training cutoffs and the settings that made them (`derived`: chosen from the data)."""

    cutoffs: list[pd.Timestamp]
    every_days: int
    warmup_days: int
    train_cutoffs: int
    derived: bool

    def describe(self) -> str:
        how = "derived from the data's span" if self.derived else "from params.yaml"
        return (
            f"{len(self.cutoffs)} cutoffs every {self.every_days} days after a "
            f"{self.warmup_days}-day warm-up, {self.train_cutoffs} of them in the training fold "
            f"({how})"
        )


def schedule_for(
    data_start: pd.Timestamp,
    data_stop: pd.Timestamp,
    label: LabelSpec,
    schedule: dict,
    split: dict,
) -> Schedule:
    """The snapshot schedule for data from `data_start` to `data_stop` (exclusive).

    `schedule` and `split` are params.yaml's sections. A null `every_days` or `warmup_days`
    is chosen from the data: the first of EVERY_DAYS x WARMUP_DAYS whose schedule leaves
    `split.test_cutoffs` test and `split.valid_cutoffs` validation cutoffs, purge gaps as
    long as the label window, and at least `schedule.min_train_cutoffs` (6) training cutoffs;
    else the one with the most training cutoffs. Raises UserError when no schedule leaves a
    training fold, saying how long the history must be.
    """
    from pipeline.split import split_cutoffs

    every, warmup = schedule.get("every_days"), schedule.get("warmup_days")
    for name, value in (("every_days", every), ("warmup_days", warmup)):
        if value is not None and (not isinstance(value, int) or value < (name == "every_days")):
            raise UserError(
                f"schedule.{name} must be a whole number of days or null; got {value!r}"
            )
    min_train = int(schedule.get("min_train_cutoffs") or 6)
    n_test, n_valid = int(split.get("test_cutoffs", 3)), int(split.get("valid_cutoffs", 3))
    best, error = None, None
    for step in (every,) if every else EVERY_DAYS:
        for warm in (warmup,) if warmup is not None else WARMUP_DAYS:
            try:
                cutoffs = snapshot_schedule(
                    data_start,
                    data_stop,
                    label,
                    step,
                    warm,
                    schedule.get("start"),
                    schedule.get("end"),
                )
                folds = split_cutoffs(cutoffs, n_test, n_valid, label.window_days)
            except UserError as exc:
                error = error or exc
                continue
            derived = every is None or warmup is None
            found = Schedule(cutoffs, step, warm, len(folds.train), derived)
            if found.train_cutoffs >= min_train:
                return found
            if best is None or found.train_cutoffs > best.train_cutoffs:
                best = found
    if best is not None:
        log.warning(
            "the history leaves only %d training cutoffs (schedule.min_train_cutoffs is %d)",
            best.train_cutoffs,
            min_train,
        )
        return best
    step, warm = every or min(EVERY_DAYS), warmup if warmup is not None else min(WARMUP_DAYS)
    # the first cutoff waits up to 6 days for a Monday; purge gaps are whole steps
    gap = -(-label.window_days // step) * step
    need = warm + 6 + 2 * gap + step * (n_test + n_valid - 2) + label.window_days
    span = (data_stop - data_start.normalize()).days
    raise UserError(
        f"the data spans {span} days ({data_start.date()} to {data_stop.date()}): too short "
        f"for {n_test} test and {n_valid} validation cutoffs and a training fold, with purge "
        f"gaps of {label.window_days} days (the label window) and a {warm}-day warm-up. It "
        f"must span at least {need} days with cutoffs every {step} days; or lower "
        "label.horizon_days, schedule.warmup_days or split.test_cutoffs/valid_cutoffs"
    ) from error


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


def spine_active_days(mode: str, label: LabelSpec) -> int | None:
    """The recent order an account needs to be eligible: only with inactivity labels."""
    return label.active_days if mode == "inactivity" else None


def add_labels(
    tables: dict[str, ir.Table], spine: ir.Table, mode: str, label: LabelSpec
) -> ir.Table:
    """Add the label; explicit-mode rows that churn inside the lead gap are dropped."""
    lo = spine.cutoff + ibis.interval(days=label.lead_days)
    hi = spine.cutoff + ibis.interval(days=label.window_days)
    s = spine.mutate(_lo=lo, _hi=hi)
    if mode == "explicit":
        churn = tables["churn"].select(_cid="account_id", _at="churned_at")
        t = s.left_join(churn, s.account_id == churn._cid)
        t = t.filter(t._at.isnull() | (t._at >= t._lo))
        return t.select(*KEYS, **{LABEL: (t._at.notnull() & (t._at < t._hi)).cast("int8")})
    orders = tables["orders"]
    hits = orders.join(
        s,
        [orders.account_id == s.account_id, orders.order_date >= s._lo, orders.order_date < s._hi],
    )
    counts = hits.group_by(_aid=hits.account_id, _cut=hits.cutoff).aggregate(_n=hits.count())
    t = s.left_join(counts, [s.account_id == counts._aid, s.cutoff == counts._cut])
    return t.select(*KEYS, **{LABEL: t._n.isnull().cast("int8")})


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


FRAME_ROWS = 4_000_000  # (account, cutoff) rows write_training_frame builds at a time, about


@dataclass(frozen=True)
class FrameSummary:
    """What write_training_frame wrote: rows, churned rows, columns, label mode, parts."""

    rows: int
    churned: int
    columns: list[str]
    mode: str
    parts: int


def account_ranges(validated: Validated, parts: int) -> list[tuple[str, str]]:
    """`parts` contiguous ranges (first, last) of the sorted account ids, about equal in size."""
    ids = [
        r[0]
        for r in validated.con.execute(
            f"SELECT DISTINCT account_id FROM {validated.view('accounts')} ORDER BY account_id"
        ).fetchall()
    ]
    bounds = np.linspace(0, len(ids), parts + 1).round().astype(int)
    return [(ids[a], ids[b - 1]) for a, b in itertools.pairwise(bounds) if b > a]


def write_training_frame(
    validated: Validated,
    cutoffs: Sequence[pd.Timestamp],
    cfg: FeatureConfig,
    label: LabelSpec,
    path: Path,
    groups: Sequence[str] = GROUPS,
    spec: EngineSpec | None = None,
    build: Callable[..., tuple[pd.DataFrame, str]] | None = None,
    frame_rows: int = FRAME_ROWS,
) -> FrameSummary:
    """training_frame written to the Parquet file `path`, the same rows in the same order.

    When accounts x cutoffs exceeds `frame_rows`, the frame is built for ranges of accounts
    in turn (features and labels of an account depend on its own rows only), each part kept
    in a temporary file beside `path`, and the file is then written cutoff by cutoff from the
    parts (the accounts' ranges in order give each cutoff's rows sorted), so that memory holds
    one part rather than the whole frame. `build` is training_frame, or pipeline.spark's,
    which builds the whole frame at once.
    """
    spec = spec or EngineSpec()
    accounts = int(validated.kept.get("accounts", validated.rows.get("accounts", 0)) or 0)
    parts = max(1, min(-(-accounts * len(cutoffs) // max(frame_rows, 1)), accounts))
    if build is not None or parts == 1:
        build = build or training_frame
        frame, mode = build(validated, cutoffs, cfg, label, groups, spec)
        frame.to_parquet(path, index=False)
        return FrameSummary(len(frame), int(frame[LABEL].sum()), list(frame.columns), mode, parts=1)
    tables = ibis_tables(validated, spec)
    mode = label.resolve(tables)  # from the whole data: a part may lack churned accounts
    fixed = dataclasses.replace(label, mode=mode)
    ranges = account_ranges(validated, parts)
    files = [path.with_name(f".{path.name}.part{k}") for k in range(len(ranges))]
    try:
        rows = churned = 0
        columns: list[str] = []
        for k, (span, file) in enumerate(zip(ranges, files, strict=True), 1):
            first, last = span
            log.info(
                "training frame, part %d of %d: accounts %s to %s", k, len(ranges), first, last
            )
            part = {
                name: t.filter((t.account_id >= first) & (t.account_id <= last))
                for name, t in tables.items()
            }
            frame, _ = training_frame(validated, cutoffs, cfg, fixed, groups, spec, tables=part)
            frame.to_parquet(file, index=False)
            rows, churned, columns = (
                rows + len(frame),
                churned + int(frame[LABEL].sum()),
                [*frame.columns],
            )
            del frame
        _merge_by_cutoff(files, cutoffs, path)
    finally:
        for file in files:
            file.unlink(missing_ok=True)
    return FrameSummary(rows, churned, columns, mode, parts=len(ranges))


def _merge_by_cutoff(files: Sequence[Path], cutoffs: Sequence[pd.Timestamp], path: Path) -> None:
    """One Parquet file from parts sorted by (cutoff, account) over ascending account ranges:
    each cutoff's rows of every part in turn, with the first part's schema."""
    import pyarrow.dataset as ds
    import pyarrow.parquet as pq

    schema = pq.read_schema(files[0])
    sources = [ds.dataset(f, format="parquet") for f in files]
    with pq.ParquetWriter(path, schema) as writer:
        for cutoff in cutoffs:
            at = ds.field("cutoff") == pa.scalar(pd.Timestamp(cutoff), schema.field("cutoff").type)
            for source in sources:
                table = source.to_table(filter=at)
                if table.num_rows:
                    writer.write_table(table.cast(schema))


def training_frame(
    validated: Validated,
    cutoffs: Sequence[pd.Timestamp],
    cfg: FeatureConfig,
    label: LabelSpec,
    groups: Sequence[str] = GROUPS,
    spec: EngineSpec | None = None,
    tables: dict[str, ir.Table] | None = None,
) -> tuple[pd.DataFrame, str]:
    """Features and labels for every eligible (account, cutoff); returns (frame, label mode).
    `tables`: as for features_at."""
    spec = spec or EngineSpec()
    tables = tables if tables is not None else ibis_tables(validated, spec)
    mode = label.resolve(tables)
    engine = choose_engine(spec.engine, len(cutoffs))
    log.info(
        "building the training frame: %d cutoffs %s to %s, label %s, %s engine",
        len(cutoffs),
        cutoffs[0].date(),
        cutoffs[-1].date(),
        mode,
        engine,
    )
    spine = spine_for(tables, cutoffs, mode, label, engine)
    labelled = add_labels(tables, spine, mode, label)
    feats = build_features(tables, labelled.select(*KEYS), cfg, groups, engine)
    frame = feats.join(labelled, KEYS)
    return _to_pandas(frame), mode
