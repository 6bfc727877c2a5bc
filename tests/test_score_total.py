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
from pipeline.contract import parse_date
from pipeline.engine import features_at
from pipeline.errors import UserError
from pipeline.io import numbers, read_table
from pipeline.labels import LabelSpec
from pipeline.lineage import fingerprint
from pipeline.paths import PACKAGE_ROOT
from pipeline.scoring import score_features
from pipeline.simulate import SimConfig
from pipeline.simulate import write as simulate
from pipeline.store import data_end, load
from pipeline.tiers import Settings, tier_bounds
from tests.conftest import copied, score
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
def project(tmp_path_factory, built_once) -> Path:
    """A project folder: params.yaml, a small simulated world (raw and clean) and a blended,
    calibrated DVC-tracked model with a reference profile, trained on that data. Built once
    in the run (this module, tests/test_score_fuzz.py and tests/test_monitor.py use it); each
    module writes its score runs into a copy of its own."""
    return copied(built_once("total-project", build_project), tmp_path_factory.mktemp("total"))


def build_project(root: Path) -> None:
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


# --- values from outside the tables: one date parser, one CSV reader -----------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025-02-01", "2025-02-01 00:00:00"),
        (" 2025-02-01 ", "2025-02-01 00:00:00"),
        ("2025-02-01T00:00:00Z", "2025-02-01 00:00:00"),
        ("2025-02-01 09:30", "2025-02-01 09:30:00"),
        ("2025-02-01T09:30:00.5+0100", "2025-02-01 08:30:00.5"),
        ("2025-02-01T23:30-05:00", "2025-02-02 04:30:00"),
        ("2025-02-01T01:00+02", "2025-01-31 23:00:00"),
    ],
)
def test_iso_dates_are_read_on_the_data_clock(text, expected):
    assert parse_date(text, "--as-of") == pd.Timestamp(expected)


@pytest.mark.parametrize(
    "text", ["01.02.2025", "02/01/2025", "2025/02/01", "20250201", "1 Feb 2025", "2025-02-30", ""]
)
def test_other_date_spellings_are_refused(text):
    with pytest.raises(UserError, match="--as-of .* use YYYY-MM-DD, or a date-time such as"):
        parse_date(text, "--as-of")


@pytest.mark.parametrize(
    ("as_of", "written"),
    [("2024-06-01T00:00:00Z", "2024-06-01"), ("2024-06-01T23:30:00-05:00", "2024-06-02")],
)
def test_an_as_of_with_a_time_zone_scores_on_the_data_clock(env, everyone, as_of, written):
    code, output, out = score(env, "--accounts", str(listed(env, ["NOPE"])), "--as-of", as_of)
    assert code == 0, output
    assert pd.read_csv(out)["as_of"].tolist() == [written]


@pytest.mark.parametrize("command", ["score", "featurize", "explain"])
def test_an_ambiguous_as_of_is_exit_2_in_every_command(env, command):
    args = {
        "score": ["--all-active", "--out", str(env / "never.csv")],
        "featurize": ["--out", str(env / "never.csv")],
        "explain": ["A000001", "--out", str(env / "never.png")],
    }[command]
    code, out, err = run_cli(command, "--data", str(env / "clean"), "--as-of", "01.02.2024", *args)
    assert code == 2 and "Traceback" not in err
    assert "--as-of '01.02.2024' is not a date; use YYYY-MM-DD" in err
    assert not any(env.glob("never.*"))


def test_validate_end_date_takes_the_same_forms(env, tmp_path):
    code, _, err = run_cli(
        "validate",
        "--data",
        str(env / "raw"),
        "--out",
        str(tmp_path / "c"),
        "--end-date",
        "14.07.2024",
    )
    assert code == 2 and "validate.end_date '14.07.2024' is not a date" in err
    code, _, err = run_cli(
        "validate", "--data", str(env / "raw"), "--out", str(tmp_path / "c"),
        "--end-date", "2024-07-14T23:00:00+00:00",
    )  # fmt: skip
    assert code == 0, err


def test_a_spreadsheet_resaved_previous_file_is_refused_naming_the_column(env, everyone):
    """`;` and decimal commas: read with the delimiter sniffed, then p_churn is not numbers."""
    path = Path(tempfile.mkdtemp(dir=env)) / "previous.csv"
    head = everyone.head(3)[["account_id", "p_churn"]]
    head.assign(p_churn=head["p_churn"].map(lambda v: f"{v:.6f}".replace(".", ","))).to_csv(
        path, sep=";", index=False
    )
    code, output, out = score(env, "--all-active", "--previous", str(path))
    assert code == 2 and "Traceback" not in output and not out.exists()
    assert (
        f"{path}: column p_churn of the previous score file has 3 value(s) that are not " in output
    )
    assert "row 1: '" in output and "a dot as decimal separator" in output


def test_a_previous_file_with_semicolons_and_dots_is_read(env, everyone):
    path = Path(tempfile.mkdtemp(dir=env)) / "previous.csv"
    head = everyone.head(3)[["account_id", "p_churn"]].assign(p_churn=[0.5, 0.25, None])
    head.to_csv(path, sep=";", index=False)
    code, output, out = score(env, "--accounts", str(listed(env, head["account_id"].tolist())),
                              "--previous", str(path))  # fmt: skip
    assert code == 0, output
    frame = pd.read_csv(out)
    expected = (everyone.head(2)["p_churn"].to_numpy() - [0.5, 0.25]).round(6)
    np.testing.assert_allclose(frame["p_churn_change"].head(2), expected)
    assert np.isnan(frame["p_churn_change"].iloc[2])  # no earlier score: a new account


def test_a_previous_file_from_the_same_day_or_later_is_refused(env, everyone):
    path = Path(tempfile.mkdtemp(dir=env)) / "previous.csv"
    everyone.head(3).to_csv(path, index=False)  # as_of: the data's end, the default as-of
    code, output, _ = score(env, "--all-active", "--previous", str(path))
    assert code == 2 and "not before --as-of" in output
    later = everyone.head(3).assign(as_of="3.2.2024")
    later.to_csv(path, index=False)
    code, output, _ = score(env, "--all-active", "--previous", str(path))
    assert code == 2 and "as_of '3.2.2024' is not a date" in output


def test_account_lists_go_through_the_one_reader(env, everyone):
    """Semicolons, Latin-1 and a UTF-8 BOM read as validate reads them; ids stay text."""
    ids = everyone.head(2)["account_id"].tolist()
    folder = Path(tempfile.mkdtemp(dir=env))
    (folder / "semi.csv").write_text(f"note;account_id\nKöln;{ids[0]}\nWien;{ids[1]}\n", "latin-1")
    (folder / "bom.csv").write_text(f"\ufeffaccount_id\n{ids[0]}\n007\n", "utf-8")
    code, output, out = score(env, "--accounts", str(folder / "semi.csv"))
    assert code == 0, output
    frame = pd.read_csv(out)
    assert frame["note"].tolist() == ["Köln", "Wien"] and frame["status"].eq("scored").all()
    code, output, out = score(env, "--accounts", str(folder / "bom.csv"))
    assert code == 0, output
    assert pd.read_csv(out, dtype=str)["account_id"].tolist() == [ids[0], "007"]
    (folder / "ragged.csv").write_text(f"account_id,x\n{ids[0]},1\n{ids[1]},2,3,4\n")
    code, output, out = score(env, "--accounts", str(folder / "ragged.csv"))
    assert code == 2 and "line(s) of the account list cannot be read (line 3" in output


def test_numbers_are_read_as_validate_reads_them(tmp_path):
    frame = pd.DataFrame({"p": [" 0.5", "NA", "", "1e-3", None]})
    np.testing.assert_array_equal(
        numbers(frame, "p", tmp_path / "f.csv"), [0.5, np.nan, np.nan, 0.001, np.nan]
    )
    for bad in ("1,5", "0.5%", "inf", "1.234,5"):
        with pytest.raises(UserError, match="column p of the file has 1 value"):
            numbers(pd.DataFrame({"p": ["0.1", bad]}), "p", tmp_path / "f.csv")
    assert read_table(_csv(tmp_path, "a;b\n1;2,5\n"))["b"].tolist() == ["2,5"]  # text, unread


def _csv(folder: Path, text: str) -> Path:
    path = folder / "t.csv"
    path.write_text(text)
    return path


# --- one loading path -----------------------------------------------------------------------------


def test_a_raw_folder_is_checked_with_the_validate_settings(env, tmp_path):
    """A company's own words (validate.vocabulary) count the same whether the command is given
    the raw folder or the validate stage's clean one."""
    raw = tmp_path / "raw"
    shutil.copytree(env / "raw", raw)
    interactions = pd.read_csv(raw / "interactions.csv", dtype=str)
    interactions["type"] = interactions["type"].replace({"complaint": "Beschwerde"})
    interactions.to_csv(raw / "interactions.csv", index=False)
    params = yaml_params(env, tmp_path, {"interactions.type": {"beschwerde": "complaint"}})
    as_of = "2024-05-01"
    run = [("--data", str(raw)), ("--data", str(tmp_path / "clean"))]
    code, _, err = run_cli("validate", "--data", str(raw), "--out", str(tmp_path / "clean"),
                           "--params", str(params))  # fmt: skip
    assert code == 0, err
    frames = []
    for data in run:
        out = tmp_path / f"f{len(frames)}.csv"
        code, _, err = run_cli("featurize", *data, "--as-of", as_of, "--out", str(out),
                               "--params", str(params))  # fmt: skip
        assert code == 0, err
        frames.append(pd.read_csv(out))
    pd.testing.assert_frame_equal(frames[0], frames[1])
    assert frames[0]["complaints_recent"].sum() > 0
    code, _, err = run_cli("featurize", "--data", str(raw), "--as-of", as_of, "--out",
                           str(tmp_path / "f9.csv"))  # default params: no such word  # fmt: skip
    assert code == 0, err
    assert pd.read_csv(tmp_path / "f9.csv")["complaints_recent"].sum() == 0


def yaml_params(env: Path, folder: Path, vocabulary: dict) -> Path:
    import yaml

    params = yaml.safe_load((env / "params.yaml").read_text())
    params["validate"]["vocabulary"] = vocabulary
    path = folder / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return path
