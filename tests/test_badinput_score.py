"""Bad input to `churn score`: dates outside the data, a model that does not fit the data, an
MLflow store that is unreachable or has no champion (fall back to the DVC-tracked model and
say so), awkward customer lists; and score files that run nothing in a spreadsheet."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import lightgbm as lgb
import mlflow.pyfunc
import numpy as np
import pandas as pd
import pytest

from features import FeatureConfig
from models.churn_model import ChurnModel
from pipeline.engine import features_at
from pipeline.labels import LabelSpec
from pipeline.lineage import fingerprint
from pipeline.paths import PACKAGE_ROOT
from pipeline.store import load
from tests.conftest import T, score, tiny_world, write_world
from tests.test_badinput_validate import run_cli

PARAMS = PACKAGE_ROOT / "params.yaml"


def save_model(path: Path, features: list[str]) -> Path:
    """A small LightGBM churn model on the given features, saved as the pipeline saves one."""
    rng = np.random.default_rng(0)
    x = pd.DataFrame(rng.normal(size=(300, len(features))), columns=features)
    y = (x.iloc[:, 0] + rng.normal(size=len(x)) > 0).astype(int)
    estimator = lgb.LGBMClassifier(
        n_estimators=20, num_leaves=4, min_child_samples=5, random_state=0, verbose=-1
    ).fit(x, y)
    model = ChurnModel(estimator, features, {}, {"mode": "auto"})
    mlflow.pyfunc.save_model(str(path), python_model=model, pip_requirements=[])
    return path


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """A project folder: params.yaml, the tiny world's clean data and a DVC-tracked model."""
    root = tmp_path_factory.mktemp("project")
    shutil.copy(PARAMS, root / "params.yaml")
    world = tiny_world()
    world["accounts"].loc[0, "name"] = '=HYPERLINK("http://x","click")'
    raw = write_world(world, root / "raw")
    code, _, err = run_cli("validate", "--data", str(raw), "--out", str(root / "clean"))
    assert code == 0, err
    feats = features_at(load(root / "clean"), T("2023-03-21"), FeatureConfig(), LabelSpec())
    save_model(
        root / "data" / "model" / "mlflow", [c for c in feats if c not in ("account_id", "cutoff")]
    )
    return trained_on(root)


def trained_on(root: Path) -> Path:
    """Record that root/data/model was trained on root/clean, as the train stage does (the
    default model then, when there is no champion)."""
    info = {"data": fingerprint(load(root / "clean"))}
    (root / "data" / "model" / "train_info.json").write_text(json.dumps(info))
    return root


def test_scores_with_the_dvc_model_when_there_is_no_store(env):
    code, output, out = score(env, "--all-active")
    assert code == 0, output
    assert "no MLflow store at sqlite:///" in output
    assert "scoring with the DVC-tracked model" in output
    meta = json.loads(out.with_name("scores.meta.json").read_text())
    assert meta["model_version"].startswith("dvc:") and "DVC-tracked" in meta["model_note"]
    assert meta["scores_sha256"] == hashlib.sha256(out.read_bytes()).hexdigest()


def test_unreachable_store_falls_back_and_says_so(env, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")
    code, output, out = score(env, "--all-active")
    assert code == 0, output
    assert "could not use the champion for this data ('champion-" in output
    assert "of 'churn-risk' in the MLflow store http://127.0.0.1:9" in output
    assert "scoring with the DVC-tracked model" in output and "trained on this data" in output
    assert pd.read_csv(out)["status"].eq("scored").all()


def test_store_without_champion_falls_back_and_says_so(env, monkeypatch, tmp_path):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    code, output, _ = score(env, "--all-active")
    assert code == 0, output
    assert "has no champion for this data (alias 'champion-" in output
    assert "scoring with the DVC-tracked model" in output


def test_no_model_anywhere_is_a_clear_error(env, monkeypatch, tmp_path):
    root = tmp_path / "empty"
    shutil.copytree(env, root, ignore=shutil.ignore_patterns("data"))
    monkeypatch.setenv("DVC_ROOT", str(root))
    code, output, out = score(root, "--all-active")
    assert code == 2 and "Traceback" not in output
    assert "no model to score with: no MLflow store at" in output
    assert "run `dvc repro` (or `make run`) first, or pass --model" in output
    assert not out.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--as-of", "2020-01-01"],
            "--as-of 2020-01-01 is outside the data, which runs from 2022-11-05",
        ),
        (
            ["--as-of", "2024-06-01"],
            "--as-of 2024-06-01 is outside the data, which runs from 2022-11-05",
        ),
        (["--as-of", "soon"], "--as-of 'soon' is not a date; use YYYY-MM-DD"),
        (["--model", "no/such/model"], "no model at no/such/model"),
        (["--accounts", "no_such_list.csv"], "account list not found: no_such_list.csv"),
        ([], "give either --accounts FILE or --all-active"),
    ],
    ids=[
        "as-of before the data",
        "as-of after the data",
        "as-of not a date",
        "no such model",
        "no such list",
        "nothing to score",
    ],
)
def test_clear_errors(env, args, message):
    all_active = [] if any(a in args for a in ("--accounts",)) or not args else ["--all-active"]
    code, output, out = score(env, *all_active, *args)
    assert code == 2, output
    assert message in output and "Traceback" not in output
    assert not out.exists()


def test_a_folder_that_is_not_a_model(env, tmp_path):
    (tmp_path / "notamodel").mkdir()
    code, output, _ = score(env, "--all-active", "--model", str(tmp_path / "notamodel"))
    assert code == 2 and "Traceback" not in output
    assert f"cannot load the model at {tmp_path / 'notamodel'}" in output


def test_model_whose_features_the_data_lacks_names_them(env, tmp_path):
    world = tiny_world()
    del world["links"]
    raw = write_world(world, tmp_path / "raw")
    assert run_cli("validate", "--data", str(raw), "--out", str(tmp_path / "clean"))[0] == 0
    code, stdout, stderr = run_cli(
        "score", "--data", str(tmp_path / "clean"), "--all-active", "--out",
        str(tmp_path / "s.csv"), "--model", str(env / "data" / "model"),  # other data: named
    )  # fmt: skip
    output = stdout + stderr
    assert code == 2 and "Traceback" not in output
    assert "feature(s) this data cannot provide: active_links (needs links" in output


def test_customer_list_columns_are_kept_even_when_named_like_outputs(env, tmp_path):
    listed = tmp_path / "list.csv"
    text = "account_id;status;p_churn;owner\na;key account;high;Jürgen\nzz;lost;;=1+2\n"
    listed.write_bytes(text.encode("latin-1"))  # Latin-1, semicolons
    code, output, out = score(env, "--accounts", str(listed))
    assert code == 0, output
    scores = pd.read_csv(out, dtype=str)
    assert scores["status"].tolist() == ["scored", "unknown_account"]
    assert scores["status_input"].tolist() == ["key account", "lost"]
    assert scores["p_churn_input"].tolist()[0] == "high"
    assert scores["owner"].tolist() == ["Jürgen", "'=1+2"]


def test_list_without_account_id(env, tmp_path):
    (tmp_path / "list.csv").write_text("id,owner\na,ann\n")
    code, output, _ = score(env, "--accounts", str(tmp_path / "list.csv"))
    assert code == 2 and "the account list needs an account_id column; it has: id, owner" in output


def test_empty_list_file(env, tmp_path):
    (tmp_path / "list.csv").write_text("")
    code, output, _ = score(env, "--accounts", str(tmp_path / "list.csv"))
    assert code == 2 and "is empty: the account list needs a header row" in output


def test_score_file_runs_nothing_in_a_spreadsheet(env):
    code, output, out = score(env, "--all-active")
    assert code == 0, output
    text = out.read_text()
    assert "'=HYPERLINK" in text
    for line in text.splitlines():
        for cell in line.split(","):
            assert not cell.startswith(("=", "+", "@")), cell


def test_same_data_same_model_same_bytes(env):
    first = score(env, "--all-active", out="one.csv")[2].read_bytes()
    second = score(env, "--all-active", out="two.csv")[2].read_bytes()
    assert first == second
