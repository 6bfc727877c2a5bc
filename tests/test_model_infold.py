"""Nothing is learned from test rows: the model, its calibrator and the baselines are fitted on
the training and validation folds, so changing every test row changes none of them."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.baselines import LastContactRule, LogisticBaseline, RecencyFrequency
from models.calibration import Calibrator
from models.churn_model import ChurnModel
from pipeline.errors import UserError
from pipeline.evaluate import baseline_predictions
from pipeline.fitting import BLEND_WEIGHTS, blend_weight, calibrate, fit_model
from pipeline.split import split_cutoffs

FEATURES = [
    "days_since_last_contact",
    "days_since_last_order",
    "orders_recent",
    "orders_prior",
    "order_value_long",
    "noise",
]
PARAMS = {
    "train": {
        "seed": 1,
        "n_estimators": 60,
        "learning_rate": 0.1,
        "num_leaves": 7,
        "min_child_samples": 20,
        "early_stopping_rounds": 10,
        "calibration": "platt",
        "blend": False,  # LightGBM alone; test_a_blend_is_weighted_* turns it on
    },
    "features": {},
}


def synthetic_frame(seed: int = 0, accounts: int = 300, cutoffs: int = 16) -> pd.DataFrame:
    """Accounts at cutoffs 28 days apart; silence and fewer orders raise the churn chance."""
    rng = np.random.default_rng(seed)
    n = accounts * cutoffs
    silence = rng.exponential(40, n)
    recency = rng.exponential(30, n)
    orders = rng.poisson(4, n).astype(float)
    logit = -3.2 + 0.02 * silence + 0.015 * recency - 0.25 * orders
    frame = pd.DataFrame(
        {
            "account_id": np.tile([f"a{i}" for i in range(accounts)], cutoffs),
            "cutoff": np.repeat(pd.date_range("2023-01-02", periods=cutoffs, freq="28D"), accounts),
            "days_since_last_contact": np.where(rng.random(n) < 0.05, np.nan, silence),
            "days_since_last_order": recency,
            "orders_recent": orders,
            "orders_prior": rng.poisson(4, n).astype(float),
            "order_value_long": orders * rng.lognormal(6, 0.5, n),
            "noise": rng.normal(size=n),
        }
    )
    frame["label"] = rng.binomial(1, 1 / (1 + np.exp(-logit)))
    frame["cutoff"] = frame["cutoff"].astype("datetime64[us]")
    return frame


def _perturbed_test(frame: pd.DataFrame, folds) -> pd.DataFrame:
    """Every test row changed: labels flipped, features scrambled and scaled."""
    out = frame.copy()
    test = folds.fold_of(out["cutoff"]) == "test"
    rng = np.random.default_rng(99)
    out.loc[test, "label"] = 1 - out.loc[test, "label"]
    for col in FEATURES:
        out.loc[test, col] = rng.permutation(out.loc[test, col].to_numpy()) * 3 + 7
    return out


@pytest.fixture(scope="module")
def frames():
    frame = synthetic_frame()
    folds = split_cutoffs(frame["cutoff"].unique(), 3, 3, 90)
    return frame, _perturbed_test(frame, folds), folds


def test_the_folds_hold_rows_and_churners(frames):
    frame, changed, folds = frames
    fold = folds.fold_of(frame["cutoff"])
    assert {"train", "valid", "test"} <= set(fold.dropna())
    test = fold == "test"
    assert (frame.loc[test, "label"] != changed.loc[test, "label"]).all()
    assert frame.loc[~test].equals(changed.loc[~test])


def test_model_and_calibrator_ignore_test_rows(frames):
    frame, changed, folds = frames
    label = {"mode": "explicit"}
    a = fit_model(frame, folds, PARAMS, label)
    b = fit_model(changed, folds, PARAMS, label)
    assert a.calibrator.describe() == b.calibrator.describe()
    valid = frame[folds.fold_of(frame["cutoff"]) == "valid"]
    assert np.array_equal(a.predict_raw(valid), b.predict_raw(valid))
    assert np.array_equal(a.predict_proba(valid), b.predict_proba(valid))
    # and the calibrator did learn something from the validation fold
    assert a.calibrator.describe()["slope"] > 0


def test_baselines_ignore_test_labels_and_other_test_rows(frames):
    frame, changed, folds = frames
    test = folds.fold_of(frame["cutoff"]) == "test"
    same_x = changed.copy()
    same_x.loc[test, FEATURES] = frame.loc[test, FEATURES]  # only test labels differ
    a = baseline_predictions(frame, folds, FEATURES)
    b = baseline_predictions(same_x, folds, FEATURES)
    assert set(a) == {"logistic_regression", "days_since_last_contact", "recency_frequency"}
    for name in a:
        assert np.array_equal(a[name], b[name]), name
    # each baseline ranks better than chance on this world, so it was fitted to something
    from sklearn.metrics import roc_auc_score

    y = frame.loc[test, "label"].to_numpy()
    assert roc_auc_score(y, a["logistic_regression"]) > 0.6
    assert roc_auc_score(y, a["days_since_last_contact"]) > 0.55


def test_logistic_baseline_learns_only_from_its_training_rows(frames):
    frame, changed, folds = frames
    train = folds.fold_of(frame["cutoff"]) == "train"
    a = LogisticBaseline(FEATURES).fit(frame[train], frame.loc[train, "label"])
    b = LogisticBaseline(FEATURES).fit(changed[train], changed.loc[train, "label"])
    coef = a.pipeline_[-1].coef_
    assert np.array_equal(coef, b.pipeline_[-1].coef_)
    # imputation and scaling were fitted on the same rows: medians of the training fold
    imputer = a.pipeline_[0]
    assert imputer.statistics_[0] == pytest.approx(
        frame.loc[train, FEATURES[0]].median(skipna=True)
    )


def test_rule_and_rfm_treat_unknown_as_riskiest():
    frame = pd.DataFrame(
        {
            "days_since_last_contact": [1.0, 5.0, 50.0, 100.0, np.nan, 2.0],
            "days_since_last_order": [1.0, 5.0, 50.0, 100.0, np.nan, 2.0],
            "orders_recent": [5, 4, 1, 0, 0, 5],
            "orders_prior": [5, 4, 1, 0, 0, 5],
            "order_value_long": [500.0, 400, 100, 0, 0, 500],
        }
    )
    y = np.array([0, 0, 1, 1, 1, 0])
    rule = LastContactRule().fit(frame, y)
    p = rule.predict_proba(frame)
    assert p[4] == pytest.approx(1.0) and p[0] == pytest.approx(0.0)
    rfm = RecencyFrequency().fit(frame, y)
    q = rfm.predict_proba(frame)
    assert q[4] >= q[2] > q[0]


def test_calibration_methods_and_bad_method():
    rng = np.random.default_rng(3)
    raw = rng.normal(-2, 1, 5000)
    y = rng.binomial(1, 1 / (1 + np.exp(-(0.5 * raw - 1))))  # overconfident raw scores
    platt = Calibrator("platt").fit(raw, y)
    assert platt.describe()["slope"] == pytest.approx(0.5, abs=0.15)
    iso = Calibrator("isotonic").fit(raw, y)
    p = iso.transform(np.sort(raw))
    assert (np.diff(p) >= -1e-12).all() and p.min() > 0 and p.max() < 1
    for cal in (platt, iso):
        assert abs(cal.transform(raw).mean() - y.mean()) < 0.01
    with pytest.raises(UserError, match="train.calibration"):
        calibrate("beta", raw, y)


def test_churn_model_reports_calibrated_probabilities(frames):
    frame, _, folds = frames
    model = fit_model(frame, folds, PARAMS, {"mode": "explicit"})
    rows = frame.head(50)
    raw = model.predict_raw(rows)
    assert np.allclose(model.predict_proba(rows), model.calibrator.transform(raw))
    served = model.predict(None, rows)
    assert served.name == "p_churn" and np.allclose(served, model.predict_proba(rows))
    plain = ChurnModel(model.estimator, model.features, {}, {})
    assert np.allclose(plain.predict_proba(rows), 1 / (1 + np.exp(-raw)))


def test_a_blend_is_weighted_on_validation_and_ignores_test_rows(frames):
    from sklearn.metrics import roc_auc_score

    frame, changed, folds = frames
    params = {**PARAMS, "train": {**PARAMS["train"], "blend": True}}
    a = fit_model(frame, folds, params, {"mode": "explicit"})
    b = fit_model(changed, folds, params, {"mode": "explicit"})
    fold = folds.fold_of(frame["cutoff"])
    valid, train = frame[fold == "valid"], frame[fold == "train"]
    assert a.calibrator.describe() == b.calibrator.describe()
    assert np.array_equal(a.predict_raw(valid), b.predict_raw(valid))
    # this world is linear in the log-odds: the logistic regression earns a share
    w, linear = a.blend()
    assert w < 1.0 and linear is not None
    tree = ChurnModel(a.estimator, a.features, {}, {}).predict_raw(valid)
    lin = LogisticBaseline(FEATURES).fit(train, train["label"]).decision_function(valid)
    y = valid["label"].to_numpy()
    best = max(roc_auc_score(y, v * tree + (1 - v) * lin) for v in BLEND_WEIGHTS)
    assert roc_auc_score(y, a.predict_raw(valid)) == pytest.approx(best)
    assert np.allclose(a.predict_raw(valid), w * tree + (1 - w) * lin)


def test_blend_weight_prefers_the_tree_model_unless_the_linear_one_adds_something():
    rng = np.random.default_rng(5)
    signal = rng.normal(size=4000)
    y = rng.binomial(1, 1 / (1 + np.exp(-(2 * signal - 3))))
    assert blend_weight(y, signal, signal) == 1.0  # a tie: no blend
    assert blend_weight(y, rng.normal(size=4000), signal) == 0.0
    noisy = signal + rng.normal(size=4000)
    assert 0.0 < blend_weight(y, signal + rng.normal(size=4000), noisy) < 1.0
