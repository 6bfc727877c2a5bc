"""Spark parity: the same Ibis feature definitions give the same features on PySpark as on
DuckDB, and the MLflow model applied by `mlflow.pyfunc.spark_udf` gives the same scores as
pandas. One local Spark session serves the whole module (local[2], two shuffle partitions)."""

from __future__ import annotations

import os
from pathlib import Path

import lightgbm as lgb
import mlflow.pyfunc
import numpy as np
import pandas as pd
import pytest
import yaml

from features import CATALOG, FeatureConfig
from features.build import KEYS
from models.churn_model import ChurnModel
from models.tracking import LoadedModel
from pipeline import spark
from pipeline.checking import check
from pipeline.engine import features_at
from pipeline.frame import training_frame
from pipeline.labels import LABEL, LabelSpec
from pipeline.paths import PACKAGE_ROOT
from pipeline.scoring import predict
from pipeline.simulate import SimConfig
from pipeline.simulate import write as simulate
from pipeline.store import load, write_clean
from tests.conftest import T, tiny_world, write_world
from tests.test_badinput_validate import run_cli

RTOL = 1e-9
CUTOFFS = [T("2024-03-04"), T("2024-04-01"), T("2024-04-29")]


def assert_same_frame(duck: pd.DataFrame, sp: pd.DataFrame) -> dict[str, float]:
    """Same columns, types, rows (keys in order) and nulls; values equal to RTOL relative.

    Returns what was compared: rows, value columns, cells and the largest differences."""
    assert list(sp.columns) == list(duck.columns)
    assert dict(sp.dtypes.astype(str)) == dict(duck.dtypes.astype(str))
    assert len(duck) > 0 and len(sp) == len(duck)
    for key in KEYS:
        assert sp[key].tolist() == duck[key].tolist(), key
    worst_abs = worst_rel = 0.0
    values = [c for c in duck.columns if c not in KEYS]
    for c in values:
        a, b = duck[c].to_numpy("float64"), sp[c].to_numpy("float64")
        assert np.array_equal(np.isnan(a), np.isnan(b)), f"{c}: nulls differ"
        known = ~np.isnan(a)
        np.testing.assert_allclose(b[known], a[known], rtol=RTOL, atol=0, err_msg=c)
        diff = np.abs(a[known] - b[known])
        if diff.size:
            worst_abs = max(worst_abs, float(diff.max()))
            scale = np.where(a[known] == 0, 1.0, np.abs(a[known]))
            worst_rel = max(worst_rel, float((diff / scale).max()))
    return {"rows": len(duck), "columns": len(values), "abs": worst_abs, "rel": worst_rel}


@pytest.fixture(scope="module")
def con():
    """The Ibis connection on this module's Spark session, stopped at the end. The JVM compiles
    with its quick JIT only: on a small world that more than halves the time of the first
    queries (measured 40 s against 102 s for the first features at one cutoff)."""
    quick = {"spark.driver.extraJavaOptions": "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"}
    environ = dict(os.environ)  # a local session sets a few variables for its workers
    session = spark.session("local[2]", quick)
    yield spark.connect(session)
    session.stop()
    os.environ.clear()
    os.environ.update(environ)


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    """A small simulated world, validated: 60 accounts over a year and a half of weeks."""
    root = tmp_path_factory.mktemp("spark_world")
    config = SimConfig(n_accounts=60, seed=3, weeks=78, mc_samples=1)
    simulate(config, root / "raw", root / "truth.parquet", "parquet")
    write_clean(check(root / "raw"), root / "clean")
    return root / "clean"


def test_training_frame_on_spark_matches_duckdb(con, world):
    """Three cutoffs: DuckDB by its default engine for a schedule (sliding windows), Spark by
    the join engine; every feature and the label agree."""
    validated = load(world)
    duck, mode = training_frame(validated, CUTOFFS, FeatureConfig(), LabelSpec())
    sp, sp_mode = spark.training_frame(validated, CUTOFFS, FeatureConfig(), LabelSpec(), con=con)
    assert sp_mode == mode == "explicit"
    compared = assert_same_frame(duck, sp)
    assert compared["columns"] >= 55  # every feature group is present in the simulated world
    assert set(sp["cutoff"]) == set(CUTOFFS)
    assert sp[LABEL].sum() > 0  # some churn to agree on
    assert sp.drop(columns=KEYS).isna().any().any()  # and some unknowns to agree on
    print(f"training frame parity: {compared}")


def test_features_on_the_hand_made_world_through_the_cli(tmp_path, con):
    """`churn featurize --engine spark` on the tiny world (missing deliveries, unresolved
    complaints, ended links) writes what the DuckDB engine writes."""
    raw = write_world(tiny_world(), tmp_path / "raw")
    code, _, err = run_cli("validate", "--data", str(raw), "--out", str(tmp_path / "clean"))
    assert code == 0, err
    outs = run_both(
        tmp_path,
        ".parquet",
        "featurize",
        "--data",
        str(tmp_path / "clean"),
        "--as-of",
        "2023-03-21",
        "--params",
        str(PACKAGE_ROOT / "params.yaml"),
    )
    for _, stdout in outs.values():
        assert f"2 accounts x {len(CATALOG)} features as of 2023-03-21" in stdout
    duck, sp = (pd.read_parquet(outs[e][0]) for e in ("duckdb", "spark"))
    compared = assert_same_frame(duck, sp)
    assert compared["rows"] == 2  # a and c; b churned on 2023-03-20
    print(f"tiny world parity: {compared}")


def test_bad_engine_is_a_clear_error(tmp_path):
    code, _, err = run_cli("featurize", "--as-of", "2023-03-21", "--engine", "polars")
    assert code == 2 and "--engine must be duckdb or spark" in err


@pytest.fixture(scope="module")
def model(world, tmp_path_factory) -> tuple[LoadedModel, Path]:
    """A small LightGBM fitted on the world's DuckDB training frame, saved as an MLflow model."""
    frame, _ = training_frame(load(world), CUTOFFS, FeatureConfig(), LabelSpec())
    features = [c for c in frame.columns if c not in (*KEYS, LABEL)]
    estimator = lgb.LGBMClassifier(
        n_estimators=30, num_leaves=7, min_child_samples=5, random_state=0, verbose=-1
    ).fit(frame[features].astype("float64"), frame[LABEL])
    churn_model = ChurnModel(estimator, features, FeatureConfig().__dict__, {"mode": "auto"})
    path = tmp_path_factory.mktemp("model") / "mlflow"
    mlflow.pyfunc.save_model(str(path), python_model=churn_model, pip_requirements=[])
    return LoadedModel(mlflow.pyfunc.load_model(str(path)), "test"), path


def test_spark_udf_scores_match_pandas(con, world, model):
    """Probabilities by the MLflow model's spark_udf equal the pandas ones, row for row."""
    model, _ = model
    duck = features_at(load(world), T("2024-05-27"), FeatureConfig(), LabelSpec())
    duck = duck.sample(frac=1, random_state=0)  # any row order and index comes back aligned
    expected = predict(model, duck)
    got = predict(model, duck, "spark")
    assert len(got) == len(duck) > 20
    assert np.unique(expected).size > 5  # the model tells accounts apart
    np.testing.assert_array_equal(got, expected)
    print(f"score parity: {len(got)} accounts, max |diff| {np.abs(got - expected).max()}")


def test_churn_score_engine_spark(tmp_path, world, model, con, monkeypatch):
    """`churn score --engine spark` writes the same score file as the default engine."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    outs = run_both(
        tmp_path,
        ".csv",
        "score",
        "--data",
        str(world),
        "--all-active",
        "--as-of",
        "2024-05-27",
        "--model",
        str(model[1]),
        "--previous",  # an earlier file, so that neither engine scores a second date
        str(_empty_previous(tmp_path)),
        "--params",  # reasons for every tier: this small model puts few accounts in high
        str(_reasons_for_all(tmp_path)),
    )
    duck, sp = (pd.read_csv(outs[e][0]) for e in ("duckdb", "spark"))
    assert len(duck) > 20 and duck["p_churn"].notna().all() and duck["reason_1"].notna().any()
    reasons = ["reason_1", "reason_2", "reason_3"]
    pd.testing.assert_frame_equal(sp.drop(columns=reasons), duck.drop(columns=reasons))
    # The same words; the values they quote agree but for the last digit of a value that sits
    # on a rounding boundary (the engines add floats in different orders).
    for column in reasons:
        words = [
            f.fillna("").str.replace(NUMBER, "#", regex=True) for f in (sp[column], duck[column])
        ]
        pd.testing.assert_series_equal(*words)
        numbers = [
            f.fillna("").str.findall(NUMBER).explode().dropna() for f in (sp[column], duck[column])
        ]
        got, want = (n.str.replace(",", "").astype(float).to_numpy() for n in numbers)
        np.testing.assert_allclose(got, want, rtol=1e-3)


def run_both(tmp_path: Path, suffix: str, *args: str) -> dict[str, tuple[Path, str]]:
    """`churn ARGS --engine E --out FILE` with DuckDB, then Spark: (file, stdout) by engine."""
    outs = {}
    for engine in ("duckdb", "spark"):
        out = tmp_path / f"{engine}{suffix}"
        code, stdout, err = run_cli(*args, "--engine", engine, "--out", str(out))
        assert code == 0, err
        outs[engine] = (out, stdout)
    return outs


NUMBER = r"-?\d[\d,]*(?:\.\d+)?"  # a value as reasons write it: 5,146 or -7.5


def _reasons_for_all(folder: Path) -> Path:
    """params.yaml with reasons (TreeSHAP on the driver) for every tier."""
    params = yaml.safe_load((PACKAGE_ROOT / "params.yaml").read_text())
    params["score"]["reasons"]["tiers"] = list(params["score"]["tiers"])
    path = folder / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


def _empty_previous(folder: Path) -> Path:
    path = folder / "previous.csv"
    pd.DataFrame({"account_id": ["none"], "p_churn": [0.5]}).to_csv(path, index=False)
    return path


def test_a_degenerate_world_on_spark_matches_duckdb(con, tmp_path):
    """The fixed degenerate world of tests/test_degenerate.py (orders of 0 and of equal amounts
    on one day, a one-order account, a first order the day before the cutoff, an account
    without orders, all-empty quantity, delivered_date, minutes, resolved_at and contact_id,
    links of zero length): Spark raises nothing and gives DuckDB's features, none infinite."""
    from tests.test_degenerate import CFG, CUTOFF, LABELS, SCHEDULE, spark_world, validated

    result = validated(spark_world(), "csv", tmp_path / "raw")
    duck = features_at(result, CUTOFF, CFG, LABELS)
    sp = spark.features_at(result, CUTOFF, CFG, LABELS, con=con)
    at = assert_same_frame(duck, sp)
    duck_frame, _ = training_frame(result, SCHEDULE, CFG, LABELS)
    sp_frame, _ = spark.training_frame(result, SCHEDULE, CFG, LABELS, con=con)
    frame = assert_same_frame(duck_frame, sp_frame)
    for f in (sp, sp_frame):
        values = f.drop(columns=KEYS).to_numpy("float64")
        assert not np.isinf(values).any() and np.isnan(values).any()
    assert pd.isna(duck.set_index("account_id").loc["a", "order_log_value_shift"])  # ln(0)
    print(f"degenerate world parity: at the cutoff {at}, training frame {frame}")
