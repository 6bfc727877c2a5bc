"""The same data and params give byte-identical clean tables, feature tables and score files."""

from __future__ import annotations

import hashlib
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from features import FeatureConfig
from features.build import KEYS
from models.tracking import LoadedModel
from pipeline.checking import check
from pipeline.engine import features_at
from pipeline.frame import training_frame
from pipeline.io import write_table
from pipeline.labels import LabelSpec
from pipeline.scoring import write_scores
from pipeline.simulate import SimConfig
from pipeline.simulate import write as simulate
from pipeline.store import load, write_clean
from tests.test_badinput_score import save_model

CFG, LABEL = FeatureConfig(), LabelSpec()


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    """A simulated world of 300 accounts over two years."""
    root = tmp_path_factory.mktemp("world")
    simulate(
        SimConfig(n_accounts=300, seed=11, weeks=104, mc_samples=1),
        root / "raw",
        root / "truth.parquet",
        "csv",
    )
    return root / "raw"


def test_clean_tables_are_byte_identical(world, tmp_path):
    for run in ("one", "two"):
        write_clean(check(world), tmp_path / run)
    one = {p.name: digest(p) for p in (tmp_path / "one").iterdir()}
    two = {p.name: digest(p) for p in (tmp_path / "two").iterdir()}
    assert one == two and len(one) == 6


def feature_digests(clean: Path, out: Path, con_factory) -> dict[str, str]:
    """Write features at one cutoff (Parquet, CSV) and a training frame; their digests."""
    out.mkdir()
    validated = check(clean, con=con_factory())
    validated.raise_if_failed()
    cutoffs = list(pd.date_range("2024-01-01", "2024-06-03", freq="42D"))
    feats = features_at(validated, pd.Timestamp("2024-06-03"), CFG, LABEL)
    write_table(feats, out / "features.parquet")
    write_table(feats, out / "features.csv")
    write_table(training_frame(validated, cutoffs, CFG, LABEL)[0], out / "frame.parquet")
    return {p.name: digest(p) for p in out.iterdir()}


def test_feature_tables_are_byte_identical(world, tmp_path):
    write_clean(check(world), tmp_path / "clean")
    one = feature_digests(tmp_path / "clean", tmp_path / "one", duckdb.connect)
    two = feature_digests(tmp_path / "clean", tmp_path / "two", duckdb.connect)
    assert one == two


def test_predictions_are_identical(world, tmp_path):
    write_clean(check(world), tmp_path / "clean")
    validated = load(tmp_path / "clean")
    feats = features_at(validated, pd.Timestamp("2024-06-03"), CFG, LABEL)
    path = save_model(tmp_path / "model", [c for c in feats if c not in KEYS])
    import mlflow.pyfunc

    model = LoadedModel(mlflow.pyfunc.load_model(str(path)), "test")
    tiers = {"high": 0.6, "medium": 0.3, "low": 0.0}
    for run in ("one", "two"):
        write_scores(load(tmp_path / "clean"), model, None, None, tiers, tmp_path / f"{run}.csv")
    assert digest(tmp_path / "one.csv") == digest(tmp_path / "two.csv")
    scores = pd.read_csv(tmp_path / "one.csv")
    assert len(scores) > 100 and scores["p_churn"].nunique() > 10
