"""Splits by time with purge gaps, metrics against hand-computed values, risk tiers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.metrics import binary_metrics, calibration_bins, lift_at
from pipeline.errors import UserError
from pipeline.split import split_cutoffs
from pipeline.tiers import risk_tier


def test_split_is_by_time_with_purge_gaps():
    cutoffs = list(pd.date_range("2023-01-02", periods=20, freq="28D"))
    folds = split_cutoffs(cutoffs, test_cutoffs=3, valid_cutoffs=2, window_days=90)
    assert folds.test == cutoffs[-3:]
    gap = pd.Timedelta(days=90)
    assert max(folds.valid) + gap <= min(folds.test)
    assert max(folds.train) + gap <= min(folds.valid)
    # the gaps are as small as they can be: the next cutoff would overlap
    assert cutoffs[cutoffs.index(max(folds.valid)) + 1] + gap > min(folds.test)
    assert cutoffs[cutoffs.index(max(folds.train)) + 1] + gap > min(folds.valid)
    assert not set(folds.train) & set(folds.valid) | set(folds.valid) & set(folds.test)


def test_split_refuses_too_short_a_history():
    cutoffs = list(pd.date_range("2023-01-02", periods=6, freq="28D"))
    with pytest.raises(UserError, match="too few"):
        split_cutoffs(cutoffs, 3, 3, 90)


def test_lift_by_hand():
    y = np.array([1, 0, 0, 0, 1, 0, 0, 0, 0, 0])
    p = np.array([0.9, 0.8, 0.1, 0.1, 0.2, 0.1, 0.1, 0.1, 0.1, 0.1])
    assert lift_at(y, p, 0.1) == pytest.approx(1.0 / 0.2)  # top 1 row is a churner
    assert lift_at(y, p, 0.2) == pytest.approx(0.5 / 0.2)


def test_binary_metrics_by_hand():
    y = np.array([0, 0, 1, 1])
    p = np.array([0.1, 0.4, 0.35, 0.8])
    m = binary_metrics(y, p)
    assert m["auc"] == pytest.approx(0.75)  # 3 of the 4 (churner, stayer) pairs ordered right
    assert m["brier"] == pytest.approx((0.01 + 0.16 + 0.4225 + 0.04) / 4)
    assert m["n"] == 4 and m["churn_rate"] == 0.5


def test_calibration_bins_are_deciles_with_the_top_split_to_reach_the_highest_scores():
    rng = np.random.default_rng(0)
    p = rng.uniform(size=1000)
    bins = calibration_bins(rng.binomial(1, p), p, bins=10)
    assert bins["n"].tolist() == [100] * 9 + [50, 40, 10]  # top 10%: 5%, 4%, the top 1%
    assert np.allclose(bins["predicted"], bins["observed"], atol=0.15)
    assert bins["predicted"].iloc[-1] == pytest.approx(np.sort(p)[-10:].mean(), abs=1e-5)


def test_risk_tiers():
    p = pd.Series([0.5, 0.25, 0.1, 0.05, np.nan])
    tiers = risk_tier(p, {"high": 0.25, "medium": 0.10, "low": 0.0})
    assert tiers.tolist()[:4] == ["high", "high", "medium", "low"] and pd.isna(tiers.iloc[4])
