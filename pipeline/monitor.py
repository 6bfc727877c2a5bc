"""Did the scores come true? Realized performance of past score runs, and an estimate for
those whose label window is still open.

Every `churn score` run is kept in an append-only history folder (`score.history`, default
`outputs/history`): one folder per run, named by its as-of date and the time it ran, holding
the scores as Parquet and the run's metadata (model version, as-of date, data range, the label
rules of the model, tier bounds, drift). A folder rather than the MLflow store: score runs are
batch jobs that must not need a tracking server, and the history is the exact scores handed
to account managers, readable by any tool; what monitoring learns is logged to MLflow.

`monitor(validated, history)` takes every run in the history. When the run's label window
[as_of + lead, as_of + lead + horizon) has closed in the data at hand, its scored accounts get
their outcome by the same label rules as training (pipeline/labels.py `add_labels`:
explicit churn, or no order in the window) and the realized AUC, PR-AUC, Brier score,
calibration by tier and by decile, lift and churn rate by tier are computed. When it has not
closed, the run's own calibrated probabilities give the expected churners and the expected AUC
with its interval (models/expected.py), marked as an estimate. Scored accounts whose outcome
cannot be known (the data no longer holds them; explicit churn inside the lead gap, which
training drops too) are counted per run, never dropped in silence.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import typer

from models.expected import expected_auc, expected_auc_interval, interval
from models.metrics import binary_metrics, calibration_bins
from models.tracking import configure
from pipeline.engine import ibis_tables
from pipeline.errors import UserError
from pipeline.history import Run, folder, runs
from pipeline.io import atomic_files
from pipeline.labels import LABEL, LabelSpec, add_labels
from pipeline.lineage import data_lineage, fingerprint
from pipeline.monitor_summary import LEVEL, alerts, log_to_mlflow, metrics, render
from pipeline.paths import repo_root
from pipeline.progress import step
from pipeline.store import Validated, data_end, load

# what this stage reads of params.yaml, and all it is given (pipeline.config.only): the same
# list as its `params:` in dvc.yaml (tests/test_architecture.py)
PARAMS = ("monitor", "score.history", "data.lineage", "validate", "mlflow")

log = logging.getLogger(__name__)

SCORED = "scored"


def outcomes(
    tables: dict[str, Any], held: set[str], label: LabelSpec, as_of: pd.Timestamp, ids: pd.Series
) -> pd.DataFrame:
    """For each account of `ids`, its label at `as_of` by the training rules (`label`: 1
    churned in the window, 0 not; NaN when it cannot be known) and `unknown`, why not: "not in
    the data" (the data at hand no longer holds it) or "churned in the lead gap" (explicit
    churn before the window, a row training drops too). In the order of `ids`. `tables`: the
    data at hand (featurize.ibis_tables); `held`: the account ids it holds."""
    import ibis

    mode = label.resolve(tables)
    ids = ids.astype(str).reset_index(drop=True)
    spine = ibis.memtable(pd.DataFrame({"account_id": ids.to_numpy(), "cutoff": as_of})).cast(
        {"cutoff": "timestamp"}
    )
    known = tables["accounts"].select("account_id")
    labelled = add_labels(tables, spine.semi_join(known, "account_id"), mode, label)
    got = labelled.to_pyarrow().to_pandas().set_index("account_id")[LABEL]
    out = pd.DataFrame({"account_id": ids, LABEL: ids.map(got).astype("float64")})
    out["unknown"] = np.where(
        out[LABEL].notna(),
        None,
        np.where(ids.isin(held), "churned in the lead gap", "not in the data"),
    )
    return out


def _window_closed(validated: Validated, as_of: pd.Timestamp, label: LabelSpec) -> bool:
    """Whether [as_of + lead, as_of + lead + horizon) ends within the data at hand."""
    return as_of + pd.Timedelta(days=label.window_days) <= data_end(validated)


def _by_tier(frame: pd.DataFrame) -> dict[str, dict[str, float]]:
    out = {}
    for tier, part in frame.groupby("risk_tier", sort=False):
        out[str(tier)] = {
            "n": int(len(part)),
            "predicted": round(float(part["p_churn"].mean()), 4),
            "observed": round(float(part[LABEL].mean()), 4),
        }
    return out


def evaluate_run(
    validated: Validated,
    run: Run,
    tables: dict[str, Any] | None = None,
    held: set | None = None,
    level: float = LEVEL,
) -> dict[str, Any]:
    """Realized (window closed) or expected (open) performance of one run; see the module.
    `tables` and `held` (the data's Ibis tables and account ids) are built when not given;
    `level`: of the test-fold intervals a realized run is checked against (`check`)."""
    label = LabelSpec.from_params(run.meta.get("label") or {})
    scores = run.scores
    scored = scores[scores["status"] == SCORED]
    out: dict[str, Any] = {
        "run": run.name,
        "as_of": run.meta["as_of"],
        "model_version": run.meta.get("model_version"),
        "model_run_id": run.meta.get("model_run_id"),
        "rows": int(len(scores)),
        "scored": int(len(scored)),
        "window_end": (run.as_of + pd.Timedelta(days=label.window_days)).date().isoformat(),
        "psi": dict((run.meta.get("drift") or {}).get("psi") or {}),
    }
    p = scored["p_churn"].to_numpy(dtype="float64")
    out["expected_churners"] = round(float(p.sum()), 2)
    if not _window_closed(validated, run.as_of, label):
        lo, hi = expected_auc_interval(p)
        return out | {
            "kind": "estimate",
            "expected_auc": round(expected_auc(p), 4),
            "expected_auc_interval": [round(lo, 4), round(hi, 4)],
            "unknown_outcome": {"window still open": int(len(scored))},
        }
    if tables is None or held is None:
        tables, held = _data(validated)
    status = outcomes(tables, held, label, run.as_of, scored["account_id"])
    known = status[LABEL].notna().to_numpy()
    frame = scored.reset_index(drop=True).assign(**{LABEL: status[LABEL].to_numpy()})[known]
    y, q = frame[LABEL].to_numpy(dtype=int), frame["p_churn"].to_numpy(dtype="float64")
    unknown = status.loc[~known, "unknown"].value_counts().to_dict()
    metrics = binary_metrics(y, q) if len(y) else {}
    lo, hi = expected_auc_interval(q)
    realized = {
        k: (None if not np.isfinite(v) else round(float(v), 4))
        for k, v in metrics.items()
        if k in ("auc", "pr_auc", "brier", "ece", "lift_at_10pct", "churn_rate")
    }
    out |= {
        "kind": "realized",
        "with_outcome": int(len(y)),
        "unknown_outcome": {str(k): int(v) for k, v in unknown.items()},
        "observed_churners": int(y.sum()),
        "expected_churners_with_outcome": round(float(q.sum()), 2),
        "observed_over_expected": round(float(y.sum() / q.sum()), 4) if q.sum() > 0 else None,
        "expected_auc": round(expected_auc(q), 4),
        "expected_auc_interval": [round(lo, 4), round(hi, 4)],
        **realized,
        "by_tier": _by_tier(frame),
        "by_decile": calibration_bins(y, q).to_dict(orient="records") if len(y) else [],
    }
    return out | check(out, run.meta.get("model_envelope"), level)


def check(result: dict[str, Any], env: dict[str, Any] | None, level: float) -> dict[str, Any]:
    """The intervals of a realized run from its model's test fold, its alerts and notes.

    The intervals come from the envelope (models/expected.py `interval`, at `level`, for the
    run's rows with an outcome). Alerts are the failures that lose customers, the signal to
    retrain: a realized AUC below the interval about the test fold's AUC (the model ranks
    worse than its test fold showed), or more churners than expected beyond the calibration
    interval (the model understates the risk). Calibration is the ratio observed / expected
    churners; a calibrated model promises 1, so its interval lies about 1, with the spread
    the test fold's bootstrap gives a run of this size (a test fold that already showed a
    ratio far from 1 does not excuse the same miss later). Fewer churners than the interval
    allows is a note, not an alert: the probabilities overstate the risk (a campaign sized on
    them contacts more accounts than it needs), which a world whose churn rate drifts down
    produces without any change of its dynamics. Without an envelope (a model trained before
    envelopes were kept) nothing is checked, and the result says so."""
    if not env:
        return {"test_fold": None, "alerts": [], "notes": [], "checked": False}
    n = result["with_outcome"]
    auc_lo, auc_hi = interval(env, "auc", level, n)
    oe_test = env["observed_over_expected"]
    oe_lo, oe_hi = interval(env, "observed_over_expected", level, n, centre=1.0)
    alerts, notes = [], []
    auc, oe = result.get("auc"), result.get("observed_over_expected")
    if auc is not None and auc < auc_lo:
        alerts.append(
            f"realized AUC {auc:.3f} below {auc_lo:.3f}-{auc_hi:.3f}, the {level:.0%} interval "
            f"of its test fold (AUC {env['auc']:.3f}) for {n} accounts"
        )
    if oe is not None and not oe_lo <= oe <= oe_hi:
        text = (
            f"observed/expected churners {oe:.2f} ({result['observed_churners']} against "
            f"{result['expected_churners_with_outcome']:.0f}) "
            f"{'above' if oe > oe_hi else 'below'} {oe_lo:.2f}-{oe_hi:.2f}, the {level:.0%} "
            f"interval about 1 its test fold gives (where it saw {oe_test:.2f})"
        )
        if oe > oe_hi:
            alerts.append(text + ": the model understates the risk")
        else:
            notes.append(text + ": the model overstates the risk")
    return {
        "test_fold": {
            "level": level,
            "auc": round(env["auc"], 4),
            "auc_interval": [round(auc_lo, 4), round(auc_hi, 4)],
            "observed_over_expected": round(oe_test, 4),
            "observed_over_expected_interval": [round(oe_lo, 4), round(oe_hi, 4)],
        },
        "alerts": alerts,
        "notes": notes,
        "checked": True,
    }


def monitor(
    validated: Validated, history: Path, lineage: str | None = None, level: float = LEVEL
) -> list[dict[str, Any]]:
    """Every run of `history` that scored this data's lineage (`lineage`, the data.lineage
    param, else its source folder; pipeline/lineage.py), evaluated against the data at hand,
    oldest as-of date first. Runs of other data (another experiment's, a test's) are left out
    with a log line. Raises UserError when no run of this lineage is in the history."""
    key = fingerprint(validated, lineage)["lineage"]
    found = runs(history)
    ours = [r for r in found if (r.meta.get("data") or {}).get("lineage") == key]
    if len(ours) < len(found):
        others = sorted({str((r.meta.get("data") or {}).get("lineage")) for r in found} - {key})
        log.info(
            "left out %d score run(s) of other data (lineage %s); this data's lineage is %s",
            len(found) - len(ours),
            ", ".join(others),
            key,
        )
    if not ours:
        raise UserError(
            f"no score runs of this data (lineage {key}) in {history}: every `churn score` run "
            "is kept there (score.history); score this data first, then monitor"
        )
    tables, held = _data(validated)  # once for every run
    return [evaluate_run(validated, run, tables, held, level) for run in ours]


def _data(validated: Validated) -> tuple[dict[str, Any], set[str]]:
    """The data at hand as Ibis tables, and the account ids it holds."""
    tables = ibis_tables(validated)
    held = tables["accounts"].select("account_id").to_pyarrow().column(0).to_pylist()
    return tables, set(held)


def run(
    data: Path, history: Path | None, out: Path, params: dict[str, Any], log_runs: bool = True
) -> list[str]:
    """`churn monitor`: judge every past score run in `history` (None: params score.history)
    against the data folder `data`; write the figures DVC compares to `out` and every detail
    beside it (OUT_runs.json), log them to the models' MLflow runs (with `log_runs`: a
    project's params file was read), print the table. Returns
    the alerts. Raises UserError (exit 2) on bad settings or data."""
    setting = params["score"]["history"]
    where = history or folder(setting)
    if where is None:
        raise UserError("score.history is null: no score runs are kept; give --history DIR")
    level = params["monitor"]["level"]
    if level not in (0.9, 0.95, 0.99):
        raise UserError(f"monitor.level must be 0.9, 0.95 or 0.99, not {level!r}")
    validated = load(data, params.get("validate"))
    with step("judging the past score runs against the data at hand"):
        results = monitor(validated, where, data_lineage(params), level)
    found = alerts(results)
    details = out.with_name(out.stem + "_runs.json")
    summary = {"data_end": validated.data_end, "level": level, **metrics(results)}
    with atomic_files([out, details]) as (tmp, tmp_details):
        tmp.write_text(json.dumps(summary, indent=2, default=str) + "\n")
        tmp_details.write_text(
            json.dumps(
                {
                    "data_end": validated.data_end,
                    "level": level,
                    "runs": results,
                    "alerts": found,
                },
                indent=2,
                default=str,
            )
            + "\n"
        )
    if log_runs:
        configure(repo_root(), params["mlflow"]["experiment"])
        logged = log_to_mlflow(results)
        if logged:
            typer.echo(f"logged {logged} figure(s) to the models' MLflow runs (monitor.*)")
    typer.echo(render(results))
    typer.echo(f"-> {out} (DVC metrics), {details}")
    return found
