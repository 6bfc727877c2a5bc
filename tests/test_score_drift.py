"""Drift at scoring: population stability index per feature against the training reference,
a warning that names the drifted features, and the figures in the metadata."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd

from features import FeatureConfig
from features.catalog import CATALOG
from models.drift import (
    GROWS_WITH_HISTORY,
    REFERENCE_NAME,
    Reference,
    drift_report,
    drift_warning,
    psi,
    reference_profile,
)
from pipeline.engine import features_at
from pipeline.labels import LabelSpec
from pipeline.store import load
from tests import test_badinput_score as base
from tests.test_score_output import params_file

project = base.project  # env: conftest


def sample(n: int = 5000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "tenure_days": rng.gamma(3, 300, n),
            "orders_recent": rng.poisson(3, n).astype(float),
            "days_since_last_complaint": np.where(rng.random(n) < 0.3, np.nan, rng.gamma(2, 50, n)),
            "days_since_last_order": rng.gamma(2, 20, n),
            "days_since_last_contact": np.where(rng.random(n) < 0.3, np.nan, rng.gamma(2, 15, n)),
        }
    )


FEATURES = [
    "tenure_days",
    "orders_recent",
    "days_since_last_complaint",
    "days_since_last_order",
    "days_since_last_contact",
]
HISTORY = {  # the features that grow with the length of the data's history
    "days_since_first_order",
    "days_since_new_contact",
    "complaints_before_recent",
    "days_since_last_complaint",
    "complaint_rate_ratio",
    "tenure_days",
    "oldest_active_link_days",
    "orders_total",  # counts over the whole history
    "order_days_total",
}


def test_the_catalog_flags_exactly_the_features_that_grow_with_history():
    assert {f.name for f in CATALOG if f.grows_with_history} == HISTORY
    assert GROWS_WITH_HISTORY == HISTORY


def older_history(frame: pd.DataFrame) -> pd.DataFrame:
    """The same accounts scored after a longer history: only history-growing features shift."""
    out = frame.copy()
    out["tenure_days"] += 600  # a year and a half older on average
    out.loc[out.index[:1500], "days_since_last_complaint"] = 400.0  # a complaint long ago
    return out


def test_same_distribution_is_stable_and_a_shift_is_flagged():
    reference = Reference(reference_profile(sample(seed=0), FEATURES), "test")
    same = drift_report(sample(seed=1), reference)
    assert same["checked"] and same["drifted"] == [] and same["grows_with_history"] == []
    assert max(same["psi"].values()) < 0.05

    shifted = sample(seed=2)
    shifted["days_since_last_order"] += 60  # two months longer without an order
    shifted.loc[shifted.index[:2500], "days_since_last_contact"] = np.nan  # 65% unknown
    report = drift_report(shifted, reference)
    assert report["drifted"] == sorted(
        ["days_since_last_order", "days_since_last_contact"], key=lambda f: -report["psi"][f]
    )
    assert report["grows_with_history"] == []
    assert report["psi"]["orders_recent"] < 0.05 and report["psi"]["tenure_days"] < 0.05
    warning = drift_warning(report)
    assert warning.startswith("2 feature(s) drifted from the training data (PSI >= 0.25): ")
    assert "days_since_last_order (PSI " in warning and "orders_recent" not in warning
    assert "grow with" not in warning and warning.endswith("(dvc repro)")


def test_a_shift_of_features_that_grow_with_history_is_expected_not_drift():
    reference = Reference(reference_profile(sample(seed=0), FEATURES), "test")
    report = drift_report(older_history(sample(seed=2)), reference)
    assert report["checked"] is True and report["drifted"] == []
    expected = report["grows_with_history"]
    assert [e["feature"] for e in expected] == sorted(
        ["tenure_days", "days_since_last_complaint"], key=lambda f: -report["psi"][f]
    )
    assert all(e["psi"] == report["psi"][e["feature"]] >= 0.25 for e in expected)
    assert drift_warning(report) is None

    # with a real shift besides, the warning names it and adds the others as expected
    both = older_history(sample(seed=2))
    both["days_since_last_order"] += 60
    report = drift_report(both, reference)
    assert report["drifted"] == ["days_since_last_order"]
    expected = {e["feature"] for e in report["grows_with_history"]}
    assert expected == {"tenure_days", "days_since_last_complaint"}
    warning = drift_warning(report)
    assert warning.startswith("1 feature(s) drifted from the training data (PSI >= 0.25): ")
    named, also = warning.split(". ", 1)
    assert "days_since_last_order (PSI " in named and "tenure_days" not in named
    assert also.startswith("2 feature(s) that grow with the length of the data's history ")
    assert "tenure_days" in also and "days_since_last_complaint" in also


def test_counts_with_few_values_get_their_own_bins():
    profile = reference_profile(sample(), FEATURES)
    spec = profile["features"]["orders_recent"]
    assert spec["edges"] == sorted(set(spec["edges"])) and len(spec["edges"]) >= 4
    assert abs(sum(spec["expected"]) - 1) < 1e-6
    assert profile["features"]["days_since_last_complaint"]["expected"][0] > 0.25  # missing
    assert profile["features"]["tenure_days"]["typical"] == sample()["tenure_days"].median()
    more = sample().assign(orders_recent=lambda f: f["orders_recent"] + 3)
    assert psi(more, profile)["orders_recent"] > 1


def test_too_few_accounts_or_no_reference_is_not_measured():
    reference = Reference(reference_profile(sample(), FEATURES), "test")
    few = drift_report(sample(n=50), reference, min_rows=200)
    assert few["checked"] is False and "fewer than 200" in few["note"]
    none = drift_report(sample(), None)
    assert none["checked"] is False and drift_warning(none) is None


def score_with_reference(env, tmp_path, shift, model_arg: str):
    """Score the tiny world with a copy of its model whose reference is `shift(features)`."""
    model_dir = tmp_path / "model"
    shutil.copytree(env / "data" / "model", model_dir)
    feats = features_at(
        load(env / "clean"), pd.Timestamp("2023-03-21"), FeatureConfig(), LabelSpec()
    )
    names = [c for c in feats.columns if c not in ("account_id", "cutoff")]
    (model_dir / REFERENCE_NAME).write_text(json.dumps(reference_profile(shift(feats), names)))
    params = params_file(tmp_path, drift={"psi_threshold": 0.25, "min_rows": 1})
    code, output, out = base.score(
        env, "--all-active", "--model", str(model_dir / model_arg), "--params", str(params)
    )
    assert code == 0, output
    return output, json.loads(out.with_name("scores.meta.json").read_text()), model_dir


def younger(feats: pd.DataFrame) -> pd.DataFrame:
    """A world two years younger: tenure and order history much shorter (no real drift)."""
    out = pd.concat([feats] * 100, ignore_index=True)
    rng = np.random.default_rng(0)
    for column in ("tenure_days", "days_since_first_order"):
        out[column] = rng.uniform(0, 30, len(out))
    return out


def busier(feats: pd.DataFrame) -> pd.DataFrame:
    """A world where every account ordered within the last days, and ten times as often."""
    out = pd.concat([feats] * 100, ignore_index=True)
    rng = np.random.default_rng(0)
    out["days_since_last_order"] = rng.uniform(0, 2, len(out))
    out["orders_recent"] = rng.poisson(10 * out["orders_recent"].mean() + 20, len(out))
    return out


def test_scoring_a_shifted_world_warns_and_records_drift(env, tmp_path):
    output, meta, model_dir = score_with_reference(env, tmp_path, busier, "mlflow")
    assert "warning: " in output and "drifted from the training data" in output
    assert "days_since_last_order (PSI " in output and "orders_recent (PSI " in output
    assert meta["drift"]["checked"] is True
    assert {"days_since_last_order", "orders_recent"} <= set(meta["drift"]["drifted"])
    assert meta["drift"]["reference"] == str(model_dir / REFERENCE_NAME)
    assert meta["typical_values"] == "training fold medians"


def test_scoring_a_world_with_a_longer_history_does_not_warn(env, tmp_path):
    output, meta, _ = score_with_reference(env, tmp_path, younger, ".")
    assert "warning" not in output and "drifted" not in output
    drift = meta["drift"]
    assert drift["checked"] is True and drift["drifted"] == []
    expected = drift["grows_with_history"]  # worst first, also in the JSON (keys are sorted)
    assert [e["feature"] for e in expected] == sorted(
        ["tenure_days", "days_since_first_order"], key=lambda f: -drift["psi"][f]
    )
    assert all(e["psi"] == drift["psi"][e["feature"]] >= 0.25 for e in expected)


def test_no_warning_without_drift(env, tmp_path):
    output, meta, _ = score_with_reference(env, tmp_path, lambda f: f, ".")
    assert "drifted" not in output
    assert meta["drift"]["checked"] is True and meta["drift"]["drifted"] == []
    assert meta["drift"]["grows_with_history"] == []
