"""Baselines the model must beat, each fitted on the training fold only and scored on test.

- `logistic_regression`: the model's features through median imputation (with missing
  indicators), standard scaling and an L2 logistic regression: a scikit-learn pipeline.
- `days_since_last_contact`: one signal, the days since the last contact of any kind (no
  contact on record counts as the longest silence), mapped to a churn probability by an
  isotonic fit on the training fold.
- `recency_frequency`: an RFM score, the sum of the quintiles of recency (days since the last
  order), frequency (orders in the recent and the prior window) and monetary value (order
  value over the long window), with the cut points learned on the training fold, mapped to the
  training fold's churn rate for each score.
- `bg_nbd`: the buy-till-you-die BG/NBD model (Fader, Hardie and Lee 2005), label-free: fitted
  at each cutoff on the order histories before it (frequency, recency, age), scoring the
  probability of no order in the label window (models/btyd.py).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.impute import SimpleImputer
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

log = logging.getLogger(__name__)

LAST_CONTACT = "days_since_last_contact"
RECENCY = "days_since_last_order"
FREQUENCY = ("orders_recent", "orders_prior")
MONETARY = "order_value_long"
# BG/NBD's sufficient statistics: order days (frequency + 1), age, and recency from them
BTYD = ("order_days_total", "days_since_first_order", "days_since_last_order")


def logistic_pipeline(seed: int = 0) -> Pipeline:
    """Median imputation with missing-value indicators, scaling, L2 logistic regression."""
    return make_pipeline(
        SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True),
        StandardScaler(),
        LogisticRegression(C=1.0, max_iter=2000, random_state=seed),
    )


@dataclass
class LogisticBaseline:
    """Logistic regression on the model's own features."""

    features: Sequence[str]
    seed: int = 0

    def fit(self, frame: pd.DataFrame, y: np.ndarray) -> LogisticBaseline:
        x = frame[list(self.features)].astype("float64")
        self.pipeline_ = logistic_pipeline(self.seed).fit(x, np.asarray(y, dtype=int))
        return self

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        """The churn probability of each row (none for no rows: scikit-learn refuses them)."""
        x = frame[list(self.features)].astype("float64")
        return self.pipeline_.predict_proba(x)[:, 1] if len(x) else np.empty(0)

    def decision_function(self, frame: pd.DataFrame) -> np.ndarray:
        """The log-odds of each row."""
        x = frame[list(self.features)].astype("float64")
        return self.pipeline_.decision_function(x) if len(x) else np.empty(0)

    def contributions(self, frame: pd.DataFrame) -> tuple[np.ndarray, float]:
        """Each feature's exact contribution to the log-odds, and the bias (intercept).

        A column's contribution is coefficient x (scaled value - its training mean, 0 after
        scaling); a missing-value indicator's is added to its feature's. Each row of the
        contributions adds up with the bias to `decision_function`. Shape (rows, features).
        """
        imputer, scaler, lr = (self.pipeline_[i] for i in range(3))
        x = frame[list(self.features)].astype("float64")
        n = len(self.features)
        if not len(x):
            return np.empty((0, n)), float(lr.intercept_[0])
        z = (imputer.transform(x) - scaler.mean_) / scaler.scale_
        terms = z * lr.coef_[0]
        out = terms[:, :n].copy()
        if imputer.indicator_ is not None:
            # indicator columns follow the features, one for each feature missing in training
            for k, j in enumerate(imputer.indicator_.features_):
                out[:, j] += terms[:, n + k]
        return out, float(lr.intercept_[0])


@dataclass
class LastContactRule:
    """The longer since the last contact, the higher the risk (an isotonic map to a rate)."""

    column: str = LAST_CONTACT

    def _signal(self, frame: pd.DataFrame) -> np.ndarray:
        x = frame[self.column].astype("float64").to_numpy()
        # No contact on record is the longest silence there is, not an unknown to skip.
        return np.where(np.isnan(x), self.longest_, x)

    def fit(self, frame: pd.DataFrame, y: np.ndarray) -> LastContactRule:
        x = frame[self.column].astype("float64")
        self.longest_ = float(np.nanmax(x)) + 1.0 if x.notna().any() else 0.0
        self.iso_ = IsotonicRegression(increasing=True, out_of_bounds="clip")
        self.iso_.fit(self._signal(frame), np.asarray(y, dtype=float))
        return self

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        return self.iso_.predict(self._signal(frame))


@dataclass
class RecencyFrequency:
    """An RFM score (quintiles of recency, frequency, monetary value) mapped to a churn rate."""

    recency: str = RECENCY
    frequency: tuple[str, ...] = FREQUENCY
    monetary: str = MONETARY
    quantiles: int = 5

    def _parts(self, frame: pd.DataFrame) -> dict[str, np.ndarray]:
        # Oriented so that a higher value means a higher risk; an unknown is the riskiest.
        recency = frame[self.recency].astype("float64").to_numpy()
        freq = frame[list(self.frequency)].astype("float64").fillna(0.0).sum(axis=1).to_numpy()
        money = frame[self.monetary].astype("float64").fillna(0.0).to_numpy()
        return {
            "recency": np.where(np.isnan(recency), np.inf, recency),
            "frequency": -freq,
            "monetary": -money,
        }

    def _score(self, frame: pd.DataFrame) -> np.ndarray:
        parts = self._parts(frame)
        return sum(np.searchsorted(self.edges_[k], v, side="right") for k, v in parts.items())

    def fit(self, frame: pd.DataFrame, y: np.ndarray) -> RecencyFrequency:
        qs = np.linspace(0, 1, self.quantiles + 1)[1:-1]
        self.edges_ = {
            k: np.unique(np.quantile(v[np.isfinite(v)], qs)) if np.isfinite(v).any() else qs
            for k, v in self._parts(frame).items()
        }
        y = np.asarray(y, dtype=float)
        score = self._score(frame)
        # Churn rate by score, shrunk toward the overall rate (a score seen on few rows).
        prior, weight = y.mean(), 20.0
        self.rate_ = {
            int(s): float((y[score == s].sum() + prior * weight) / ((score == s).sum() + weight))
            for s in np.unique(score)
        }
        self.prior_ = float(prior)
        return self

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        score = self._score(frame)
        return np.array([self.rate_.get(int(s), self.prior_) for s in score])


def baselines(
    features: Sequence[str], seed: int = 0, lead_days: int = 0, horizon_days: int = 90
) -> dict[str, Callable[[], object]]:
    """The baselines these features allow (name -> factory); a baseline whose signal is
    missing (a table absent, a feature group left out) is left out with a log line.
    `lead_days`, `horizon_days`: the label window, for the label-free bg_nbd."""
    have = set(features)
    out: dict[str, Callable[[], object]] = {
        "logistic_regression": lambda: LogisticBaseline(list(features), seed)
    }
    if LAST_CONTACT in have:
        out["days_since_last_contact"] = LastContactRule
    else:
        log.warning("baseline days_since_last_contact left out: no %s feature", LAST_CONTACT)
    needed = {RECENCY, MONETARY, *FREQUENCY}
    if needed <= have:
        out["recency_frequency"] = RecencyFrequency
    else:
        log.warning(
            "baseline recency_frequency left out: missing %s", ", ".join(sorted(needed - have))
        )
    if set(BTYD) <= have:
        from models.btyd import BGNBDBaseline

        out["bg_nbd"] = lambda: BGNBDBaseline(lead_days, horizon_days)
    else:
        log.warning("baseline bg_nbd left out: missing %s", ", ".join(sorted(set(BTYD) - have)))
    return out


def fit_baselines(
    train: pd.DataFrame,
    y_train: np.ndarray,
    features: Sequence[str],
    seed: int = 0,
    lead_days: int = 0,
    horizon_days: int = 90,
) -> dict[str, object]:
    """Every available baseline fitted on the training fold (bg_nbd reads no labels: it is
    fitted on the order histories before each cutoff of the rows it scores)."""
    made = baselines(features, seed, lead_days, horizon_days)
    return {name: make().fit(train, y_train) for name, make in made.items()}
