"""Data lineage: a model knows the data it was trained on; champions are per lineage and
scoring never silently uses a model trained on other data. Real MLflow SQLite stores."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import mlflow
import pandas as pd
import pytest
import yaml
from mlflow.tracking import MlflowClient

from models.churn_model import ChurnModel
from models.estimator import make_lgbm
from models.lineage import (
    FINGERPRINT_NAME,
    describe,
    from_tags,
    lineage_alias,
    slug,
)
from models.metrics import binary_metrics
from models.tracking import CHALLENGER, CHAMPION, configure, default_uri, set_aliases
from pipeline.errors import UserError
from pipeline.evaluate import promote
from pipeline.lineage import data_lineage, fingerprint, source_of
from pipeline.paths import PACKAGE_ROOT
from pipeline.registry import load_scoring_model
from pipeline.simulate import SimConfig
from pipeline.simulate import write as simulate
from pipeline.store import load
from tests.test_badinput_validate import run_cli
from tests.test_model_infold import synthetic_frame

NAME = "churn-risk-lineage"


# --- the fingerprint and the aliases, by themselves ---------------------------------------


def test_aliases_are_valid_and_distinct_per_lineage():
    keys = ["data/raw", "data-raw", "/exports/acme 2025-07/ü", "acme", "a" * 300]
    aliases = [lineage_alias(CHAMPION, k) for k in keys]
    assert len(set(aliases)) == len(keys)  # the hash tells data/raw from data-raw
    assert all(re.fullmatch(r"champion-[A-Za-z0-9_-]+", a) and len(a) < 64 for a in aliases)
    assert lineage_alias(CHAMPION, "data/raw").startswith("champion-data-raw-")
    assert slug("acme") == slug("acme") != slug("acme2")


def test_source_is_relative_inside_the_project_so_copies_agree(tmp_path, monkeypatch):
    """DVC runs queued experiments in copies of the repository: the source must not differ."""
    monkeypatch.delenv("DVC_ROOT", raising=False)
    seen = []
    for copy in ("repo", "repo/.dvc/tmp/exps/tmp1"):
        root = tmp_path / copy
        (root / "data" / "raw").mkdir(parents=True)
        (root / "dvc.yaml").write_text("stages: {}\n")
        monkeypatch.chdir(root)
        seen.append(source_of(root / "data" / "raw"))
    assert seen == ["data/raw", "data/raw"]
    outside = tmp_path / "exports" / "cdnow"
    outside.mkdir(parents=True)
    assert source_of(outside) == outside.resolve().as_posix()


def test_the_lineage_param(world_dir, tmp_path):
    code, _, err = run_cli("validate", "--data", str(world_dir), "--out", str(tmp_path / "c"))
    assert code == 0, err
    validated = load(tmp_path / "c")
    assert validated.source == world_dir.resolve().as_posix()
    plain = fingerprint(validated, data_lineage({"data": {"lineage": None}}))
    assert plain["lineage"] == plain["source"] == validated.source
    assert plain["lineage_from"] == "source" and plain["accounts"] == 3
    assert plain["tables"]["orders"][:4] == ["order_id", "account_id", "order_date", "amount"]
    assert (plain["data_start"], plain["data_end"]) == ("2022-11-05", "2023-03-20")
    named = fingerprint(validated, data_lineage({"data": {"lineage": "acme"}}))
    assert named["lineage"] == "acme" and named["lineage_from"] == "data.lineage"
    assert "lineage 'acme'" in describe(named) and validated.source in describe(named)
    assert data_lineage({"data": {"lineage": " "}}) is None
    with pytest.raises(UserError, match="data.lineage must be a name"):
        data_lineage({"data": {"lineage": ["a"]}})


# --- (a) champion/challenger within one lineage ------------------------------------------


def _fp(lineage: str) -> dict:
    return {"lineage": lineage, "lineage_from": "source", "source": lineage}


@pytest.fixture
def two_lineages(tmp_path, monkeypatch):
    """A real store with four registered versions: weak and good models for lineages A and B."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", default_uri(tmp_path))
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", default_uri(tmp_path))
    configure(tmp_path, "test")
    frame = synthetic_frame(seed=5, accounts=150, cutoffs=4)
    feats = ["days_since_last_contact", "days_since_last_order", "orders_recent", "noise"]
    good = make_lgbm({"seed": 1, "n_estimators": 30, "num_leaves": 7}).fit(
        frame[feats], frame["label"]
    )
    weak = make_lgbm({"seed": 1, "n_estimators": 5, "num_leaves": 2}).fit(
        frame[["noise"]], frame["label"]
    )
    versions, scores = {}, {}
    for key, est, fs in (("a_weak", weak, ["noise"]), ("b_good", good, feats),
                         ("b_weak", weak, ["noise"]), ("a_good", good, feats)):  # fmt: skip
        model = ChurnModel(est, fs, {}, {})
        with mlflow.start_run():
            info = mlflow.pyfunc.log_model(
                name="model", python_model=model, registered_model_name=NAME,
                pip_requirements=["lightgbm"],
            )  # fmt: skip
        versions[key] = str(info.registered_model_version)
        scores[key] = binary_metrics(frame["label"].to_numpy(), model.predict_proba(frame))["auc"]
    yield tmp_path, frame, versions, scores
    mlflow.set_tracking_uri(None)


def test_each_lineage_has_its_own_champion(two_lineages):
    root, frame, v, auc = two_lineages
    params = {"mlflow": {"experiment": "test", "registered_model": NAME},
              "promote": {"metric": "auc", "margin": 0.01}}  # fmt: skip
    a, b = "data/raw", "/exports/cdnow"
    client = MlflowClient()

    def holder(alias: str) -> str:
        return str(client.get_model_version_by_alias(NAME, alias).version)

    def train_and_evaluate(key: str, lineage: str):
        first = set_aliases(NAME, v[key], lineage)  # the train stage
        info = {"version": v[key], "data": _fp(lineage)}
        return first, promote(root, params, info, frame, auc[key])  # the evaluate stage

    first, d = train_and_evaluate("a_weak", a)
    assert first and d.promote and d.first
    assert d.reason == "the first model trained on this data: nothing to compare it with"
    assert "promoted" not in d.message() and "already" not in d.message()
    assert "data 'data/raw'" in d.message() and d.lineage == a

    # B's first model, better than A's champion: B's champion, compared with nothing of A's
    first, d = train_and_evaluate("b_good", b)
    assert auc["b_good"] > auc["a_weak"] + 0.01
    assert first and d.promote and d.champion_version == v["b_good"] and d.champion_score is None
    assert holder(lineage_alias(CHAMPION, a)) == v["a_weak"]  # A keeps its champion
    assert holder(lineage_alias(CHAMPION, b)) == v["b_good"]
    assert holder(CHAMPION) == holder(CHALLENGER) == v["b_good"]  # the newest, for old users

    # a weaker B model is compared with B's champion, not A's weaker one: not promoted
    first, d = train_and_evaluate("b_weak", b)
    assert not first and not d.promote and d.champion_version == v["b_good"]
    assert d.champion_score == pytest.approx(auc["b_good"])
    assert holder(lineage_alias(CHAMPION, b)) == v["b_good"]
    assert holder(lineage_alias(CHALLENGER, b)) == holder(CHALLENGER) == v["b_weak"]

    # a better A model beats A's champion only; B's champion stays
    first, d = train_and_evaluate("a_good", a)
    assert not first and d.promote and d.champion_version == v["a_weak"]
    assert holder(lineage_alias(CHAMPION, a)) == v["a_good"]
    assert holder(lineage_alias(CHAMPION, b)) == v["b_good"]
    assert holder(CHAMPION) == v["a_good"]


# --- (b, c, d) validate -> featurize -> train -> registry -> score ------------------------


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A project with a small simulated world (lineage 'acme') validated, featurized and
    trained into its own MLflow store; and a copy of the world in another folder."""
    root = tmp_path_factory.mktemp("lineage")
    patch = pytest.MonkeyPatch()
    patch.setenv("DVC_ROOT", str(root))
    patch.setenv("MLFLOW_TRACKING_URI", default_uri(root))
    patch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    simulate(SimConfig(n_accounts=300, seed=4, weeks=104, mc_samples=0), root / "raw",
             root / "truth.parquet", "parquet")  # fmt: skip
    shutil.copytree(root / "raw", root / "raw_b")
    params = yaml.safe_load((PACKAGE_ROOT / "params.yaml").read_text())
    params["data"].update(truth="", lineage="acme")
    params["train"].update(n_estimators=40, early_stopping_rounds=10, blend=False)
    (root / "acme.yaml").write_text(yaml.safe_dump(params))
    params["data"]["lineage"] = None
    (root / "plain.yaml").write_text(yaml.safe_dump(params))
    for cmd in (
        ["validate", "--data", str(root / "raw"), "--out", str(root / "clean")],
        ["validate", "--data", str(root / "raw_b"), "--out", str(root / "clean_b")],
        ["featurize", "--data", str(root / "clean"), "--out", str(root / "features"),
         "--params", str(root / "acme.yaml")],
        ["train", "--frame", str(root / "features"), "--model-out", str(root / "data" / "model"),
         "--params", str(root / "acme.yaml")],
    ):  # fmt: skip
        code, out, err = run_cli(*cmd)
        assert code == 0, out + err
    yield root, out
    patch.undo()
    mlflow.set_tracking_uri(None)


def _score(root: Path, data: str, *args: str) -> tuple[int, str, Path]:
    out = root / "outputs" / f"{data}-{len(list(root.glob('outputs/*')))}.csv"
    code, stdout, stderr = run_cli(
        "score", "--data", str(root / data), "--all-active", "--out", str(out), *args
    )
    return code, stdout + stderr, out


def test_the_fingerprint_goes_from_validate_to_the_registry(trained):
    root, train_output = trained
    report = json.loads((root / "clean" / "validation.json").read_text())
    assert report["source"] == "raw"  # relative: inside the project (DVC_ROOT)
    expected = fingerprint(load(root / "clean"), "acme")
    assert expected["source"] == report["source"] and expected["accounts"] == 300
    assert set(expected["tables"]) == {"accounts", "orders", "interactions", "links", "churn"}
    meta = json.loads((root / "features" / "meta.json").read_text())
    assert meta["data"] == expected
    info = json.loads((root / "data" / "model" / "train_info.json").read_text())
    assert info["data"] == expected and info["champion"] is True
    assert "(champion: first model trained on this data)" in train_output
    client = MlflowClient()
    mv = client.get_model_version("churn-risk", info["version"])
    assert mv.tags["data.lineage"] == "acme" and mv.tags["data.source"] == expected["source"]
    assert from_tags(mv.tags) == expected
    run = client.get_run(info["run_id"])
    assert run.data.tags["data.lineage"] == "acme"
    assert mlflow.artifacts.load_dict(f"runs:/{info['run_id']}/{FINGERPRINT_NAME}") == expected
    champion = client.get_model_version_by_alias("churn-risk", lineage_alias(CHAMPION, "acme"))
    assert str(champion.version) == info["version"]


def test_scoring_uses_the_champion_of_the_datas_lineage(trained):
    root, _ = trained
    code, output, out = _score(root, "clean", "--params", str(root / "acme.yaml"))
    assert code == 0, output
    meta = json.loads(out.with_name(out.stem + ".meta.json").read_text())
    assert meta["model_version"] == "churn-risk/1" and meta["model_note"] is None
    assert meta["model_data"]["lineage"] == "acme"
    # another export folder continuing the lineage (data.lineage: acme) uses the same champion
    acme = yaml.safe_load((root / "acme.yaml").read_text())
    loaded, reference = load_scoring_model(acme, None, load(root / "clean_b"))
    assert (loaded.version, loaded.note, reference is not None) == ("churn-risk/1", None, True)


def test_no_champion_for_this_data_is_a_clear_error_naming_both(trained):
    """Lineage B (raw_b, no data.lineage) when only lineage 'acme' has a champion."""
    root, _ = trained
    params = yaml.safe_load((root / "plain.yaml").read_text())
    with pytest.raises(UserError) as caught:
        load_scoring_model(params, None, load(root / "clean_b"))
    message = str(caught.value)
    assert caught.value.exit_code == 2
    assert message.startswith("no model trained on the data being scored")
    source_a, source_b = "raw", "raw_b"  # relative to the project root
    assert f"scoring: {source_b} [300 accounts;" in message
    assert f"the registry's 'champion' churn-risk/1, trained on lineage 'acme' ({source_a})" in (
        message
    )
    assert f"the DVC-tracked model {root / 'data' / 'model' / 'mlflow'}, trained on" in message
    assert f"dvc exp run -S data.raw={source_b}" in message and "--model" in message
    code, output, out = _score(root, "clean_b", "--params", str(root / "plain.yaml"))
    assert code == 2 and "Traceback" not in output and not out.exists()
    assert "error: no model trained on the data being scored" in output


def test_a_model_named_explicitly_scores_with_a_note(trained):
    root, _ = trained
    plain = ["--params", str(root / "plain.yaml")]
    code, output, out = _score(root, "clean_b", "--model", "models:/churn-risk/1", *plain)
    assert code == 0, output
    assert "note: the model models:/churn-risk/1 was trained on lineage 'acme' (raw) [300 " in (
        output
    )
    assert "not on the data being scored (raw_b [300 accounts" in output
    meta = json.loads(out.with_name(out.stem + ".meta.json").read_text())
    assert "trained on lineage 'acme'" in meta["model_note"]
    assert meta["model_data"]["lineage"] == "acme"
    assert pd.read_csv(out)["status"].eq("scored").all()
    # the DVC-tracked folder, named: its train_info.json says what it was trained on
    params = yaml.safe_load((root / "plain.yaml").read_text())
    loaded, _ = load_scoring_model(params, str(root / "data" / "model"), load(root / "clean_b"))
    assert loaded.version == "churn-risk/1" and "trained on lineage 'acme'" in loaded.note
    # the same model on its own lineage: no note
    acme = yaml.safe_load((root / "acme.yaml").read_text())
    loaded, _ = load_scoring_model(acme, "models:/churn-risk/1", load(root / "clean"))
    assert loaded.note is None and loaded.fingerprint["lineage"] == "acme"
    # a model without a record of its data (trained before lineage) is unknown: a note too
    bare = root / "bare"
    shutil.copytree(root / "data" / "model" / "mlflow", bare)
    loaded, _ = load_scoring_model(acme, str(bare), load(root / "clean"))
    assert loaded.fingerprint is None and "data of unknown lineage" in loaded.note


def test_a_model_saved_with_other_packages_is_named_in_a_warning(tmp_path, caplog):
    """The saved model's requirements are checked against this environment by name, as
    MLflow's loader would: a pin that differs and a package that is missing are named."""
    from models.tracking import check_environment

    (tmp_path / "requirements.txt").write_text(
        "# saved by mlflow\nnumpy==0.0.1\npandas>=1\naftersale-no-such-package==1.0\n"
        "pyarrow>=1; python_version < '3'\n"
    )
    with caplog.at_level("WARNING"):
        unmet = check_environment(tmp_path)
    assert unmet[0].startswith("numpy==0.0.1 (installed: ") and not unmet[0].endswith("none)")
    assert unmet[1:] == ["aftersale-no-such-package==1.0 (installed: none)"]
    assert "was saved with other packages than these: numpy==0.0.1" in caplog.text
    (tmp_path / "requirements.txt").write_text("numpy>=1\n")
    assert check_environment(tmp_path) == []
