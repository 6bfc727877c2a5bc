"""The featurize stage (`churn featurize`): features at one cutoff to a file, or the labelled
training frame over the snapshot schedule with its meta.json."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pandas as pd
import typer

from features import FeatureConfig
from features.build import KEYS
from features.catalog import GROUPS
from pipeline.artifacts import FRAME_NAME, META_NAME
from pipeline.contract import as_day
from pipeline.engine import EngineSpec, check_as_of, check_engine, check_groups, features_at
from pipeline.frame import write_training_frame
from pipeline.io import atomic_dir, check_table_suffix, write_json, write_table
from pipeline.labels import LABEL, LabelSpec
from pipeline.lineage import data_lineage, fingerprint
from pipeline.progress import step
from pipeline.schedule import schedule_for
from pipeline.store import data_end, load

# what this stage reads of params.yaml, and all it is given (pipeline.config.only): the same
# list as its `params:` in dvc.yaml (tests/test_architecture.py)
PARAMS = ("features", "label", "schedule", "split", "validate", "data.lineage")


def run(
    data: Path, out: Path, as_of: str | None, engine: str | None, params: dict[str, Any]
) -> None:
    """Features of every account eligible at the day `as_of` (text, as given on the command
    line) to the table file `out`; without `as_of`, the training frame (`out`/frame.parquet and
    meta.json) over the schedule. `engine`: duckdb (None) or spark (pipeline/spark.py).
    Raises UserError (exit 2) on bad params or data."""
    cfg = FeatureConfig.from_params(params["features"])
    label = LabelSpec.from_params(params["label"])
    groups = check_groups(params["features"]["groups"] or GROUPS)
    spec = EngineSpec.from_params(params["features"])
    spark = None
    if check_engine(engine) == "spark":
        from pipeline import spark
    cutoff = as_day(as_of, "--as-of")
    if cutoff is not None:
        check_table_suffix(out)
        validated = load(data, params["validate"])
        check_as_of(validated, cutoff)
        at = spark.features_at if spark is not None else features_at
        frame = at(validated, cutoff, cfg, label, groups, spec)
        write_table(frame, out)
        typer.echo(
            f"{len(frame)} accounts x {frame.shape[1] - 2} features as of {cutoff.date()} -> {out}"
        )
        return
    with step(f"reading {data}"):
        validated = load(data, params["validate"])
    schedule = schedule_for(
        pd.Timestamp(validated.data_start),
        data_end(validated),
        label,
        params["schedule"],
        params["split"],
    )
    cutoffs = schedule.cutoffs
    typer.echo(f"schedule: {schedule.describe()}")
    started = time.perf_counter()
    with atomic_dir(out) as tmp:
        with step(f"features and labels at {len(cutoffs)} cutoffs"):
            frame = write_training_frame(
                validated,
                cutoffs,
                cfg,
                label,
                tmp / FRAME_NAME,
                groups,
                spec,
                build=spark.training_frame if spark is not None else None,
            )
        mode = frame.mode
        write_json(
            {
                "label_mode": mode,
                "cutoffs": [str(c.date()) for c in cutoffs],
                "schedule": {
                    "every_days": schedule.every_days,
                    "warmup_days": schedule.warmup_days,
                    "derived": schedule.derived,
                },
                "rows": frame.rows,
                "churn_rate": frame.churned / frame.rows if frame.rows else float("nan"),
                "features": [c for c in frame.columns if c not in (*KEYS, LABEL)],
                "data_start": validated.data_start,
                "data_end": validated.data_end,
                "data": fingerprint(validated, data_lineage(params)),
            },
            tmp / META_NAME,
        )
    typer.echo(
        f"training frame: {frame.rows} rows, {len(cutoffs)} cutoffs, {len(frame.columns) - 3} "
        f"features, label {mode} (churn rate {frame.churned / max(frame.rows, 1):.3f}) in "
        f"{time.perf_counter() - started:.1f}s -> {out}"
    )
