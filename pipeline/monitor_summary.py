"""What the monitor stage reports: the table printed, the figures DVC compares
(reports/monitor.json) and the realized figures logged to each model's MLflow run."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd

from pipeline.config import defaults

log = logging.getLogger(__name__)


def render(results: list[dict[str, Any]]) -> str:
    """The monitor's table for a terminal: one line per run, its alerts below it, then the
    alerts by model version (or why there is none)."""
    level = next((r["test_fold"]["level"] for r in results if r.get("test_fold")), LEVEL)
    test_head = f"test AUC ({level:.0%})"
    head = (
        f"{'as of':<11} {'model':<20} {'kind':<9} {'scored':>7} {'known':>7} "
        f"{'churn exp/obs':>14} {'AUC':>6} {'exp AUC (95%)':>20} {test_head:>20} "
        f"{'Brier':>6}"
    )
    lines = [head, "-" * len(head)]
    for r in results:
        observed = r.get("observed_churners")
        churn = f"{r['expected_churners']:.0f}/" + ("-" if observed is None else f"{observed}")
        auc = r.get("auc")
        lo, hi = r["expected_auc_interval"]
        exp = f"{r['expected_auc']:.3f} ({lo:.3f}-{hi:.3f})" if np.isfinite(lo) else "-"
        fold = r.get("test_fold")
        test = "-"
        if fold:
            tlo, thi = fold["auc_interval"]
            test = f"{fold['auc']:.3f} ({tlo:.3f}-{thi:.3f})"
        brier = r.get("brier")
        lines.append(
            f"{r['as_of']:<11} {str(r['model_version'])[:20]:<20} {r['kind']:<9} "
            f"{r['scored']:>7} {r.get('with_outcome', 0):>7} {churn:>14} "
            f"{'-' if auc is None else f'{auc:.3f}':>6} {exp:>20} {test:>20} "
            f"{'-' if brier is None else f'{brier:.3f}':>6}"
        )
        if r.get("unknown_outcome"):
            counts = ", ".join(f"{k} {v}" for k, v in r["unknown_outcome"].items())
            lines.append(f"{'':<11} outcome unknown: {counts}")
        for text in r.get("alerts") or []:
            lines.append(f"{'':<11} ! {text}")
        for text in r.get("notes") or []:
            lines.append(f"{'':<11} note: {text}")
    found = alerts(results)
    checked = sum(bool(r.get("checked")) for r in results)
    lines.append("")
    if found:
        lines.extend(found)
    elif checked:
        lines.append(
            f"no alert: the {checked} realized run(s) are within their model's test-fold interval"
        )
    else:
        lines.append(
            "nothing checked yet: no run's label window has closed in this data (or its model "
            "was trained before test-fold envelopes were kept); `churn backfill` scores past "
            "dates with the model of the time"
        )
    return "\n".join(lines)


METRIC_KEYS = ("auc", "pr_auc", "brier", "ece", "lift_at_10pct", "observed_over_expected")


def metrics(results: list[dict[str, Any]]) -> dict[str, Any]:
    """The numbers DVC compares (`dvc metrics show`): per run (keyed by its as-of date, or its
    name when two runs share one) the realized figures or the estimate, and the counts of
    realized runs, estimates and alerts."""
    taken = [r["as_of"] for r in results]
    out: dict[str, Any] = {}
    for r in results:
        key = r["as_of"] if taken.count(r["as_of"]) == 1 else r["run"]
        row = {"scored": r["scored"], "expected_auc": r["expected_auc"]}
        if r["kind"] == "realized":
            row |= {k: r[k] for k in METRIC_KEYS if r.get(k) is not None}
            row["with_outcome"] = r["with_outcome"]
            row["alerts"] = len(r.get("alerts") or [])
            row["notes"] = len(r.get("notes") or [])
        out[key] = row
    return {
        "realized_runs": sum(r["kind"] == "realized" for r in results),
        "estimated_runs": sum(r["kind"] == "estimate" for r in results),
        "alerts": sum(len(r.get("alerts") or []) for r in results),
        "runs": out,
    }


def log_to_mlflow(results: list[dict[str, Any]]) -> int:
    """Log each run's figures to the MLflow run of the model that scored it, as time series
    over as-of dates (step: the as-of date's day number since 1970-01-01; timestamp: the
    as-of date): `monitor.realized_auc`, `monitor.expected_auc`, `monitor.observed_over_expected`,
    `monitor.brier`, or `monitor.estimated_auc` for an open window. A point already logged
    for that step is not logged again. Runs whose model run is not in the tracking store are
    left out with a log line. Returns the number of points logged."""
    from mlflow.entities import Metric
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    client = MlflowClient()
    logged, missing = 0, set()
    for r in results:
        run_id = r.get("model_run_id")
        if not run_id or run_id in missing:
            continue
        try:
            client.get_run(run_id)
        except MlflowException:
            missing.add(run_id)
            continue
        day = pd.Timestamp(r["as_of"])
        step = int((day - pd.Timestamp("1970-01-01")).days)
        stamp = int(day.timestamp() * 1000)
        if r["kind"] == "realized":
            values = {
                "monitor.realized_auc": r.get("auc"),
                "monitor.expected_auc": r.get("expected_auc"),
                "monitor.observed_over_expected": r.get("observed_over_expected"),
                "monitor.brier": r.get("brier"),
            }
        else:
            values = {"monitor.estimated_auc": r.get("expected_auc")}
        batch = []
        for key, value in values.items():
            if value is None or not np.isfinite(value):
                continue
            if any(m.step == step for m in client.get_metric_history(run_id, key)):
                continue
            batch.append(Metric(key, float(value), stamp, step))
        if batch:
            client.log_batch(run_id, metrics=batch)
            logged += len(batch)
    if missing:
        log.info(
            "%d model run(s) not in the MLflow store %s: their figures are in the JSON only",
            len(missing),
            client.tracking_uri,
        )
    return logged


LEVEL = defaults("monitor")["level"]  # of the test-fold intervals realized runs are checked against


def alerts(results: list[dict[str, Any]]) -> list[str]:
    """One line per model version whose realized runs left its test-fold interval, naming
    the version and the runs: the signal to retrain."""
    by_version: dict[str, list[str]] = {}
    for r in results:
        for text in r.get("alerts") or []:
            by_version.setdefault(str(r["model_version"]), []).append(f"{r['as_of']}: {text}")
    return [
        f"ALERT {version}: {len(lines)} finding(s) outside its test-fold interval; retrain. "
        + "; ".join(lines)
        for version, lines in by_version.items()
    ]
