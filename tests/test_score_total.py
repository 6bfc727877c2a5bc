"""`churn score` is total: every ordinary list, date and previous file gives every listed row
back with its status (exit 0), or a clear exit 2 where there is nothing to score or the input
cannot be read; never a traceback. The model is a blend (LightGBM and logistic regression,
Platt-calibrated) as `churn train` builds one, so every half of it sees zero and one row."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import lightgbm as lgb
import mlflow.pyfunc
import numpy as np
import pandas as pd
import pytest

from features import FeatureConfig
from models.baselines import LogisticBaseline
from models.calibration import Calibrator
from models.churn_model import ChurnModel
from models.drift import Reference, drift_report, reference_profile
from models.reasons import contributions, raw_score, reasons
from pipeline.featurize import LabelSpec, data_end, features_at
from pipeline.lineage import fingerprint
from pipeline.paths import PACKAGE_ROOT
from pipeline.score import Settings, score_features, tier_bounds
from pipeline.simulate import SimConfig
from pipeline.simulate import write as simulate
from pipeline.validate import load
from tests.test_badinput_validate import run_cli

STATUSES = {
    "scored",
    "unknown_account",
    "churned",
    "not_yet_customer",
    "inactive",
    "duplicate",
    "no_account_id",
}


def blended_model(feats: pd.DataFrame, seed: int = 0) -> ChurnModel:
    """A blend fitted on `feats` with labels drawn from the days since the last order."""
    features = [c for c in feats.columns if c not in ("account_id", "cutoff")]
    rng = np.random.default_rng(seed)
    gap = feats["days_since_last_order"].fillna(400).to_numpy()
    y = (gap / 60 + rng.normal(size=len(feats)) > 1.5).astype(int)
    estimator = lgb.LGBMClassifier(
        n_estimators=30, num_leaves=4, min_child_samples=5, random_state=0, verbose=-1
    ).fit(feats[features].astype("float64"), y)
    linear = LogisticBaseline(features).fit(feats, y)
    model = ChurnModel(estimator, features, {}, {"mode": "auto"}, linear=linear, blend_weight=0.5)
    model.calibrator = Calibrator("platt").fit(model.predict_raw(feats), y)
    return model


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """A project folder: params.yaml, a small simulated world (raw and clean) and a blended,
    calibrated DVC-tracked model with a reference profile, trained on that data."""
    root = tmp_path_factory.mktemp("total")
    shutil.copy(PACKAGE_ROOT / "params.yaml", root / "params.yaml")
    simulate(SimConfig(n_accounts=300, weeks=80, mc_samples=0), root / "raw", root / "t.parquet")
    code, _, err = run_cli("validate", "--data", str(root / "raw"), "--out", str(root / "clean"))
    assert code == 0, err
    validated = load(root / "clean")
    cutoff = data_end(validated) - pd.Timedelta(days=120)
    feats = features_at(validated, cutoff, FeatureConfig(), LabelSpec())
    model = blended_model(feats)
    folder = root / "data" / "model"
    mlflow.pyfunc.save_model(str(folder / "mlflow"), python_model=model, pip_requirements=[])
    profile = reference_profile(feats, model.features)
    (folder / "reference.json").write_text(json.dumps(profile))
    (folder / "train_info.json").write_text(json.dumps({"data": fingerprint(validated)}))
    return root


@pytest.fixture
def env(project, monkeypatch) -> Path:
    monkeypatch.setenv("DVC_ROOT", str(project))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return project


def score(root: Path, *args: str, out: str = "scores.csv") -> tuple[int, str, Path]:
    target = Path(tempfile.mkdtemp(dir=root)) / out
    code, stdout, stderr = run_cli(
        "score", "--data", str(root / "clean"), "--out", str(target), *args
    )
    return code, stdout + stderr, target


def listed(root: Path, ids: list[str | None], name: str = "list.csv") -> Path:
    path = Path(tempfile.mkdtemp(dir=root)) / name
    pd.DataFrame({"account_id": ids}).to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def everyone(project) -> pd.DataFrame:
    """Every active account's score at the data's end."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DVC_ROOT", str(project))
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        code, output, out = score(project, "--all-active")
    assert code == 0, output
    return pd.read_csv(out)


def churned_ids(root: Path) -> list[str]:
    return pd.read_parquet(root / "clean" / "churn.parquet")["account_id"].head(3).tolist()


# --- degenerate populations -------------------------------------------------------------------


def test_a_list_with_no_account_in_the_reason_tiers_is_scored(env, everyone):
    """The issue's first case: three healthy accounts, so no row for the reasons (the
    logistic-regression half once refused zero rows)."""
    healthy = everyone.tail(3)["account_id"].tolist()
    assert set(everyone.tail(3)["risk_tier"]) == {"low"}
    code, output, out = score(env, "--accounts", str(listed(env, healthy)))
    assert code == 0, output
    frame = pd.read_csv(out)
    assert frame["account_id"].tolist() == healthy
    assert frame["status"].eq("scored").all() and frame["reason_1"].isna().all()
    expected = everyone.set_index("account_id").loc[healthy, "p_churn"].to_numpy()
    np.testing.assert_array_equal(frame["p_churn"].to_numpy(), expected)
    assert "reasons for 0 accounts" in output


@pytest.mark.parametrize(
    ("ids", "statuses"),
    [
        (["NOPE"], ["unknown_account"]),
        ([" X1 ", "X1", None, "  "], ["unknown_account", "duplicate", *["no_account_id"] * 2]),
    ],
)
def test_lists_of_unknown_duplicate_and_blank_ids(env, ids, statuses):
    code, output, out = score(env, "--accounts", str(listed(env, ids)))
    assert code == 0, output
    frame = pd.read_csv(out, keep_default_na=False, na_values=[""])
    assert frame["status"].tolist() == statuses
    assert frame["p_churn"].isna().all() and "tiers: none" in output


def test_a_list_of_churned_accounts(env):
    ids = churned_ids(env)
    code, output, out = score(env, "--accounts", str(listed(env, ids)))
    assert code == 0, output
    assert pd.read_csv(out)["status"].tolist() == ["churned"] * len(ids)


def test_a_single_account_of_the_high_tier_gets_its_reasons(env, everyone):
    top = everyone.iloc[0]
    code, output, out = score(env, "--accounts", str(listed(env, [top["account_id"]])))
    assert code == 0, output
    row = pd.read_csv(out).iloc[0]
    assert row["status"] == "scored" and row["risk_tier"] == top["risk_tier"] == "high"
    assert row["p_churn"] == top["p_churn"] and row["reason_1"] == top["reason_1"]


def test_an_empty_list_is_a_clear_error(env):
    path = Path(tempfile.mkdtemp(dir=env)) / "empty.csv"
    path.write_text("account_id\n")
    code, output, out = score(env, "--accounts", str(path))
    assert code == 2 and "Traceback" not in output and not out.exists()
    assert "the account list has no rows, so there is nothing to score" in output


def test_a_date_at_which_no_account_is_active(env, tmp_path):
    """Every account churned: a list comes back with every status, --all-active is exit 2."""
    raw = tmp_path / "raw"
    shutil.copytree(env / "raw", raw)
    accounts = pd.read_csv(raw / "accounts.csv", dtype=str)
    churn = pd.read_csv(raw / "churn.csv", dtype=str)
    gone = accounts.loc[~accounts["account_id"].isin(churn["account_id"]), ["account_id"]]
    gone = gone.assign(churned_at="2024-07-14", reason="price")
    pd.concat([churn, gone]).to_csv(raw / "churn.csv", index=False)
    model = str(env / "data" / "model")
    common = ("--data", str(raw), "--model", model, "--as-of", "2024-07-15")
    target = tmp_path / "s.csv"
    code, out, err = run_cli("score", *common, "--all-active", "--out", str(target))
    assert code == 2 and "Traceback" not in err and not target.exists()
    assert "no account is active as of 2024-07-15" in err
    ids = [accounts["account_id"].iloc[0], "NOPE"]
    path = listed(env, ids)
    code, out, err = run_cli("score", *common, "--accounts", str(path), "--out", str(target))
    assert code == 0, err
    assert pd.read_csv(target)["status"].tolist() == ["churned", "unknown_account"]


def test_every_step_that_applies_the_model_takes_zero_and_one_row(project):
    validated = load(project / "clean")
    feats = features_at(validated, data_end(validated), FeatureConfig(), LabelSpec())
    model = mlflow.pyfunc.load_model(str(project / "data" / "model" / "mlflow"))
    cm = model.unwrap_python_model()
    reference = Reference.read(project / "data" / "model" / "reference.json")
    for n in (0, 1):
        part = feats.head(n)
        assert cm.predict_proba(part).shape == (n,) and raw_score(cm, part).shape == (n,)
        contrib = contributions(cm, part)
        assert contrib.shape == (n, len(cm.features) + 1)
        np.testing.assert_allclose(contrib.sum(axis=1), raw_score(cm, part))
        assert len(reasons(cm, part, contrib=contrib)) == n
        assert drift_report(part, reference)["checked"] is False
        assert len(tier_bounds(pd.Series(cm.predict_proba(part)), Settings())) == 3
        out, facts = score_features(cm, part, Settings(), reference, progress=False)
        assert len(out) == n and facts["rows_with_reasons"] == n  # one row is the top 5%
