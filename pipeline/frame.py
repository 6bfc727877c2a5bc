"""The training frame: features and labels at every cutoff of the schedule, built whole or in
ranges of accounts and written to one Parquet file."""

from __future__ import annotations

import dataclasses
import itertools
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import ibis.expr.types as ir
import numpy as np
import pandas as pd
import pyarrow as pa

from features import FeatureConfig, build_features
from features.build import KEYS, choose_engine
from features.catalog import GROUPS
from pipeline.engine import EngineSpec, _to_pandas, ibis_tables, spine_for
from pipeline.labels import LABEL, LabelSpec, add_labels
from pipeline.store import Validated

log = logging.getLogger(__name__)


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
