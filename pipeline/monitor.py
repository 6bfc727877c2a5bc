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
their outcome by the same label rules as training (pipeline/featurize.py `add_labels`:
explicit churn, or no order in the window) and the realized AUC, PR-AUC, Brier score,
calibration by tier and by decile, lift and churn rate by tier are computed. When it has not
closed, the run's own calibrated probabilities give the expected churners and the expected AUC
with its interval (models/expected.py), marked as an estimate. Scored accounts whose outcome
cannot be known (the data no longer holds them; explicit churn inside the lead gap, which
training drops too) are counted per run, never dropped in silence.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from models.expected import expected_auc, expected_auc_interval
from models.metrics import binary_metrics, calibration_bins
from pipeline.errors import UserError
from pipeline.featurize import LABEL, LabelSpec, add_labels, data_end, ibis_tables
from pipeline.history import Run, runs
from pipeline.lineage import fingerprint
from pipeline.validate import Validated

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
    validated: Validated, run: Run, tables: dict[str, Any] | None = None, held: set | None = None
) -> dict[str, Any]:
    """Realized (window closed) or expected (open) performance of one run; see the module.
    `tables` and `held` (the data's Ibis tables and account ids) are built when not given."""
    label = LabelSpec.from_params(run.meta.get("label") or {})
    scores = run.scores
    scored = scores[scores["status"] == SCORED]
    out: dict[str, Any] = {
        "run": run.name,
        "as_of": run.meta["as_of"],
        "model_version": run.meta.get("model_version"),
        "rows": int(len(scores)),
        "scored": int(len(scored)),
        "window_end": (run.as_of + pd.Timedelta(days=label.window_days)).date().isoformat(),
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
    return out | {
        "kind": "realized",
        "with_outcome": int(len(y)),
        "unknown_outcome": {str(k): int(v) for k, v in unknown.items()},
        "observed_churners": int(y.sum()),
        "expected_churners_with_outcome": round(float(q.sum()), 2),
        "expected_auc": round(expected_auc(q), 4),
        "expected_auc_interval": [round(lo, 4), round(hi, 4)],
        **realized,
        "by_tier": _by_tier(frame),
        "by_decile": calibration_bins(y, q).to_dict(orient="records") if len(y) else [],
    }


def monitor(
    validated: Validated, history: Path, lineage: str | None = None
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
    return [evaluate_run(validated, run, tables, held) for run in ours]


def _data(validated: Validated) -> tuple[dict[str, Any], set[str]]:
    """The data at hand as Ibis tables, and the account ids it holds."""
    tables = ibis_tables(validated)
    held = tables["accounts"].select("account_id").to_pyarrow().column(0).to_pylist()
    return tables, set(held)


def render(results: list[dict[str, Any]]) -> str:
    """The monitor's table for a terminal: one line per run."""
    head = (
        f"{'as of':<11} {'model':<16} {'kind':<9} {'scored':>7} {'known':>7} "
        f"{'churn exp/obs':>14} {'AUC':>6} {'exp AUC (95%)':>20} {'Brier':>6}"
    )
    lines = [head, "-" * len(head)]
    for r in results:
        observed = r.get("observed_churners")
        churn = f"{r['expected_churners']:.0f}/" + ("-" if observed is None else f"{observed}")
        auc = r.get("auc")
        lo, hi = r["expected_auc_interval"]
        exp = f"{r['expected_auc']:.3f} ({lo:.3f}-{hi:.3f})" if np.isfinite(lo) else "-"
        brier = r.get("brier")
        lines.append(
            f"{r['as_of']:<11} {str(r['model_version'])[:16]:<16} {r['kind']:<9} "
            f"{r['scored']:>7} {r.get('with_outcome', 0):>7} {churn:>14} "
            f"{'-' if auc is None else f'{auc:.3f}':>6} {exp:>20} "
            f"{'-' if brier is None else f'{brier:.3f}':>6}"
        )
        if r.get("unknown_outcome"):
            counts = ", ".join(f"{k} {v}" for k, v in r["unknown_outcome"].items())
            lines.append(f"{'':<11} outcome unknown: {counts}")
    return "\n".join(lines)
