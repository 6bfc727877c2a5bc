"""Backfill: score past as-of dates with the model that would have been current then.

Monitoring (pipeline/monitor.py) looks back at past score runs. A new installation has none,
so `churn backfill` makes them, each as it would have been made on its day. For each as-of
date A (the last `runs` cutoffs of the training frame, `every` cutoffs apart):

- the model is fitted as the train stage fits it (pipeline/fitting.py `fit_model`: the same
  params, the same split by time) on the frame's rows whose label window had closed by A
  (cutoff + lead + horizon <= A), so nothing from A on reaches it; its envelope comes from its
  own test fold, its reference profile from its own training fold;
- it is logged as an MLflow run (run name `backfill-A`, tag `backfill.as_of`), never
  registered: a backfilled model does not compete for champion;
- it scores the accounts active at A with `pipeline.scoring.write_scores`, as
  `churn score --all-active --as-of A` would, and the run is kept in the score history with
  model version `backfill:A`.

The frame's cutoffs all have closed label windows, so every backfilled run can be judged.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import typer

from models.drift import Reference, reference_profile
from pipeline.artifacts import read_frame
from pipeline.errors import UserError
from pipeline.labels import LABEL, LabelSpec
from pipeline.lineage import data_lineage
from pipeline.paths import repo_root
from pipeline.progress import step
from pipeline.store import Validated, load

log = logging.getLogger(__name__)


@dataclass
class BackfilledModel:
    """A model fitted for one past as-of date, in the shape pipeline.scoring.write_scores takes."""

    churn_model: Any
    version: str
    run_id: str | None = None
    note: str | None = None
    fingerprint: dict[str, Any] | None = field(default=None)
    uuid: str | None = None  # no saved MLmodel: the history is not read for earlier scores


def as_of_dates(cutoffs: pd.Series, runs: int, every: int) -> list[pd.Timestamp]:
    """The last `runs` distinct cutoffs, `every` cutoffs apart, oldest first. Raises
    UserError for runs or every below 1."""
    if runs < 1 or every < 1:
        raise UserError(f"--runs and --every must be at least 1 (got {runs} and {every})")
    ordered = sorted(pd.Timestamp(c) for c in pd.unique(cutoffs))
    return sorted(ordered[::-1][::every][:runs])


def known_by(frame: pd.DataFrame, as_of: pd.Timestamp, label: LabelSpec) -> pd.DataFrame:
    """The frame's rows whose label window [cutoff + lead, cutoff + lead + horizon) had
    closed by `as_of`: what a model trained on `as_of` could have learned from."""
    end = pd.to_datetime(frame["cutoff"]) + pd.Timedelta(days=label.window_days)
    return frame[end <= as_of]


def fit_at(
    frame: pd.DataFrame, as_of: pd.Timestamp, params: Mapping[str, Any], label: dict[str, Any]
):
    """The model of `as_of` (see the module), its folds, its reference profile and the rows
    it learned from. Raises UserError when the rows known by then are too few to split."""
    from pipeline.fitting import fit_model, fold_envelope
    from pipeline.split import folds_for

    spec = LabelSpec.from_params(label)
    known = known_by(frame, as_of, spec)
    if known.empty:
        raise UserError(f"no training rows whose label window closed by {as_of.date()}")
    folds = folds_for(known, params)
    model = fit_model(known, folds, dict(params), label)
    fold = folds.fold_of(known["cutoff"])
    model.envelope = fold_envelope(model, known[fold == "test"])
    reference = reference_profile(known[fold == "train"], model.features)
    return model, folds, reference, known


def _log_run(model, folds, as_of: pd.Timestamp, known: pd.DataFrame, params, root: Path):
    """One MLflow run for a backfilled model (not registered); its run id."""
    import mlflow

    from models.metrics import binary_metrics
    from models.tracking import configure, run_tags
    from pipeline.params import flatten

    fold = folds.fold_of(known["cutoff"])
    valid = known[fold == "valid"]
    experiment_id = configure(root, params["mlflow"]["experiment"])
    tags = {**run_tags(root), "backfill.as_of": as_of.date().isoformat()}
    with mlflow.start_run(
        experiment_id=experiment_id, run_name=f"backfill-{as_of.date()}", tags=tags
    ) as run:
        mlflow.log_params(flatten(dict(params)))
        metrics = binary_metrics(valid[LABEL].to_numpy(), model.predict_proba(valid))
        mlflow.log_metrics({f"valid.{k}": v for k, v in metrics.items()})
        if model.envelope:
            mlflow.log_metric("test.auc", model.envelope["auc"])
            mlflow.log_dict(model.envelope, "envelope.json")
        setup = {"folds": folds.as_dict(), "features": model.features}
        mlflow.log_dict(setup, "training_setup.json")
        return run.info.run_id


def backfill(
    validated: Validated,
    frame: pd.DataFrame,
    frame_meta: Mapping[str, Any],
    params: Mapping[str, Any],
    root: Path,
    runs: int = 12,
    every: int = 1,
    lineage: str | None = None,
) -> list[dict[str, Any]]:
    """Fit and score at each as-of date (see the module); the new score runs' metadata, oldest
    first. Dates already backfilled for this data are left as they are; dates whose known
    rows are too few to split are skipped with a warning. Raises UserError when the frame is
    of other data, or when no date could be fitted."""
    from pipeline.history import folder as history_folder
    from pipeline.history import runs as history_runs
    from pipeline.lineage import fingerprint
    from pipeline.scoring import write_scores
    from pipeline.tiers import Settings

    ours = fingerprint(validated, lineage)["lineage"]
    built_from = (frame_meta.get("data") or {}).get("lineage")
    if built_from != ours:
        raise UserError(
            f"the training frame was built from other data (lineage {built_from}) than the "
            f"data given (lineage {ours}); run `churn featurize` (or `dvc repro featurize`) "
            "on this data first"
        )
    label = {**params["label"], "mode": frame_meta["label_mode"]}
    settings = Settings.from_params(params.get("score") or {})
    if settings.history is None:
        raise UserError("score.history is null: backfilled runs would not be kept; set it")
    dates = as_of_dates(frame["cutoff"], runs, every)
    kept = {
        r.meta.get("model_version")
        for r in history_runs(history_folder(settings.history))
        if (r.meta.get("data") or {}).get("lineage") == ours
    }
    done, skipped, again = [], [], []
    for as_of in dates:
        day = as_of.date().isoformat()
        if f"backfill:{day}" in kept:  # a backfilled run is what it was: never made twice
            again.append(day)
            continue
        try:
            with step(f"backfill {day}: fitting the model of the time"):
                model, folds, reference, known = fit_at(frame, as_of, params, label)
        except UserError as exc:
            skipped.append((day, str(exc)))
            continue
        run_id = _log_run(model, folds, as_of, known, params, root)
        stand_in = BackfilledModel(
            model,
            f"backfill:{day}",
            run_id,
            f"backfilled: trained on labels known by {day}",
            frame_meta.get("data"),
        )
        with (
            step(f"backfill {day}: scoring the accounts active then"),
            tempfile.TemporaryDirectory() as tmp,
        ):
            meta = write_scores(
                validated,
                stand_in,
                as_of,
                None,
                settings,
                Path(tmp) / "scores.csv",
                Reference(reference, f"backfill-{day}"),
                None,
                lineage,
            )
        log.info("backfilled %s: %d rows scored -> %s", day, meta["rows"], meta.get("history"))
        done.append(meta)
    if again:
        log.info("already in the score history, not backfilled again: %s", ", ".join(again))
    why = "" if not skipped else f"{skipped[-1][0]}: {skipped[-1][1]}"
    if skipped and (done or again):
        log.warning(
            "backfill skipped %d date(s) without enough labelled history before them to fit "
            "a model (%s); the latest of them, %s",
            len(skipped),
            ", ".join(d for d, _ in skipped),
            why,
        )
    if not done and not again:
        raise UserError(
            f"none of the {len(skipped)} as-of date(s) had enough labelled history before it "
            f"to fit a model; the latest, {why}"
        )
    return done


def run(data: Path, frame: Path, runs: int, every: int, params: dict[str, Any]) -> None:
    """`churn backfill`: score every `every`th of the last `runs` cutoffs of the training frame
    in `frame` with the model of the time, on the data folder `data`, into the score history;
    print each run. Raises UserError (exit 2) on bad input."""
    with step(f"reading {data} and {frame}"):
        validated = load(data, params.get("validate"))
        table, meta = read_frame(frame)
    done = backfill(validated, table, meta, params, repo_root(), runs, every, data_lineage(params))
    for m in done:
        tiers = ", ".join(f"{k} {v}" for k, v in sorted(m["tier_counts"].items()))
        typer.echo(f"{m['as_of']}  {m['model_version']}  {m['rows']} rows ({tiers})")
    if not done:
        typer.echo("nothing to backfill: every date is in the score history already")
        return
    typer.echo(f"{len(done)} backfilled run(s) -> {Path(done[-1]['history']).parent}")
    typer.echo("next: churn monitor --data " + str(data))
