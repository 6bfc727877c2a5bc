"""Evaluation figures (matplotlib, headless): one function per panel, PNG files for DVC/MLflow."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402

from pipeline.io import atomic_file  # noqa: E402

MODEL_COLOR = "#1f5fa8"
ORACLE_COLOR = "black"
BASELINE_COLORS = ("#d9822b", "#3a9e5c", "#9b59b6", "#8c564b")


def _curves(
    model: pd.DataFrame,
    others: Mapping[str, pd.DataFrame],
    oracle: pd.DataFrame | None,
    ax: Axes,
    x: str,
    y: str,
    labels: Mapping[str, str],
) -> None:
    for (name, curve), color in zip(others.items(), BASELINE_COLORS, strict=False):
        ax.plot(curve[x], curve[y], c=color, lw=1, alpha=0.85, label=labels.get(name, name))
    if oracle is not None:
        ax.plot(oracle[x], oracle[y], c=ORACLE_COLOR, lw=1, ls=":", label=labels["oracle"])
    ax.plot(model[x], model[y], c=MODEL_COLOR, lw=2, label=labels["model"])


def roc_panel(ax: Axes, curves: dict, labels: Mapping[str, str]) -> None:
    """ROC of the model, its baselines and the oracle."""
    _curves(curves["model"], curves["baselines"], curves.get("oracle"), ax, "fpr", "tpr", labels)
    ax.plot([0, 1], [0, 1], ls="--", c="grey", lw=0.8)
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC")
    ax.legend(loc="lower right", fontsize=7)


def pr_panel(ax: Axes, curves: dict, labels: Mapping[str, str], base_rate: float) -> None:
    """Precision against recall of the model, its baselines and the oracle."""
    _curves(
        curves["model"],
        curves["baselines"],
        curves.get("oracle"),
        ax,
        "recall",
        "precision",
        labels,
    )
    ax.axhline(base_rate, ls="--", c="grey", lw=0.8)
    ax.set(xlabel="recall", ylabel="precision", title="Precision-recall", ylim=(0, 1))
    ax.legend(loc="upper right", fontsize=7)


def calibration_panel(ax: Axes, calib: pd.DataFrame, raw: pd.DataFrame | None, ece: float) -> None:
    """Reliability plot: observed churn rate against mean predicted probability per bin."""
    top = max(calib["predicted"].max(), calib["observed"].max()) * 1.1
    if raw is not None:
        top = max(top, raw["predicted"].max() * 1.1, raw["observed"].max() * 1.1)
        ax.plot(raw["predicted"], raw["observed"], marker="s", ms=3, c="grey", lw=1,
                label="uncalibrated raw score")  # fmt: skip
    ax.plot(calib["predicted"], calib["observed"], marker="o", c=MODEL_COLOR, lw=2,
            label=f"calibrated model (ECE {ece:.4f})")  # fmt: skip
    ax.plot([0, top], [0, top], ls="--", c="grey", lw=0.8)
    ax.set(
        xlabel="mean predicted churn probability",
        ylabel="observed churn rate",
        title="Reliability (deciles; top 10% split at 5% and 1%)",
        xlim=(0, top),
        ylim=(0, top),
    )
    ax.legend(loc="upper left", fontsize=7)


def gains_panel(ax: Axes, curves: dict, labels: Mapping[str, str]) -> None:
    """Cumulative gains: share of churners found against the share of accounts contacted."""
    _curves(
        curves["model"],
        curves["baselines"],
        curves.get("oracle"),
        ax,
        "contacted",
        "churners_found",
        labels,
    )
    ax.plot([0, 1], [0, 1], ls="--", c="grey", lw=0.8)
    ax.set(xlabel="share of accounts contacted", ylabel="share of churners found",
           title="Cumulative gains")  # fmt: skip
    ax.legend(loc="lower right", fontsize=7)


def campaign_panel(
    ax: Axes, curve: pd.DataFrame, best: float | None = None, policy: float | None = None
) -> None:
    """Expected campaign value against contact depth, with the best and the policy depth; or,
    for an unpriced campaign (no `value` column), churners reached, precision and lift."""
    if "value" not in curve.columns or best is None or policy is None:
        depth_panel(ax, curve)
        return
    ax.plot(curve["depth"], curve["value"], c=MODEL_COLOR, lw=2)
    ax.axhline(0, c="grey", lw=0.8)
    ax.axvline(best, c="green", ls="--", lw=1, label=f"best depth {best:.1%}")
    ax.axvline(policy, c="orange", ls=":", lw=1, label=f"p x success x value > cost: {policy:.1%}")
    ax.set(xlabel="share of accounts contacted (highest risk first)",
           ylabel="expected value", title="Retention campaign value")  # fmt: skip
    ax.legend(loc="upper right", fontsize=7)


def depth_panel(ax: Axes, curve: pd.DataFrame) -> None:
    """Share of churners reached and precision (left axis), lift (right) by contact depth."""
    ax.plot(curve["depth"], curve["recall"], c=MODEL_COLOR, lw=2, label="churners reached (recall)")
    ax.plot(curve["depth"], curve["precision"], c=BASELINE_COLORS[0], lw=1.5,
            label="precision (churn rate of those contacted)")  # fmt: skip
    ax.set(xlabel="share of accounts contacted (highest risk first)", xlim=(0, 1), ylim=(0, 1),
           ylabel="share", title="Contact depth: who a campaign reaches")  # fmt: skip
    right = ax.twinx()
    right.plot(curve["depth"], curve["lift"], c=BASELINE_COLORS[1], lw=1.2, ls="--",
               label="lift (right axis)")  # fmt: skip
    right.axhline(1, c="grey", lw=0.8, ls=":", label="lift 1: no better than chance")
    right.set(ylabel="lift over the overall churn rate", ylim=(0, None))
    handles, labels = ax.get_legend_handles_labels()
    more, more_labels = right.get_legend_handles_labels()
    ax.legend(handles + more, labels + more_labels, loc="center right", fontsize=7)


def risk_panel(ax: Axes, p: np.ndarray, y: np.ndarray) -> None:
    """Distribution of the predicted churn probability, churners and the rest."""
    p, y = np.asarray(p, float), np.asarray(y, int)
    bins = np.linspace(0, max(float(p.max()), 0.05), 40)
    ax.hist(p[y == 0], bins=bins, color="#9fb7d5", label="stayed")
    ax.hist(p[y == 1], bins=bins, color="#c0392b", alpha=0.8, label="churned")
    ax.set(xlabel="predicted churn probability", ylabel="accounts", yscale="log",
           title="Risk distribution (test fold)")  # fmt: skip
    ax.legend(fontsize=7)


def save(draw: Callable[[Axes], None], out: Path, size: tuple[float, float] = (5.5, 4.5)) -> None:
    """Draw one panel into a PNG file, atomically."""
    fig, ax = plt.subplots(figsize=size)
    draw(ax)
    fig.tight_layout()
    with atomic_file(out) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)


def save_grid(draws: list[Callable[[Axes], None]], out: Path, cols: int = 3) -> None:
    """Several panels side by side in one PNG, atomically."""
    rows = -(-len(draws) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5.2 * cols, 4.3 * rows))
    for ax, draw in zip(np.ravel(axes), draws, strict=False):
        draw(ax)
    for ax in np.ravel(axes)[len(draws) :]:
        ax.axis("off")
    fig.tight_layout()
    with atomic_file(out) as tmp:
        fig.savefig(tmp, format="png", dpi=90)
    plt.close(fig)


def bar_panel(ax: Axes, values: pd.Series, title: str, xlabel: str) -> None:
    """Horizontal bars, largest on top."""
    values = values.sort_values()
    ax.barh(values.index.astype(str), values.to_numpy(), color=MODEL_COLOR)
    ax.set(title=title, xlabel=xlabel)


DEPTHS = (5, 10, 20)  # contact depths (%) quoted on the console without a priced campaign


LABELS = {
    "model": "model (calibrated LightGBM)",
    "oracle": "oracle: the simulator's true probability",
    "logistic_regression": "logistic regression",
    "days_since_last_contact": "rule: days since last contact",
    "recency_frequency": "recency-frequency-monetary score",
    "bg_nbd": "BG/NBD: P(no order in the label window)",
}


def model_label(model: dict[str, Any]) -> str:
    """The model's name in plots and reports (`model` section of metrics.json)."""
    w = float(model.get("blend_weight", 1.0))
    if w >= 1.0:
        return LABELS["model"]
    return f"model (calibrated {w:.2f} LightGBM + {1 - w:.2f} logistic regression)"
