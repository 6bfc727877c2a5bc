"""The model as MLflow stores it: features in, calibrated churn probability out."""

from __future__ import annotations

from typing import Any

import mlflow.pyfunc
import numpy as np
import pandas as pd


class ChurnModel(mlflow.pyfunc.PythonModel):
    """A fitted classifier with the feature list and feature settings it was trained on."""

    def __init__(
        self,
        estimator: Any,
        features: list[str],
        feature_config: dict[str, Any],
        label: dict[str, Any],
    ) -> None:
        self.estimator = estimator
        self.features = list(features)
        self.feature_config = dict(feature_config)
        self.label = dict(label)

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        """Churn probability for each row of `frame` (which must hold every model feature)."""
        x = frame[self.features].astype("float64")
        return self.estimator.predict_proba(x)[:, 1]

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.Series:  # noqa: ARG002
        """MLflow's entry point: a Series of churn probabilities named p_churn."""
        return pd.Series(self.predict_proba(model_input), name="p_churn", index=model_input.index)
