"""params.yaml `campaign`: money figures only when the user gives them; clear errors otherwise."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from models.metrics import binary_metrics
from pipeline.errors import UserError
from pipeline.evaluate import campaign_from, write_plots
from pipeline.evaluation_record import summary

ROOT = Path(__file__).resolve().parents[1]
MONEY = ("campaign_value", "campaign_depth", "campaign_value_policy", "campaign_depth_policy")
CURRENCY_WORDS = ("worth", "value", "cost", "$", "€")


def test_the_shipped_params_price_nothing():
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    assert params["campaign"] == {
        "contact_cost": None,
        "account_value": None,
        "success_rate": None,
    }
    assert not campaign_from(params).priced


@pytest.mark.parametrize("section", [None, {}, {"contact_cost": None, "account_value": None}])
def test_no_campaign_is_unpriced(section):
    assert not campaign_from({"campaign": section}).priced
    assert not campaign_from({}).priced


def test_a_full_campaign_is_priced():
    c = campaign_from(
        {"campaign": {"contact_cost": 200, "account_value": 10000, "success_rate": 0.25}}
    )
    assert c.priced and (c.contact_cost, c.account_value, c.success_rate) == (200, 10000, 0.25)


@pytest.mark.parametrize(
    "section, message",
    [
        ({"contact_cost": 200}, r"campaign\.account_value and campaign\.success_rate are not set"),
        ({"account_value": 10000, "success_rate": 0.25}, r"campaign\.contact_cost is not set"),
        ({"contact_cost": 200, "account_value": 10000}, r"campaign\.success_rate is not set"),
        ({"success_rate": 0.25}, r"campaign\.contact_cost and campaign\.account_value are not"),
        (
            {"contact_cost": -1, "account_value": 10000, "success_rate": 0.25},
            r"campaign\.contact_cost must be >= 0",
        ),
        (
            {"contact_cost": 200, "account_value": -5, "success_rate": 0.25},
            r"campaign\.account_value must be >= 0",
        ),
        (
            {"contact_cost": 200, "account_value": 10000, "success_rate": 1.5},
            r"campaign\.success_rate is a chance: between 0 and 1",
        ),
        (
            {"contact_cost": 200, "account_value": 10000, "success_rate": -0.1},
            r"campaign\.success_rate must be >= 0",
        ),
        ({"contact_cost": "200 EUR", "account_value": 1}, r"campaign\.contact_cost must be a num"),
        ({"contact_cost": True, "account_value": 1}, r"campaign\.contact_cost must be a number"),
        ({"contact_cost": float("nan")}, r"campaign\.contact_cost must be a number"),
    ],
)
def test_a_malformed_campaign_is_a_user_error_naming_the_key(section, message):
    with pytest.raises(UserError, match=message):
        campaign_from({"campaign": section})


def _evaluate_outputs(tmp_path: Path, section: dict) -> tuple[dict, pd.DataFrame, str]:
    """metrics, campaign.csv and the console summary, as the evaluate stage writes them."""
    rng = np.random.default_rng(3)
    p = rng.uniform(0, 0.4, 3000)
    y = rng.binomial(1, p)
    campaign = campaign_from({"campaign": section})
    metrics = {"test": binary_metrics(y, p, campaign), "baselines": {}, "model": {}}
    plots = tmp_path / "plots"
    write_plots(plots, y, p, p, {}, None, campaign, metrics)
    json.dumps(metrics, allow_nan=False)  # no NaN in the metrics either way
    return metrics, pd.read_csv(plots / "campaign.csv"), summary(metrics)


def test_evaluate_outputs_without_money(tmp_path):
    metrics, curve, text = _evaluate_outputs(tmp_path, {})
    assert not set(MONEY) & set(metrics["test"])
    assert list(curve.columns) == ["depth", "recall", "precision", "lift"]
    assert curve["depth"].iloc[0] == 0 and curve["depth"].iloc[-1] == 1
    assert curve["recall"].iloc[-1] == pytest.approx(1.0) and curve["lift"].iloc[-1] == 1.0
    assert curve["recall"].is_monotonic_increasing
    last = text.splitlines()[-1]
    assert last.startswith("contact depth (most at risk first): 5% reaches")
    assert not any(word in text for word in CURRENCY_WORDS), text
    assert (tmp_path / "plots" / "campaign.png").stat().st_size > 0


def test_evaluate_outputs_with_money(tmp_path):
    section = {"contact_cost": 200, "account_value": 10000, "success_rate": 0.25}
    metrics, curve, text = _evaluate_outputs(tmp_path, section)
    assert set(MONEY) <= set(metrics["test"])
    assert list(curve.columns) == ["depth", "recall", "precision", "lift", "value"]
    best = metrics["test"]["campaign_value"]
    assert curve["value"].max() <= best + 1e-6  # the thinned curve never beats the best depth
    assert f"worth {best:,.0f}" in text.splitlines()[-1]
