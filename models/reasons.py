"""Reasons for a churn score, from the model itself: TreeSHAP contributions summed by group.

LightGBM's `pred_contrib` gives, for every row, each feature's contribution to the model's raw
score (log-odds), exact TreeSHAP values that add up with a bias term to the raw score. A model
that blends LightGBM with logistic regression (weight w) gets w x TreeSHAP + (1 - w) x the
regression's exact linear contributions, which add up to the blended raw score the same way. The
contributions are summed within the feature groups of the catalog (silence, dependency,
trust, promises, engagement); the groups that raise the risk, largest first, are the reasons.
Each reason is worded from the catalog (description, unit) with the feature of the group that
raised the risk most, the account's own value and a typical value, for example
"days since the last interaction of any kind, by either side: 143 days (typical: 21)".

Public entry points: `reasons(model, frame)` (the reason columns of a score file),
`contributions(model, frame)` and `group_contributions(contrib)` (numbers for charts and
reports), `raw_score(model, frame)`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from features.catalog import CATALOG, GROUPS
from features.language import Feature

OTHER = "other"  # group of a model feature the catalog does not know
BIAS = "bias"
CHUNK_ROWS = 20_000


def churn_model(model: Any) -> Any:
    """The ChurnModel inside a LoadedModel (or the ChurnModel itself)."""
    return model.churn_model if hasattr(model, "churn_model") else model


def _matrix(model: Any, frame: pd.DataFrame) -> pd.DataFrame:
    return frame[churn_model(model).features].astype("float64")


def raw_score(model: Any, frame: pd.DataFrame) -> np.ndarray:
    """The model's uncalibrated raw score (log-odds) for each row of `frame`."""
    cm = churn_model(model)
    if hasattr(cm, "predict_raw"):
        return np.asarray(cm.predict_raw(frame), dtype="float64")
    return np.asarray(cm.estimator.predict_proba(_matrix(cm, frame), raw_score=True))


_explainers: dict[int, tuple[Any, Any, Any]] = {}


def _explainer(estimator: Any) -> tuple[Any, Any] | None:
    """The flattened trees and lookup tables of a LightGBM model (None: not supported)."""
    from models import treeshap

    key = id(estimator)
    if key not in _explainers:
        booster = estimator.booster_
        if treeshap.supported(booster):
            trees = treeshap.forest(booster, getattr(estimator, "best_iteration_", None))
            _explainers.clear()  # one model at a time
            _explainers[key] = (estimator, trees, treeshap.lookup_tables(trees))
        else:
            _explainers[key] = (estimator, None, None)
    _, trees, tables = _explainers[key]
    return None if trees is None else (trees, tables)


def contributions(
    model: Any,
    frame: pd.DataFrame,
    progress: Callable[[int], None] | None = None,
    chunk_rows: int = CHUNK_ROWS,
    method: str = "auto",
) -> pd.DataFrame:
    """Per-row TreeSHAP contribution of each model feature to the raw score, plus `bias`.

    Rows of the result add up to `raw_score(model, frame)`, a blend's too (then each value is
    w x TreeSHAP + (1 - w) x the linear contribution). `method`: "auto" uses the compiled
    exact TreeSHAP of models/treeshap.py (the same values as LightGBM's, several times faster)
    where the model allows, else LightGBM's `pred_contrib` ("lightgbm").
    `progress(n)` is called after each chunk of n rows.
    """
    from models import treeshap

    cm = churn_model(model)
    x = _matrix(cm, frame)
    fast = _explainer(cm.estimator) if method == "auto" and len(x) else None
    parts = []
    for start in range(0, len(x), chunk_rows):
        part = x.iloc[start : start + chunk_rows]
        if fast is not None:
            parts.append(treeshap.shap_values(fast[0], part.to_numpy(), fast[1]))
        else:
            parts.append(np.asarray(cm.estimator.predict_proba(part, pred_contrib=True)))
        if progress is not None:
            progress(len(part))
    values = np.vstack(parts) if parts else np.empty((0, len(cm.features) + 1))
    w, linear = cm.blend() if hasattr(cm, "blend") else (1.0, None)
    if linear is not None:
        # A blend: w x TreeSHAP + (1 - w) x the linear model's exact contributions.
        lin, intercept = linear.contributions(frame)
        values = w * values + (1.0 - w) * np.column_stack([lin, np.full(len(lin), intercept)])
    return pd.DataFrame(values, index=frame.index, columns=[*cm.features, BIAS])


def feature_groups(features: Sequence[str]) -> dict[str, str]:
    """The catalog group of each feature (`other` for a feature the catalog does not know)."""
    known = {f.name: f.group for f in CATALOG}
    return {name: known.get(name, OTHER) for name in features}


def group_contributions(contrib: pd.DataFrame) -> pd.DataFrame:
    """Contributions summed within feature groups (catalog order), one column per group."""
    features = [c for c in contrib.columns if c != BIAS]
    groups = feature_groups(features)
    order = [g for g in (*GROUPS, OTHER) if g in groups.values()]
    return pd.DataFrame(
        {g: contrib[[f for f in features if groups[f] == g]].sum(axis=1) for g in order},
        index=contrib.index,
    )


# --- wording, from the catalog ---------------------------------------------------------------

_TREND = re.compile(
    r"log\(\(recent ?(?P<a>[^+]*?) ?\+ 1\) / \(prior[^)]*\)\)(?: of (?P<b>[^:;.]+))?"
)


def _label(feature: Feature, windows: Mapping[str, Any]) -> str:
    """The catalog's description of `feature` as a short phrase, windows in days."""
    recent, long = windows.get("recent_days", 90), windows.get("long_days", 365)
    text = feature.description
    trend = _TREND.match(text)
    if feature.unit == "log ratio":
        noun = (trend.group("b") or trend.group("a")) if trend else feature.name.replace("_", " ")
        return f"{noun.strip()} in the last {recent} days vs the {recent} days before"
    text = re.split(r"[;:] ", text)[0].rstrip(".")
    text = re.sub(r"\s*\((features|accounts)\.[a-z_]+\)", "", text)
    for old, new in (
        ("the window before the recent one", f"the {recent} days before that"),
        ("the window before", f"the {recent} days before"),
        (" (same length)", ""),
        ("the recent window", f"the last {recent} days"),
        ("the long window", f"the last {long} days"),
        ("at the cutoff", "now"),
        ("by the cutoff", "so far"),
        ("before the cutoff", "so far"),
    ):
        text = text.replace(old, new)
    if feature.unit == "flag":
        text = re.sub(r"^1 when ", "", text)
    return text[0].lower() + text[1:] if text[:2] != text[:2].upper() else text


def _fmt(unit: str, value: float, own: bool) -> str:
    """A value in the feature's unit; the account's own value carries the unit word."""
    if value is None or not np.isfinite(value):
        return "none on record" if own else "none"
    if unit == "flag":
        return "yes" if value >= 0.5 else "no"
    if unit == "share":
        return f"{value:.0%}"
    if unit == "log ratio":
        text = f"{np.expm1(value):+.0%}"
        return "0%" if text in ("+0%", "-0%") else text
    if unit == "ratio":
        return f"{value:.2f}"
    if unit == "currency":
        return f"{value:,.0f}"
    number = (
        f"{value:,.0f}"
        if abs(value - round(value)) < 0.05 or abs(value) >= 10
        else (f"{value:,.1f}")
    )
    if own and unit in ("days", "minutes"):
        return f"{number} {unit}" if number != "1" else f"1 {unit[:-1]}"
    return number


def phrase(
    feature: str, value: float, typical: float | None, windows: Mapping[str, Any] | None = None
) -> str:
    """One reason in words: '<what> : <own value> (typical: <typical value>)'."""
    known = {f.name: f for f in CATALOG}
    spec = known.get(feature)
    windows = windows or {}
    if spec is None:
        return f"{feature.replace('_', ' ')}: {value:.3g}" + (
            f" (typical: {typical:.3g})" if typical is not None else ""
        )
    text = f"{_label(spec, windows)}: {_fmt(spec.unit, value, own=True)}"
    if typical is not None:
        text += f" (typical: {_fmt(spec.unit, typical, own=False)})"
    return text


def _compare(unit: str, direction: str, x: np.ndarray, typical: float | None) -> np.ndarray:
    """Where the values `x` of a feature differ from its typical value on the side that raises
    the risk (the catalog's `direction`: higher, lower or either), as quoted: a value that
    reads as the typical one ("1 (typical: 1)") is no reason. A missing value differs from a
    known typical one ("none on record"); without a typical value every value may be quoted."""
    if typical is None or not np.isfinite(typical):
        return np.ones(len(x), dtype=bool)
    shown = _fmt(unit, typical, own=False)
    scale = np.expm1 if unit == "log ratio" else (lambda v: v)
    with np.errstate(invalid="ignore", over="ignore"):
        side = {"higher": x > typical, "lower": x < typical}.get(direction, x != typical)
        # only values this close to the typical one can read the same: format just those
        near = side & (np.abs(scale(x) - scale(typical)) <= 1.0 + 0.01 * abs(scale(typical)))
    for i in np.flatnonzero(near):
        side[i] = _fmt(unit, x[i], own=False) != shown
    return np.isnan(x) | side


def risk_side(features: Sequence[str], x: np.ndarray, typical: Mapping[str, float]) -> np.ndarray:
    """For each row of `x` (columns: `features`) and feature, whether the value may be quoted
    as a reason: it differs from the typical value in the direction that raises the risk."""
    known = {f.name: f for f in CATALOG}
    out = np.ones(x.shape, dtype=bool)
    for i, name in enumerate(features):
        spec = known.get(name)
        unit, direction = (spec.unit, spec.direction) if spec else ("", "either")
        out[:, i] = _compare(unit, direction, x[:, i], typical.get(name))
    return out


def reasons(
    model: Any,
    frame: pd.DataFrame,
    top: int = 3,
    typical: Mapping[str, float] | None = None,
    contrib: pd.DataFrame | None = None,
    min_contribution: float = 0.01,
) -> pd.DataFrame:
    """The top reasons (groups that raise the risk) for each row of `frame`, in words.

    Columns: `reason_1..top` (empty where fewer groups raise the risk), `reason_groups`
    (the groups, largest first, joined by '; '), `lead_group` and `lead_feature` (the feature
    the first reason quotes, for a playbook keyed by feature). A group is a reason when its
    features' contributions add up to more than `min_contribution` (log-odds) and one of them
    both raises the risk and differs from its typical value on the side that raises it (the
    catalog's direction, `risk_side`): the reason quotes the largest such one. `typical` maps
    a feature to the value quoted for comparison (the reference medians); without it, the
    medians of `frame`. Ties are broken by catalog order, so the same inputs give the same
    reasons. Pass `contrib` (from `contributions`) to reuse computed contributions.
    """
    cm = churn_model(model)
    if contrib is None:
        contrib = contributions(cm, frame)
    if typical is None:
        typical = frame[cm.features].median(numeric_only=True).dropna().to_dict()
    windows = getattr(cm, "feature_config", {}) or {}
    features = [c for c in contrib.columns if c != BIAS]
    groups = feature_groups(features)
    order = [g for g in (*GROUPS, OTHER) if g in groups.values()]
    values = contrib[features].to_numpy(dtype="float64")
    x = frame[features].to_numpy(dtype="float64", na_value=np.nan)
    n = len(frame)
    # only a feature that raises the risk, on the risk side of its typical value, is quoted
    quotable = np.where(risk_side(features, x, typical) & (values > 0), values, -np.inf)

    sums = np.zeros((n, len(order)))
    lead_feature = np.zeros((n, len(order)), dtype=int)
    for gi, g in enumerate(order):
        cols = np.array([i for i, f in enumerate(features) if groups[f] == g])
        sums[:, gi] = values[:, cols].sum(axis=1)
        part = quotable[:, cols]
        lead_feature[:, gi] = cols[np.argmax(part, axis=1)] if n else 0
        sums[~np.isfinite(part.max(axis=1, initial=-np.inf)), gi] = -np.inf
    ranked = np.argsort(-sums, axis=1, kind="stable")[:, :top]
    rows = np.arange(n)

    out = pd.DataFrame(index=frame.index)
    names = np.array(order, dtype=object)
    chosen_groups, chosen_features = [], []
    for k in range(top):
        if k >= len(order):  # fewer groups than reasons: empty, as where no group raises it
            out[f"reason_{k + 1}"] = np.full(n, None, dtype=object)
            continue
        gk = ranked[:, k]
        raises = sums[rows, gk] > min_contribution
        fk = lead_feature[rows, gk]
        texts = np.full(n, None, dtype=object)
        for fi in np.unique(fk[raises]):
            hit = raises & (fk == fi)
            name = features[fi]
            texts[hit] = [phrase(name, v, typical.get(name), windows) for v in x[hit, fi]]
        out[f"reason_{k + 1}"] = texts
        chosen_groups.append(np.where(raises, names[gk], None))
        chosen_features.append(np.where(raises, np.array(features, dtype=object)[fk], None))
    listed = np.array(chosen_groups, dtype=object).T if chosen_groups else np.empty((n, 0))
    out["reason_groups"] = ["; ".join(g for g in row if g) or None for row in listed]
    out["lead_group"] = listed[:, 0] if listed.shape[1] else None
    out["lead_feature"] = chosen_features[0] if chosen_features else None
    return out
