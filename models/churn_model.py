"""The model as MLflow stores it: features in, calibrated churn probability out."""

from __future__ import annotations

from typing import Any

import mlflow.pyfunc
import numpy as np
import pandas as pd


class ChurnModel(mlflow.pyfunc.PythonModel):
    """A fitted classifier, its calibrator, and the feature list and settings it was trained on.

    `predict_proba` (and MLflow's `predict`) return calibrated probabilities whenever a
    calibrator is attached; `predict_raw` returns the classifier's uncalibrated raw score.
    """

    def __init__(
        self,
        estimator: Any,
        features: list[str],
        feature_config: dict[str, Any],
        label: dict[str, Any],
        calibrator: Any | None = None,
    ) -> None:
        self.estimator = estimator
        self.features = list(features)
        self.feature_config = dict(feature_config)
        self.label = dict(label)
        self.calibrator = calibrator

    def _x(self, frame: pd.DataFrame) -> pd.DataFrame:
        return frame[self.features].astype("float64")

    def predict_raw(self, frame: pd.DataFrame) -> np.ndarray:
        """The classifier's uncalibrated raw score (LightGBM: log-odds) for each row."""
        return np.asarray(self.estimator.predict_proba(self._x(frame), raw_score=True), float)

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        """Calibrated churn probability for each row of `frame` (which holds every feature)."""
        # Models pickled before calibration existed have no `calibrator` attribute.
        calibrator = getattr(self, "calibrator", None)
        if calibrator is None:
            return self.estimator.predict_proba(self._x(frame))[:, 1]
        return calibrator.transform(self.predict_raw(frame))

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.Series:  # noqa: ARG002
        """MLflow's entry point: a Series of churn probabilities named p_churn."""
        return pd.Series(self.predict_proba(model_input), name="p_churn", index=model_input.index)
