"""Probability calibration of the model's raw score, fitted on the validation fold only."""

from __future__ import annotations

import numpy as np
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression

METHODS = ("isotonic", "platt")


class Calibrator:
    """Maps the raw score (log-odds) of a classifier to a calibrated churn probability.

    `platt` fits a logistic curve of a + b * score (it keeps the ranking, so AUC is unchanged);
    `isotonic` fits a non-decreasing curve, linear between its fitted points (flat stretches
    tie scores, which can cost a little AUC). This module imports nothing from `pipeline`: it
    travels with the MLflow model (code_paths), where only `models` is shipped.
    """

    def __init__(self, method: str = "platt") -> None:
        self.method = method

    def fit(self, raw: np.ndarray, y: np.ndarray) -> Calibrator:
        """Fit on raw scores and 0/1 labels (the validation fold: never training or test rows)."""
        if self.method not in METHODS:
            raise ValueError(
                f"calibration method {self.method!r} is not one of {', '.join(METHODS)} "
                "(params.yaml train.calibration)"
            )
        raw = np.asarray(raw, dtype="float64").reshape(-1)
        y = np.asarray(y, dtype=int).reshape(-1)
        if len(raw) != len(y) or len(np.unique(y)) < 2:
            raise ValueError("calibration needs churners and non-churners in the validation fold")
        if self.method == "platt":
            # Nearly unpenalised: two parameters on thousands of rows need no shrinkage.
            lr = LogisticRegression(C=1e6, max_iter=1000)
            lr.fit(raw.reshape(-1, 1), y)
            self.coef_ = float(lr.coef_[0, 0])
            self.intercept_ = float(lr.intercept_[0])
        else:
            iso = IsotonicRegression(out_of_bounds="clip", y_min=1e-4, y_max=1 - 1e-4)
            iso.fit(raw, y)
            self.x_ = np.asarray(iso.X_thresholds_, dtype="float64")
            self.y_ = np.asarray(iso.y_thresholds_, dtype="float64")
        self.n_ = int(len(y))
        return self

    def transform(self, raw: np.ndarray) -> np.ndarray:
        """Calibrated probabilities for raw scores."""
        raw = np.asarray(raw, dtype="float64").reshape(-1)
        if self.method == "platt":
            return 1.0 / (1.0 + np.exp(-(self.intercept_ + self.coef_ * raw)))
        return np.interp(raw, self.x_, self.y_)

    def describe(self) -> dict[str, float | str | int]:
        """What was fitted, for logs and MLflow."""
        out: dict[str, float | str | int] = {"method": self.method, "rows": self.n_}
        if self.method == "platt":
            out |= {"intercept": self.intercept_, "slope": self.coef_}
        else:
            out |= {"steps": int(len(self.x_))}
        return out
