"""The model as MLflow stores it: features in, calibrated churn probability out."""

from __future__ import annotations

from typing import Any

import mlflow.pyfunc
import numpy as np
import pandas as pd


class ChurnModel(mlflow.pyfunc.PythonModel):
    """A fitted classifier, its calibrator, and the feature list and settings it was trained on.

    `predict_proba` (and MLflow's `predict`) return calibrated probabilities whenever a
    calibrator is attached; `predict_raw` returns the uncalibrated raw score: the classifier's
    log-odds, or with a `linear` model (models/baselines.py `LogisticBaseline`) the blend
    blend_weight x (LightGBM log-odds) + (1 - blend_weight) x (its log-odds).
    """

    def __init__(
        self,
        estimator: Any,
        features: list[str],
        feature_config: dict[str, Any],
        label: dict[str, Any],
        calibrator: Any | None = None,
        linear: Any | None = None,
        blend_weight: float = 1.0,
        envelope: dict[str, Any] | None = None,
    ) -> None:
        self.estimator = estimator
        self.features = list(features)
        self.feature_config = dict(feature_config)
        self.label = dict(label)
        self.calibrator = calibrator
        self.linear = linear
        self.blend_weight = float(blend_weight)
        # What a score run should show while the world stays as in the test fold
        # (models/expected.py `envelope`); set by training after the fit, read by monitoring.
        self.envelope = envelope

    def _x(self, frame: pd.DataFrame) -> pd.DataFrame:
        return frame[self.features].astype("float64")

    def blend(self) -> tuple[float, Any | None]:
        """(weight of LightGBM, linear model or None): (1.0, None) without a blend."""
        # Models pickled before blends existed have neither attribute.
        linear = getattr(self, "linear", None)
        return (1.0, None) if linear is None else (getattr(self, "blend_weight", 1.0), linear)

    def predict_raw(self, frame: pd.DataFrame) -> np.ndarray:
        """The uncalibrated raw score (log-odds) for each row: LightGBM's, or the blend's.
        Shape (rows,); no rows give an empty array (LightGBM and scikit-learn refuse them)."""
        if not len(frame):
            return np.empty(0)
        raw = np.asarray(self.estimator.predict_proba(self._x(frame), raw_score=True), float)
        w, linear = self.blend()
        if linear is None:
            return raw
        return w * raw + (1.0 - w) * linear.decision_function(frame)

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        """Calibrated churn probability for each row of `frame` (which holds every feature)."""
        # Models pickled before calibration existed have no `calibrator` attribute.
        calibrator = getattr(self, "calibrator", None)
        if calibrator is None:
            return 1.0 / (1.0 + np.exp(-self.predict_raw(frame)))
        return calibrator.transform(self.predict_raw(frame))

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.Series:  # noqa: ARG002
        """MLflow's entry point: a Series of churn probabilities named p_churn."""
        return pd.Series(self.predict_proba(model_input), name="p_churn", index=model_input.index)
