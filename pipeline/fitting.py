"""Fitting the churn model on a training frame's folds: LightGBM, an optional blend with
logistic regression, calibration on the validation fold, and the test fold's envelope."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from features.build import KEYS
from models.baselines import LogisticBaseline
from models.calibration import METHODS, Calibrator
from models.churn_model import ChurnModel
from models.estimator import fit_lgbm
from models.expected import envelope
from pipeline.config import with_defaults
from pipeline.errors import UserError
from pipeline.labels import LABEL
from pipeline.split import Folds

log = logging.getLogger(__name__)

log = logging.getLogger(__name__)


# Weights of LightGBM in a blend with logistic regression (train.blend), best on validation.
BLEND_WEIGHTS = tuple(np.round(np.linspace(0.0, 1.0, 21), 2))


def feature_columns(frame: pd.DataFrame) -> list[str]:
    """Every column of the training frame but the keys and the label."""
    return [c for c in frame.columns if c not in (*KEYS, LABEL)]


def fit(frame: pd.DataFrame, folds: Folds, train_params: dict[str, Any]):
    """Fit LightGBM on the training fold with early stopping on the validation fold."""
    fold = folds.fold_of(frame["cutoff"])
    features = feature_columns(frame)
    tr, va = frame[fold == "train"], frame[fold == "valid"]
    for name, part in (("training", tr), ("validation", va)):
        if part[LABEL].nunique() < 2:
            raise UserError(
                f"the {name} fold has no churners (or only churners): "
                "use a longer history or a longer label.horizon_days"
            )
    log.info(
        "training on %d rows (%d cutoffs), validating on %d rows",
        len(tr),
        len(folds.train),
        len(va),
    )
    return fit_lgbm(train_params, tr[features], tr[LABEL], va[features], va[LABEL])


def calibrate(method: str, raw: pd.Series, y: pd.Series) -> Calibrator:
    """A calibrator of the raw score fitted on the validation fold (never train or test rows)."""
    if method not in METHODS:
        raise UserError(
            f"train.calibration is {method!r}; use one of {', '.join(METHODS)} in params.yaml"
        )
    return Calibrator(method).fit(raw, y)


def blend_weight(
    y: np.ndarray, tree_raw: np.ndarray, linear_raw: np.ndarray, weights=BLEND_WEIGHTS
) -> float:
    """The weight w of w x tree + (1 - w) x linear log-odds with the best AUC on `y`
    (ties go to the larger w: no blend unless the linear model adds something)."""
    aucs = {float(w): roc_auc_score(y, w * tree_raw + (1 - w) * linear_raw) for w in weights}
    best = max(sorted(aucs, reverse=True), key=aucs.__getitem__)
    log.info(
        "blend weight of LightGBM %.2f: validation AUC %.4f (LightGBM alone %.4f, "
        "logistic regression alone %.4f)",
        best,
        aucs[best],
        roc_auc_score(y, tree_raw),
        roc_auc_score(y, linear_raw),
    )
    return best


def fit_model(
    frame: pd.DataFrame, folds: Folds, params: dict[str, Any], label: dict[str, Any]
) -> ChurnModel:
    """LightGBM on the training fold (early stopping on validation), with train.blend its
    blend with logistic regression (fitted on the training fold, weight chosen on validation
    AUC), calibrated on validation.

    Test rows are never read: they can change without changing the model.
    """
    estimator = fit(frame, folds, params["train"])
    features = feature_columns(frame)
    fold = folds.fold_of(frame["cutoff"])
    valid = frame[fold == "valid"]
    linear, weight = None, 1.0
    train_params = with_defaults("train", params["train"])
    if train_params["blend"]:
        train = frame[fold == "train"]
        linear = LogisticBaseline(features).fit(train, train[LABEL].to_numpy())
        tree_raw = ChurnModel(estimator, features, {}, {}).predict_raw(valid)
        weight = blend_weight(valid[LABEL].to_numpy(), tree_raw, linear.decision_function(valid))
        if weight == 1.0:
            linear = None
    blend = {"linear": linear, "blend_weight": weight}
    uncalibrated = ChurnModel(estimator, features, params["features"], label, **blend)
    calibrator = calibrate(
        train_params["calibration"],
        uncalibrated.predict_raw(valid),
        valid[LABEL].to_numpy(),
    )
    return ChurnModel(
        estimator, features, params["features"], label, calibrator=calibrator, **blend
    )


def fold_envelope(model: ChurnModel, test: pd.DataFrame) -> dict[str, Any] | None:
    """The model's test-fold envelope (models/expected.py): what its score runs should show
    while the world stays as it was; monitoring compares realized runs with it. The fitted
    model is not changed by the test rows: they are read after the fit. None without a test
    fold with both classes."""
    if len(test) == 0 or test[LABEL].nunique() < 2:
        log.warning("no test fold with churners and non-churners: monitoring has no envelope")
        return None
    return envelope(test[LABEL].to_numpy(), model.predict_proba(test), test["cutoff"].to_numpy())
