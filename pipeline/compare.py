"""`churn compare`: recent MLflow runs side by side, key metrics and the params that differ."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from mlflow.tracking import MlflowClient

from models.tracking import default_uri, tracking_uri
from pipeline.errors import UserError

KEY_METRICS = (
    "test.auc",
    "test.auc_vs_oracle",
    "test.pr_auc",
    "test.brier",
    "test.log_loss",
    "test.ece",
    "test.lift_at_10pct",
    "test.recall_at_10pct",
    "test.campaign_value",
    "valid.auc",
    "trees",
)
# Params every run has but that say nothing about the model (paths).
IGNORED_PARAMS = ("data.raw", "data.truth")


def recent_runs(root: Path, experiment: str, last: int) -> list:
    """The `last` most recent runs of `experiment`, newest first."""
    uri = tracking_uri(root)
    if uri == default_uri(root) and not (Path(root) / "mlflow.db").is_file():
        raise UserError(f"no MLflow store at {root / 'mlflow.db'}; run `dvc repro` first")
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    found = client.get_experiment_by_name(experiment)
    if found is None:
        raise UserError(f"no experiment {experiment!r} in the MLflow store {uri}")
    return client.search_runs(
        [found.experiment_id], order_by=["attribute.start_time DESC"], max_results=last
    )


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.4f}"


def table(runs: list, metrics: tuple[str, ...] = KEY_METRICS) -> pd.DataFrame:
    """One column per run (oldest left); rows: run facts, key metrics, params that differ."""
    runs = list(reversed(runs))
    columns = [r.info.run_id[:8] for r in runs]
    facts = {
        "started": [
            pd.Timestamp(r.info.start_time, unit="ms").strftime("%m-%d %H:%M") for r in runs
        ],
        "dvc exp": [r.data.tags.get("dvc_exp_name", "-") for r in runs],
        "commit": [r.data.tags.get("git_commit", "-")[:7] for r in runs],
        "promotion": [r.data.tags.get("promotion.decision", "-") for r in runs],
    }
    rows = dict(facts)
    for key in metrics:
        values = [r.data.metrics.get(key) for r in runs]
        if any(v is not None for v in values):
            rows[key] = [_fmt(v) for v in values]
    names = sorted({k for r in runs for k in r.data.params} - set(IGNORED_PARAMS))
    for name in names:
        values = [r.data.params.get(name, "-") for r in runs]
        if len(set(values)) > 1:
            rows[f"param {name}"] = [v if len(v) <= 30 else v[:29] + "…" for v in values]
    return pd.DataFrame(rows, index=columns).T


def render(frame: pd.DataFrame) -> str:
    """Plain aligned text (no index name, no truncation)."""
    with pd.option_context("display.max_rows", None, "display.max_columns", None,
                           "display.width", 250, "display.max_colwidth", 40):  # fmt: skip
        return frame.to_string()


def compare(root: Path, experiment: str, last: int) -> str:
    """The comparison as text, with a note when fewer than two runs exist."""
    if last < 1:
        raise UserError("--last must be at least 1")
    runs = recent_runs(root, experiment, last)
    if not runs:
        return f"no runs in experiment {experiment!r} yet; run `dvc repro` or `dvc exp run`"
    frame = table(runs)
    out = render(frame)
    if len(runs) == 1:
        out += "\n(one run: no other run to differ from)"
    elif not any(i.startswith("param ") for i in frame.index):
        out += "\n(no param differs between these runs)"
    return out
