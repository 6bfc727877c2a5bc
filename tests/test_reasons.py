"""Reasons from the model itself: TreeSHAP contributions (compiled and LightGBM's agree and add
up to the raw score), summed by catalog group, worded from the catalog, stable."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest

from features.catalog import CATALOG
from models import treeshap
from models.baselines import LogisticBaseline
from models.churn_model import ChurnModel
from models.reasons import contributions, group_contributions, phrase, raw_score, reasons

# Two features that drive the label, one per group, and noise from three other groups.
SILENCE, PROMISES = "days_since_last_contact", "on_time_rate_long"
NOISE = ["active_links", "rfqs_recent", "orders_recent"]
FEATURES = [SILENCE, PROMISES, *NOISE]


def world(n: int = 3000, seed: int = 0, nan_share: float = 0.1) -> tuple[pd.DataFrame, pd.Series]:
    """Churn rises with days since the last contact and with late deliveries."""
    rng = np.random.default_rng(seed)
    x = pd.DataFrame(
        {
            SILENCE: rng.gamma(2.0, 20.0, n),
            PROMISES: rng.beta(8, 2, n),
            "active_links": rng.poisson(1.5, n).astype(float),
            "rfqs_recent": rng.poisson(0.5, n).astype(float),
            "orders_recent": rng.poisson(4, n).astype(float),
        }
    )
    logit = -3 + 0.04 * x[SILENCE] + 4 * (0.8 - x[PROMISES])
    y = pd.Series((rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int))
    x.loc[rng.random(n) < nan_share, SILENCE] = np.nan
    x.loc[rng.random(n) < nan_share, "orders_recent"] = 0.0
    return x, y


def fit(x: pd.DataFrame, y: pd.Series, **params) -> ChurnModel:
    estimator = lgb.LGBMClassifier(
        n_estimators=60, num_leaves=15, min_child_samples=10, random_state=0, verbose=-1, **params
    ).fit(x, y)
    return ChurnModel(estimator, FEATURES, {"recent_days": 90, "long_days": 365}, {})


@pytest.fixture(scope="module")
def model() -> ChurnModel:
    return fit(*world())


@pytest.mark.parametrize(
    "params",
    [{}, {"zero_as_missing": True}, {"use_missing": False}, {"max_depth": 3}],
    ids=["nan-missing", "zero-missing", "no-missing", "shallow"],
)
def test_contributions_add_up_to_the_raw_score_and_match_lightgbm(params):
    x, y = world(seed=1)
    m = fit(x, y, **params)
    test = world(n=500, seed=2)[0]
    test.iloc[:20, 0] = np.nan  # unseen missing values too
    fast = contributions(m, test)
    slow = contributions(m, test, method="lightgbm")
    assert np.allclose(fast.sum(axis=1), raw_score(m, test), atol=1e-9)
    assert np.allclose(fast.to_numpy(), slow.to_numpy(), atol=1e-9)
    assert fast.abs().to_numpy()[:, :-1].sum() > 1  # not all zero


def test_a_blend_with_logistic_regression_adds_up_to_its_raw_score():
    x, y = world(seed=1)
    x.loc[x.index[:50], PROMISES] = np.nan  # missing-value indicators for two features
    tree = fit(x, y)
    linear = LogisticBaseline(FEATURES).fit(x, y.to_numpy())
    blend = ChurnModel(tree.estimator, FEATURES, tree.feature_config, {}, None, linear, 0.3)
    test = world(n=500, seed=2)[0]
    test.iloc[:20, 1] = np.nan
    contrib = contributions(blend, test)
    assert np.allclose(contrib.sum(axis=1), raw_score(blend, test), atol=1e-9)
    expected = 0.3 * tree.predict_raw(test) + 0.7 * linear.decision_function(test)
    assert np.allclose(raw_score(blend, test), expected, atol=1e-12)
    lin, intercept = linear.contributions(test)
    assert np.allclose(lin.sum(axis=1) + intercept, linear.decision_function(test), atol=1e-9)
    # the indicator of a missing value counts for its own feature, not for another one
    only_missing = test.iloc[[0]].copy()
    filled = only_missing.fillna(test[PROMISES].median())
    moved = linear.contributions(only_missing)[0] - linear.contributions(filled)[0]
    assert np.count_nonzero(np.abs(moved[0]) > 1e-12) == 1 and abs(moved[0][1]) > 0
    tree_part = contributions(tree, test)
    assert not np.allclose(contrib.to_numpy(), tree_part.to_numpy())


def test_lookup_tables_change_nothing_but_speed(model):
    x = world(n=300, seed=3)[0].to_numpy()
    trees = treeshap.forest(model.estimator.booster_)
    direct = treeshap.shap_values(trees, x, treeshap.lookup_tables(trees, max_slots=0))
    tabled = treeshap.shap_values(trees, x, treeshap.lookup_tables(trees, max_slots=12))
    assert np.allclose(direct, tabled, atol=1e-12)
    small = treeshap.lookup_tables(trees, max_slots=12, max_bytes=2_000)
    assert small[1].nbytes <= 2_000
    assert np.allclose(direct, treeshap.shap_values(trees, x, small), atol=1e-12)


def test_groups_sum_the_features_of_each_catalog_group(model):
    x = world(n=50, seed=4)[0]
    contrib = contributions(model, x)
    groups = group_contributions(contrib)
    group_of = {f.name: f.group for f in CATALOG}
    assert list(groups.columns) == ["silence", "dependency", "trust", "promises", "engagement"]
    for group in groups.columns:
        members = [f for f in FEATURES if group_of[f] == group]
        assert np.allclose(groups[group], contrib[members].sum(axis=1))


def test_reasons_name_only_what_raises_the_risk_largest_first(model):
    x = world(n=400, seed=5)[0]
    out = reasons(model, x, typical={SILENCE: 40.0, PROMISES: 0.8})
    groups = group_contributions(contributions(model, x))
    for i in range(len(x)):
        listed = out["reason_groups"].iloc[i]
        named = listed.split("; ") if isinstance(listed, str) else []
        assert all(groups.iloc[i][g] > 0.01 for g in named)
        assert named == sorted(named, key=lambda g: -groups.iloc[i][g])
        raising = groups.iloc[i][groups.iloc[i] > 0.01].sort_values(ascending=False)
        assert set(named) <= set(raising.index) and len(named) <= 3
        lead = out["lead_group"].iloc[i]
        assert lead == named[0] if named else pd.isna(lead)
    silent = out["lead_group"] == "silence"
    assert silent.any() and (out.loc[silent, "reason_1"].str.contains("typical: 40")).all()


def test_a_reason_is_never_quoted_at_or_on_the_safe_side_of_its_typical_value(model):
    """days since the last contact raises the risk when higher, on-time rate when lower
    (the catalog's directions): a value at or on the other side of the typical is no reason."""
    x = world(n=600, seed=9, nan_share=0.0)[0]
    typical = {SILENCE: 40.0, PROMISES: 0.8}
    out = reasons(model, x, typical=typical)
    direction = {f.name: f.direction for f in CATALOG}
    assert direction[SILENCE] == "higher" and direction[PROMISES] == "lower"
    for k in (1, 2, 3):
        texts = out[f"reason_{k}"]
        for feature, risky in ((SILENCE, x[SILENCE] > 40.5), (PROMISES, x[PROMISES] < 0.795)):
            label = "days since the last interaction" if feature == SILENCE else "promised date"
            quoted = texts.str.contains(label, na=False)
            assert quoted.any() or k > 1
            assert risky[quoted].all(), x.loc[quoted & ~risky, feature].head()
    # at the typical value: the group is no reason, however much the model leans on it
    at = x.head(50).assign(**{SILENCE: 40.0, PROMISES: 0.8})
    out = reasons(model, at, typical=typical)
    for k in (1, 2, 3):
        assert not out[f"reason_{k}"].str.contains("typical: 40|typical: 80%", na=False).any()
    assert "silence" not in set(out["lead_group"].dropna())


def test_a_value_that_reads_as_the_typical_one_is_no_reason():
    from models.reasons import risk_side

    features = ["active_links", "went_quiet", "days_since_last_contact", "order_trend"]
    x = np.array(
        [
            [1.0, 1.0, 21.02, np.log(0.5)],  # 1 vs 1, yes vs yes, 21 vs 21: no; -50%: yes
            [0.0, 1.0, 143.0, 0.2],  # fewer links and 143 days: yes; trend +22% vs 0%: no
        ]
    )
    typical = {"active_links": 1.0, "went_quiet": 1.0, "days_since_last_contact": 21.0}
    typical["order_trend"] = 0.0
    assert risk_side(features, x, typical).tolist() == [
        [False, False, False, True],
        [True, False, True, False],
    ]


def test_reasons_are_stable_for_the_same_inputs(model):
    x = world(n=300, seed=6)[0]
    first = reasons(model, x, typical={SILENCE: 40.0})
    second = reasons(model, x.sample(frac=1, random_state=1), typical={SILENCE: 40.0})
    pd.testing.assert_frame_equal(first, second.loc[first.index])


def test_a_customer_gone_quiet_reads_in_plain_words(model):
    x = pd.DataFrame({SILENCE: [143.0], PROMISES: [0.95], **{n: [1.0] for n in NOISE}})
    out = reasons(model, x, typical={SILENCE: 21.0, PROMISES: 0.9})
    assert out["lead_group"].iloc[0] == "silence"
    assert out["reason_1"].iloc[0] == (
        "days since the last interaction of any kind, by either side: 143 days (typical: 21)"
    )


@pytest.mark.parametrize(
    ("feature", "value", "typical", "expected"),
    [
        ("on_time_rate_long", 0.64, 0.93, "delivered by the promised date: 64% (typical: 93%)"),
        ("complaints_recent", 0.0, 2.0, "complaints in the last 90 days: 0 (typical: 2)"),
        ("went_quiet", 1.0, 0.0, "but not within it: yes (typical: no)"),
        (
            "order_trend",
            np.log(0.5),
            0.0,
            "orders in the last 90 days vs the 90 days before: -50% (typical: 0%)",
        ),
        ("days_since_last_complaint", np.nan, 120.0, "complaint: none on record (typical: 120)"),
        ("mean_lateness_days_long", 1.0, 0.0, "(0 for orders on time): 1 day (typical: 0)"),
    ],
)
def test_phrases_come_from_the_catalog(feature, value, typical, expected):
    text = phrase(feature, value, typical, {"recent_days": 90, "long_days": 365})
    assert text.endswith(expected), text
    assert "features." not in text and "cutoff" not in text
