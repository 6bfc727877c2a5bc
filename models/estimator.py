"""The estimator factory: LightGBM with early stopping on the validation fold."""

from __future__ import annotations

import logging
from typing import Any

import lightgbm as lgb
import pandas as pd

log = logging.getLogger(__name__)

# params.yaml `train` keys that are not LightGBM constructor arguments.
FIT_ONLY = {"early_stopping_rounds", "calibration", "blend"}


def make_lgbm(params: dict[str, Any]) -> lgb.LGBMClassifier:
    """A LightGBM classifier from the `train` params (seed -> random_state)."""
    kwargs = {k: v for k, v in params.items() if k not in FIT_ONLY and k != "seed"}
    return lgb.LGBMClassifier(
        objective="binary",
        random_state=params.get("seed", 0),
        subsample_freq=1 if kwargs.get("subsample", 1.0) < 1.0 else 0,
        n_jobs=-1,
        verbose=-1,
        deterministic=True,
        force_row_wise=True,
        **kwargs,
    )


def fit_lgbm(
    params: dict[str, Any],
    x_train: pd.DataFrame,
    y_train: pd.Series,
    x_valid: pd.DataFrame,
    y_valid: pd.Series,
) -> lgb.LGBMClassifier:
    """Fit on the training fold, stopping early on the validation fold's log loss."""
    model = make_lgbm(params)
    model.fit(
        x_train,
        y_train,
        eval_X=(x_valid,),
        eval_y=(y_valid,),
        eval_metric="binary_logloss",
        callbacks=[lgb.early_stopping(params.get("early_stopping_rounds", 100), verbose=False)],
    )
    log.info("LightGBM stopped at %d trees", model.best_iteration_ or model.n_estimators)
    return model
