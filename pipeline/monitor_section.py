"""The report's monitoring section: did past score runs come true (reports/monitor_runs.json),
as a chart of realized and expected AUC per run and a table of findings."""

from __future__ import annotations

import html
import json
import logging
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from models.drift import GROWS_WITH_HISTORY  # noqa: E402
from pipeline import figures  # noqa: E402
from pipeline.artifacts import MONITOR_RUNS  # noqa: E402
from pipeline.html import img, num, png  # noqa: E402

log = logging.getLogger(__name__)


def monitor_figure(runs: list[dict[str, Any]], most: int = 12) -> str:
    """Realized against expected performance over the as-of dates (AUC, and observed against
    expected churners), with each run's test-fold interval, beside the drift history: PSI per
    feature per run for the `most` features with the largest PSI."""
    day = pd.to_datetime([r["as_of"] for r in runs])
    fig, axes = plt.subplots(1, 3, figsize=(15, 5), gridspec_kw={"width_ratios": [1, 1, 1.2]})
    ax = axes[0]
    exp = np.array([r["expected_auc"] for r in runs], dtype=float)
    band = np.array([r["expected_auc_interval"] for r in runs], dtype=float)
    ax.fill_between(day, band[:, 0], band[:, 1], color="0.85", label="expected (CBPE), 95%")
    ax.plot(day, exp, c="0.45", ls="--", marker=".", label="expected from its probabilities")
    done = [i for i, r in enumerate(runs) if r["kind"] == "realized"]
    fold = [i for i in done if runs[i].get("test_fold")]
    if fold:
        lo = np.array([runs[i]["test_fold"]["auc_interval"][0] for i in fold])
        hi = np.array([runs[i]["test_fold"]["auc_interval"][1] for i in fold])
        mid = np.array([runs[i]["test_fold"]["auc"] for i in fold])
        ax.errorbar(
            day[fold], mid, yerr=[mid - lo, hi - mid], fmt="none", ecolor="tab:orange",
            capsize=3, label=f"test fold, {runs[fold[0]]['test_fold']['level']:.0%}",
        )  # fmt: skip

    def flag(ax, key: str, marker: str) -> None:  # circle the runs whose alert is about `key`
        bad = [i for i in done if any(marker in a for a in runs[i].get("alerts") or [])]
        if bad:
            ax.scatter(day[bad], [runs[i].get(key) for i in bad], s=120, facecolors="none",
                       edgecolors="red", linewidths=2, label="alert", zorder=5)  # fmt: skip

    if done:
        auc = np.array([runs[i].get("auc") or np.nan for i in done], dtype=float)
        ax.plot(day[done], auc, c=figures.MODEL_COLOR, marker="o", label="realized")
        flag(ax, "auc", "realized AUC")
    ax.set(title="AUC by as-of date", ylabel="AUC")
    below = {"fontsize": 7, "loc": "upper center", "bbox_to_anchor": (0.5, -0.22), "ncol": 2}
    ax.legend(**below)
    ax = axes[1]
    if done:
        oe = np.array([runs[i].get("observed_over_expected") or np.nan for i in done], float)
        ax.axhline(1.0, c="0.6", lw=1)
        if fold:
            lo = np.array(
                [runs[i]["test_fold"]["observed_over_expected_interval"][0] for i in fold]
            )
            hi = np.array(
                [runs[i]["test_fold"]["observed_over_expected_interval"][1] for i in fold]
            )
            level = runs[fold[0]]["test_fold"]["level"]
            ax.vlines(day[fold], lo, hi, colors="tab:orange", lw=6, alpha=0.4,
                      label=f"{level:.0%} interval about 1 (test fold's spread)")  # fmt: skip
        ax.plot(day[done], oe, c=figures.MODEL_COLOR, marker="o", label="realized")
        flag(ax, "observed_over_expected", "observed/expected")
        ax.legend(**below)
    ax.set(title="Observed / expected churners", ylabel="ratio")
    ax = axes[2]
    psi = pd.DataFrame([r.get("psi") or {} for r in runs], index=[r["as_of"] for r in runs])
    growing = [c for c in psi.columns if c in GROWS_WITH_HISTORY]  # drift expected: left out
    psi = psi.drop(columns=growing)
    if psi.empty or psi.shape[1] == 0:
        ax.text(0.5, 0.5, "no drift recorded", ha="center", va="center")
        ax.set_axis_off()
    else:
        top = psi.max().sort_values(ascending=False).index[:most]
        data = psi[top].T.to_numpy(dtype=float)
        im = ax.imshow(data, aspect="auto", cmap="Reds", vmin=0, vmax=max(0.25, np.nanmax(data)))
        ax.set_yticks(range(len(top)), top, fontsize=7)
        ax.set_xticks(range(len(psi)), psi.index, rotation=60, fontsize=7)
        ax.set_title("Drift history: PSI against the training fold", fontsize=10)
        if growing:
            ax.set_xlabel(f"{len(growing)} features that grow with history left out", fontsize=8)
        fig.colorbar(im, ax=ax, fraction=0.04, label="PSI (0.25: large)")
    for a in axes[:2]:
        a.tick_params(axis="x", labelrotation=45, labelsize=7)
    fig.tight_layout()
    return png(fig)


def _findings(run: dict[str, Any]) -> str:
    """A run's alerts (bold) and notes, for the report's table."""
    alerts = [f"<b>alert: {html.escape(a)}</b>" for a in run.get("alerts") or []]
    notes = [f"note: {html.escape(n)}" for n in run.get("notes") or []]
    return "<br>".join(alerts + notes) or ("&ndash;" if run.get("checked") else "not checked")


def monitor_section(reports_dir: Path) -> list[str]:
    """Did the scores come true? The past score runs (`churn monitor`), the plot and alerts."""
    path = Path(reports_dir) / MONITOR_RUNS
    head = "<h2>Did the scores come true?</h2>"
    if not path.is_file():
        return [head, '<p class="note">No monitoring yet: run <code>churn monitor</code>.</p>']
    found = json.loads(path.read_text())
    runs = found.get("runs") or []
    if not runs:
        return [head, '<p class="note">No past score runs of this data yet.</p>']
    realized = [r for r in runs if r["kind"] == "realized"]
    alerts = found.get("alerts") or []
    if alerts:
        verdict = "".join(f'<p class="note"><b>{html.escape(a)}</b></p>' for a in alerts)
    elif any(r.get("checked") for r in realized):
        verdict = (
            '<p class="ok">No alert: every realized run lies within its model\'s test-fold '
            f"interval ({found.get('level', 0.99):.0%}).</p>"
        )
    else:
        verdict = (
            '<p class="note">Nothing to check yet: no run\'s label window has closed in this '
            "data. <code>churn backfill</code> scores past dates with the model of the time.</p>"
        )
    rows = "".join(
        f"<tr><td>{r['as_of']}</td><td>{html.escape(str(r['model_version']))}</td>"
        f"<td>{r['kind']}</td><td>{r['scored']}</td>"
        f"<td>{r['expected_churners']:.0f}</td><td>{r.get('observed_churners', '-')}</td>"
        f"<td>{num(r.get('auc'), 3)}</td><td>{num(r['expected_auc'], 3)}</td>"
        f"<td>{num((r.get('test_fold') or {}).get('auc'), 3)}</td>"
        f"<td>{_findings(r)}</td></tr>"
        for r in runs
    )
    table = (
        "<table><tr><th>as of</th><th>model</th><th>kind</th><th>scored</th>"
        "<th>churners expected</th><th>observed</th><th>AUC</th><th>expected AUC</th>"
        f"<th>test-fold AUC</th><th>findings</th></tr>{rows}</table>"
    )
    return [
        head,
        f"<p class='sub'>{len(runs)} past score run(s) of this data, judged against the data "
        f"up to {found.get('data_end')}: {len(realized)} with the label window closed "
        "(realized), the rest estimated from their own calibrated probabilities (CBPE). "
        "Each realized run is checked against the test fold of the model that scored it.</p>",
        verdict,
        img(monitor_figure(runs), "realized against expected performance; drift history", 1300),
        table,
    ]
