"""Model metrics against values worked out by hand: ECE, lift, recall at the top, campaign."""

from __future__ import annotations

import numpy as np
import pytest

from models.metrics import (
    Campaign,
    binary_metrics,
    campaign_curve,
    campaign_metrics,
    ece,
    equal_frequency_bins,
    gains_points,
    lift_at,
    recall_at,
)


def test_ece_by_hand():
    p = np.array([0.1, 0.2, 0.3, 0.4, 0.6, 0.7, 0.8, 0.9])
    # two bins: {0.1..0.4} mean 0.25 with no churner, {0.6..0.9} mean 0.75, all churners
    assert ece(np.array([0, 0, 0, 0, 1, 1, 1, 1]), p, bins=2) == pytest.approx(0.25)
    # perfectly calibrated in each bin: one churner in four at 0.25, three in four at 0.75
    assert ece(np.array([0, 1, 0, 0, 1, 1, 0, 1]), p, bins=2) == pytest.approx(0.0)
    # four bins of two: |0.15 - 0| + |0.35 - 0.5| + |0.65 - 1| + |0.85 - 0.5|, each weighted 1/4
    y = np.array([0, 0, 1, 0, 1, 1, 0, 1])
    assert ece(y, p, bins=4) == pytest.approx((0.15 + 0.15 + 0.35 + 0.35) / 4)


def test_ece_bins_follow_the_score_not_the_input_order():
    p = np.array([0.9, 0.1, 0.8, 0.2])
    y = np.array([1, 0, 1, 0])
    # bins {0.1, 0.2} -> |0.15 - 0|, {0.8, 0.9} -> |0.85 - 1|
    assert ece(y, p, bins=2) == pytest.approx(0.15)


def test_equal_frequency_bins_with_a_remainder():
    bins = equal_frequency_bins(np.arange(10) / 10, bins=3)
    assert np.bincount(bins).tolist() == [4, 3, 3]
    assert (np.diff(bins) >= 0).all()


def test_lift_and_recall_at_the_top_by_hand():
    y = np.array([1, 0, 0, 0, 1, 0, 0, 0, 0, 0])
    p = np.array([0.9, 0.8, 0.1, 0.1, 0.7, 0.1, 0.1, 0.1, 0.1, 0.1])
    assert lift_at(y, p, 0.1) == pytest.approx(1.0 / 0.2)  # top 1: a churner, base rate 0.2
    assert lift_at(y, p, 0.2) == pytest.approx(0.5 / 0.2)
    assert lift_at(y, p, 0.3) == pytest.approx((2 / 3) / 0.2)
    assert recall_at(y, p, 0.1) == pytest.approx(0.5)
    assert recall_at(y, p, 0.2) == pytest.approx(0.5)
    assert recall_at(y, p, 0.3) == pytest.approx(1.0)


def test_campaign_value_by_hand():
    y = np.array([1, 0, 1, 0])
    p = np.array([0.9, 0.8, 0.7, 0.1])
    c = Campaign(contact_cost=10, account_value=100, success_rate=0.5)
    # contacting the top k: kept = churners * 0.5 * 100, cost = 10 k
    assert campaign_curve(y, p, c)["value"].tolist() == [0, 40, 30, 70, 60]
    m = campaign_metrics(y, p, c)
    assert m["campaign_value"] == pytest.approx(70) and m["campaign_depth"] == pytest.approx(0.75)
    # policy: contact where p * 0.5 * 100 > 10, i.e. p > 0.2: the first three
    assert m["campaign_depth_policy"] == pytest.approx(0.75)

    dear = Campaign(contact_cost=30, account_value=100, success_rate=0.5)
    assert campaign_curve(y, p, dear)["value"].tolist() == [0, 20, -10, 10, -20]
    m = campaign_metrics(y, p, dear)
    assert m["campaign_value"] == pytest.approx(20) and m["campaign_depth"] == pytest.approx(0.25)
    # p * 50 > 30 holds for 0.9, 0.8 and 0.7: three contacts, worth 100 - 90
    assert m["campaign_value_policy"] == pytest.approx(10)
    assert m["campaign_depth_policy"] == pytest.approx(0.75)


def test_campaign_never_worth_it_contacts_nobody():
    y = np.array([0, 1, 0])
    m = campaign_metrics(y, np.array([0.3, 0.2, 0.1]), Campaign(1000, 100, 0.5))
    assert m["campaign_value"] == 0 and m["campaign_depth"] == 0
    assert m["campaign_value_policy"] == 0 and m["campaign_depth_policy"] == 0


def test_gains_curve_by_hand():
    y = np.array([1, 0, 1, 0])
    g = gains_points(y, np.array([0.9, 0.8, 0.7, 0.1]))
    assert g["contacted"].tolist() == [0, 0.25, 0.5, 0.75, 1.0]
    assert g["churners_found"].tolist() == [0, 0.5, 0.5, 1.0, 1.0]


def test_binary_metrics_carry_every_key():
    rng = np.random.default_rng(1)
    p = rng.uniform(0, 0.3, 2000)
    y = rng.binomial(1, p)
    m = binary_metrics(y, p, Campaign(10, 100, 0.5))
    for key in (
        "auc",
        "pr_auc",
        "brier",
        "log_loss",
        "ece",
        "lift_at_5pct",
        "lift_at_10pct",
        "lift_at_20pct",
        "recall_at_10pct",
        "campaign_value",
        "campaign_depth",
    ):
        assert np.isfinite(m[key]), key
    assert m["ece"] < 0.03  # labels drawn from p: calibrated by construction
    shifted = binary_metrics(y, np.clip(p + 0.1, 0, 1))
    assert shifted["ece"] == pytest.approx(m["ece"] + 0.1, abs=0.03)


MONEY_KEYS = {"campaign_value", "campaign_depth", "campaign_value_policy", "campaign_depth_policy"}


def test_unpriced_campaign_has_no_money_keys_and_a_depth_curve():
    y = np.array([1, 0, 1, 0])
    p = np.array([0.9, 0.8, 0.7, 0.1])
    unpriced = Campaign()
    assert not unpriced.priced
    m = binary_metrics(y, p, unpriced)
    assert MONEY_KEYS.isdisjoint(m) and not any("value" in k or "cost" in k for k in m)
    assert m["recall_at_10pct"] == pytest.approx(0.5)  # the top 1 of 4 is a churner
    assert campaign_metrics(y, p, unpriced) == {}
    curve = campaign_curve(y, p, unpriced)
    assert list(curve.columns) == ["contacted", "depth", "churners", "recall", "precision", "lift"]
    assert curve["depth"].tolist() == [0, 0.25, 0.5, 0.75, 1.0]
    assert curve["recall"].tolist() == [0, 0.5, 0.5, 1.0, 1.0]
    assert np.isnan(curve["precision"].iloc[0]) and np.isnan(curve["lift"].iloc[0])
    assert curve["precision"].iloc[1:].tolist() == pytest.approx([1.0, 0.5, 2 / 3, 0.5])
    assert curve["lift"].iloc[1:].tolist() == pytest.approx([2.0, 1.0, 4 / 3, 1.0])  # rate 0.5


def test_priced_campaign_keeps_its_figures_beside_the_depth_curve():
    y = np.array([1, 0, 1, 0])
    p = np.array([0.9, 0.8, 0.7, 0.1])
    c = Campaign(contact_cost=10, account_value=100, success_rate=0.5)
    assert c.priced
    m = binary_metrics(y, p, c)
    assert set(m) >= MONEY_KEYS
    assert m["campaign_value"] == pytest.approx(70) and m["campaign_value_policy"] == 70
    curve = campaign_curve(y, p, c)
    assert curve["value"].tolist() == [0, 40, 30, 70, 60]
    assert curve["recall"].tolist() == [0, 0.5, 0.5, 1.0, 1.0]
    # the same figures whatever the unpriced metrics are
    plain = binary_metrics(y, p)
    assert {k: v for k, v in m.items() if k not in MONEY_KEYS} == plain
