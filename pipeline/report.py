"""A self-contained HTML report of one evaluation: metrics beside baselines and the oracle,
plots, feature-group importance, the distribution of risk and the top at-risk accounts with
their reasons. Images are inline (base64), styles are inline: one file, no external assets."""

from __future__ import annotations

import html
import json
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import mlflow  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from mlflow.exceptions import MlflowException  # noqa: E402
from mlflow.tracking import MlflowClient  # noqa: E402

from models.promotion import Decision  # noqa: E402
from models.reasons import contributions, feature_groups, group_contributions  # noqa: E402
from models.tracking import configure  # noqa: E402
from pipeline import figures  # noqa: E402
from pipeline.artifacts import (
    EVALUATION_NAME,
    PROMOTION_NAME,
    load_churn_model,
    read_frame,  # noqa: E402
)
from pipeline.errors import UserError  # noqa: E402
from pipeline.figures import DEPTHS, LABELS, model_label
from pipeline.html import file_png, img, num, png  # noqa: E402
from pipeline.io import atomic_file  # noqa: E402
from pipeline.labels import LABEL  # noqa: E402
from pipeline.monitor_section import monitor_section  # noqa: E402
from pipeline.split import folds_for  # noqa: E402

# what this stage reads of params.yaml, and all it is given (pipeline.config.only): the same
# list as its `params:` in dvc.yaml (tests/test_architecture.py)
PARAMS = ("split", "label", "campaign", "mlflow", "score", "validate", "data.lineage")

log = logging.getLogger(__name__)

REPORT_NAME = "report.html"
TABLE_KEYS = (
    ("auc", "AUC"),
    ("pr_auc", "PR-AUC"),
    ("brier", "Brier"),
    ("log_loss", "log loss"),
    ("ece", "ECE"),
    ("lift_at_5pct", "lift@5%"),
    ("lift_at_10pct", "lift@10%"),
    ("lift_at_20pct", "lift@20%"),
    ("recall_at_10pct", "recall@10%"),
)
PLOTS = (
    ("roc.png", "ROC on the same test rows: the model beside its baselines and the oracle"),
    ("pr.png", "Precision-recall"),
    ("calibration.png", "Reliability: calibrated probabilities against observed churn"),
    ("gains.png", "Cumulative gains"),
    ("campaign.png", "Expected value of a retention campaign by contact depth"),
)
DEPTH_CAPTION = "Contact depth: churners reached, precision and lift, most at risk first"
CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:24px auto;
max-width:1200px;color:#222;line-height:1.4}
h1{font-size:24px;margin-bottom:4px} h2{font-size:18px;border-bottom:1px solid #ddd;
padding-bottom:4px;margin-top:28px} .sub{color:#666;font-size:13px}
table{border-collapse:collapse;font-size:13px;margin:8px 0}
th,td{border:1px solid #ddd;padding:4px 8px;text-align:right}
th{background:#f3f5f8} td.l,th.l{text-align:left}
tr.model td{font-weight:600;background:#eef4fb} tr.oracle td{color:#555;font-style:italic}
.grid{display:flex;flex-wrap:wrap;gap:12px} .grid figure{margin:0;width:380px}
.grid img{width:380px} figcaption{font-size:12px;color:#555}
.note{background:#fff8e6;border:1px solid #f0d9a0;padding:6px 10px;font-size:13px}
.ok{background:#eaf7ee;border:1px solid #a9d8b8;padding:6px 10px;font-size:13px}
td.reason{text-align:left;font-size:12px;max-width:520px}
"""


def metrics_table(metrics: dict[str, Any]) -> str:
    """Model, baselines and oracle side by side on the test fold."""
    rows = [("model", model_label(metrics.get("model", {})), metrics["test"])]
    rows += [(n, LABELS.get(n, n), m) for n, m in metrics.get("baselines", {}).items()]
    if "oracle" in metrics:
        rows.append(("oracle", LABELS["oracle"], metrics["oracle"]))
    head = "".join(f"<th>{label}</th>" for _, label in TABLE_KEYS)
    head += "<th>model AUC minus this (95% interval)</th>"
    versus = metrics.get("vs_baselines", {})
    body = []
    for kind, label, m in rows:
        cls = kind if kind in ("model", "oracle") else ""
        cells = "".join(f"<td>{num(m.get(k))}</td>" for k, _ in TABLE_KEYS)
        d = versus.get(kind)
        cells += (
            f"<td>{d['auc_diff']:+.4f} ({d['auc_diff_lo']:+.4f} to {d['auc_diff_hi']:+.4f})</td>"
            if d
            else "<td></td>"
        )
        body.append(f'<tr class="{cls}"><td class="l">{html.escape(label)}</td>{cells}</tr>')
    return f'<table><tr><th class="l">test fold</th>{head}</tr>{"".join(body)}</table>'


def importance_figures(model, test: pd.DataFrame, contrib: pd.DataFrame) -> tuple[str, str]:
    """Feature-group importance: LightGBM gain, and mean |contribution| on the test fold."""
    groups = feature_groups(model.features)
    gain = pd.Series(
        model.estimator.booster_.feature_importance("gain"), index=model.features, dtype=float
    )
    by_group = gain.groupby(pd.Series(groups)).sum()
    by_group = by_group / by_group.sum()
    shap = group_contributions(contrib).abs().mean()
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.2))
    figures.bar_panel(axes[0], by_group, "Share of LightGBM split gain", "share of gain")
    figures.bar_panel(
        axes[1], shap, "Mean |contribution| on the test fold", "log-odds moved per account"
    )
    top = (gain / gain.sum()).sort_values(ascending=False).head(15)
    fig2, ax = plt.subplots(figsize=(10, 4))
    figures.bar_panel(
        ax,
        top.rename(index=lambda f: f"{f} ({groups[f]})"),
        "Top 15 features by split gain (group)",
        "share of gain",
    )
    return png(fig), png(fig2)


def risk_figure(p: np.ndarray, y: np.ndarray) -> str:
    """Histogram of predicted risk on the test fold, churners apart."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.2))
    figures.risk_panel(axes[0], p, y)
    share = np.sort(np.asarray(p))[::-1]
    axes[1].plot(np.arange(1, len(share) + 1) / len(share), share, c=figures.MODEL_COLOR)
    axes[1].set(
        xscale="log",
        xlabel="share of accounts (highest risk first, log scale)",
        ylabel="churn probability",
        title="Risk by rank",
    )
    return png(fig)


def top_accounts(
    model_dir: Path, data_dir: Path | None, params: dict[str, Any], n: int = 20
) -> tuple[pd.DataFrame, str] | None:
    """The `n` active accounts most at risk at the scoring date (the day after the data ends),
    scored as the score stage scores them (`churn score --all-active --model MODEL_DIR`): the
    same probabilities, tiers, reasons with the training fold's typical values, and actions.
    None without the data to score."""
    from pipeline.registry import load_scoring_model
    from pipeline.scoring import score
    from pipeline.store import data_end, load
    from pipeline.tiers import Settings

    if data_dir is None or not Path(data_dir).is_dir():
        return None
    validated = load(Path(data_dir), params.get("validate"))
    loaded, reference = load_scoring_model(params, str(model_dir), validated)
    as_of = data_end(validated)
    settings = Settings.from_params(params.get("score") or {})
    scores, _ = score(validated, loaded, as_of, None, settings, reference)
    return scores.head(n), as_of.date().isoformat()


def accounts_table(top: pd.DataFrame) -> str:
    cols = [c for c in ("name", "segment", "region") if c in top.columns]
    head = "".join(f'<th class="l">{c}</th>' for c in ["account", *cols])
    head += '<th>p(churn)</th><th>tier</th><th>change</th><th class="l">reasons</th>'
    head += '<th class="l">action</th>'
    rows = []
    for _, r in top.iterrows():
        cells = f'<td class="l">{html.escape(str(r["account_id"]))}</td>'
        cells += "".join(f'<td class="l">{html.escape(str(r[c]))}</td>' for c in cols)
        reasons_ = [
            str(r[f"reason_{k}"]) for k in (1, 2, 3) if isinstance(r.get(f"reason_{k}"), str)
        ]
        text = "<br>".join(html.escape(x) for x in reasons_) or "no group raises the risk"
        change = r.get("p_churn_change")
        cells += (
            f"<td>{r['p_churn']:.3f}</td><td>{html.escape(str(r['risk_tier']))}</td>"
            f"<td>{'' if pd.isna(change) else f'{change:+.3f}'}</td>"
        )
        cells += f'<td class="reason">{text}</td>'
        cells += f'<td class="reason">{html.escape(str(r.get("action") or ""))}</td>'
        rows.append(f"<tr>{cells}</tr>")
    return f"<table><tr>{head}</tr>{''.join(rows)}</table>"


def campaign_html(t: dict[str, Any], camp: dict[str, Any]) -> str:
    """The campaign's value when it is priced; else whom each contact depth reaches."""
    if "campaign_value" in t:
        return (
            f"<p>Contacting an account costs {camp.get('contact_cost')}, keeping one is worth "
            f"{camp.get('account_value')}, a contact keeps a would-be churner with chance "
            f"{camp.get('success_rate')}. Best contact depth on the test fold: "
            f"<b>{t['campaign_depth']:.1%}</b> of accounts, expected value "
            f"<b>{t['campaign_value']:,.0f}</b>. Contacting every account whose calibrated "
            f"p &times; success &times; value exceeds the cost reaches "
            f"{t['campaign_depth_policy']:.1%} for {t['campaign_value_policy']:,.0f}.</p>"
        )
    rows = "".join(
        f"<tr><td>{d}%</td><td>{num(t.get(f'recall_at_{d}pct'), 3)}</td>"
        f"<td>{num(t.get(f'lift_at_{d}pct', np.nan) * t.get('churn_rate', np.nan), 3)}</td>"
        f"<td>{num(t.get(f'lift_at_{d}pct'), 2)}</td></tr>"
        for d in DEPTHS
    )
    return (
        "<p>Contacting the accounts most at risk first, on the test fold: the share of all "
        "churners reached, the churn rate among those contacted (precision) and its lift over "
        "the overall rate. No campaign value: set <code>campaign.contact_cost</code>, "
        "<code>campaign.account_value</code> and <code>campaign.success_rate</code> in "
        "params.yaml to price one.</p>"
        "<table><tr><th>contacted</th><th>churners reached</th><th>precision</th>"
        f"<th>lift</th></tr>{rows}</table>"
    )


def _promotion_html(reports_dir: Path) -> str:
    path = Path(reports_dir) / PROMOTION_NAME
    if not path.is_file():
        return '<p class="note">No champion/challenger decision recorded for this run.</p>'
    d = json.loads(path.read_text())
    return (
        f'<p class="{"ok" if d["promote"] else "note"}">'
        f"Champion/challenger: {html.escape(Decision(**d).message())}.</p>"
    )


def accounts_section(found: tuple[pd.DataFrame, str] | None) -> list[str]:
    """The heading, note and table of the accounts most at risk at the scoring date."""
    if found is None:
        return ["<h2>Accounts at risk</h2>", '<p class="note">No data to score: pass --data.</p>']
    top, as_of = found
    return [
        f"<h2>Top {len(top)} at-risk active accounts as of {as_of}</h2>",
        "<p class='sub'>Scored at the scoring date (the day after the data ends) exactly as "
        "<code>churn score --all-active</code> scores them (outputs/scores.csv): active "
        "accounts only, most at risk first. Reasons: the feature groups that raise each "
        "account's risk most (each feature's exact contribution to the log-odds, summed by "
        "group: TreeSHAP, weighted with the logistic regression's when the model is a blend), "
        "each worded with the group's leading feature whose value lies on the risky side of "
        "the typical one (the training fold's median); the action follows the first reason's "
        "feature, else its group (params score.playbook).</p>",
        accounts_table(top),
    ]


def build(
    frame_dir: Path,
    model_dir: Path,
    data_dir: Path | None,
    reports_dir: Path,
    params: dict[str, Any],
) -> tuple[str, dict[str, Any]]:
    """The report's HTML, and the train_info of the model it describes."""
    metrics_path = Path(reports_dir) / EVALUATION_NAME
    if not metrics_path.is_file():
        raise UserError(f"no {metrics_path}; run `churn evaluate` (or `dvc repro`) first")
    metrics = json.loads(metrics_path.read_text())
    frame, _ = read_frame(frame_dir)
    model, info = load_churn_model(model_dir)
    folds = folds_for(frame, params)
    test = frame[folds.fold_of(frame["cutoff"]) == "test"]
    p = model.predict_proba(test)
    contrib = contributions(model, test)
    gain_png, top_png = importance_figures(model, test, contrib)
    found = top_accounts(model_dir, data_dir, params)

    t = metrics["test"]
    plots = Path(reports_dir) / "plots"
    figs = []
    for name, caption in PLOTS:
        if name == "campaign.png" and "campaign_value" not in t:
            caption = DEPTH_CAPTION
        if "oracle" not in metrics:  # real data: no simulator to compare with
            caption = caption.replace(" and the oracle", "")
        data = file_png(plots / name)
        if data:
            figs.append(f"<figure>{img(data, caption)}<figcaption>{caption}</figcaption></figure>")
    oracle = (
        f"; AUC is <b>{t['auc_vs_oracle']:.1%}</b> of the oracle's ({metrics['oracle']['auc']:.4f})"
        if "auc_vs_oracle" in t
        else ""
    )
    beats = (
        '<p class="ok">The model beats every baseline on AUC and PR-AUC.</p>'
        if t.get("beats_baselines")
        else '<p class="note">The model does <b>not</b> beat every baseline on AUC and PR-AUC.</p>'
    )
    unsure = [
        LABELS.get(name, name)
        for name, d in metrics.get("vs_baselines", {}).items()
        if not d["auc_diff_lo"] > 0
    ]
    if unsure:
        beats += (
            '<p class="note">The 95% interval of the AUC difference includes 0 (or lies below '
            f"it) against: {html.escape(', '.join(unsure))}.</p>"
        )
    cal = metrics.get("uncalibrated", {})
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        "<title>aftersale: churn model report</title>",
        f"<style>{CSS}</style></head><body>",
        "<h1>Churn-risk model report</h1>",
        f'<p class="sub">model {html.escape(str(info["registered_model"]))} '
        f"v{html.escape(str(info['version']))}, run {html.escape(info['run_id'])}, "
        f"{info['trees']} trees, {len(info['features'])} features, calibration "
        f"{html.escape(metrics['model'].get('calibration', 'none'))}; test fold: cutoffs "
        f"{', '.join(folds.as_dict()['test'])}, {t['n']} rows, churn rate {t['churn_rate']:.2%}; "
        f"written {datetime.now(UTC):%Y-%m-%d %H:%M} UTC</p>",
        "<h2>Quality on the out-of-time test fold</h2>",
        f"<p>Test AUC {t['auc']:.4f}, PR-AUC {t['pr_auc']:.4f}, ECE {t['ece']:.4f}{oracle}. "
        f"Calibration moved ECE from {cal.get('ece', float('nan')):.4f} (uncalibrated) to "
        f"{t['ece']:.4f} and Brier from {cal.get('brier', float('nan')):.4f} to "
        f"{t['brier']:.4f}.</p>",
        metrics_table(metrics),
        beats,
        _promotion_html(reports_dir),
        "<h2>Retention campaign</h2>",
        campaign_html(t, params.get("campaign") or {}),
        "<h2>Plots</h2>",
        f'<div class="grid">{"".join(figs)}</div>',
        "<h2>Feature-group importance</h2>",
        img(gain_png, "feature-group importance", 1000),
        img(top_png, "top features", 1000),
        "<h2>Distribution of risk (test fold)</h2>",
        img(risk_figure(p, test[LABEL].to_numpy()), "risk distribution", 1000),
        *accounts_section(found),
        *monitor_section(reports_dir),
        "</body></html>",
    ]
    return "\n".join(parts), info


def run(
    frame_dir: Path,
    model_dir: Path,
    data_dir: Path | None,
    reports_dir: Path,
    params: dict[str, Any],
    root: Path,
) -> Path:
    """Write reports/report.html and attach it to the training run when it is in the store."""
    out = Path(reports_dir) / REPORT_NAME
    text, info = build(frame_dir, model_dir, data_dir, reports_dir, params)
    with atomic_file(out) as tmp:
        tmp.write_text(text, encoding="utf-8")
    configure(root, params["mlflow"]["experiment"])
    try:
        MlflowClient().get_run(info["run_id"])
    except MlflowException:
        log.warning(
            "training run %s is not in the MLflow store: report not attached", info["run_id"]
        )
        return out
    with mlflow.start_run(run_id=info["run_id"]):
        mlflow.log_artifact(str(out))
    return out
