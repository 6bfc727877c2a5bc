"""Features are byte-identical whatever the number of DuckDB threads: sums and means add
whole millionths (features.fixed_point.fixed_point), exactly, in any order."""

from __future__ import annotations

import hashlib
from pathlib import Path

import ibis
import pandas as pd
import pyarrow.parquet as pq
import pytest

from features import FeatureConfig
from features.fixed_point import LIMIT, UNIT, fixed_point
from pipeline.checking import check
from pipeline.engine import EngineSpec, features_at
from pipeline.frame import training_frame
from pipeline.labels import LabelSpec
from pipeline.simulate import SimConfig
from pipeline.simulate import write as simulate
from pipeline.store import REPORT_NAME, load, write_clean
from tests.conftest import T

CUTOFF = T("2024-09-02")
SCHEDULE = [T("2024-03-04"), T("2024-05-27"), T("2024-08-19")]


@pytest.fixture(scope="module")
def clean(tmp_path_factory) -> Path:
    """A small simulated world, validated, its files rewritten in row groups of 2,000 rows:
    DuckDB then hands the row groups to its threads in an order that varies run to run, as it
    does with the row groups of a large table (sums of doubles then differ in their bits)."""
    root = tmp_path_factory.mktemp("threads")
    config = SimConfig(n_accounts=400, seed=3, weeks=100, mc_samples=0)
    simulate(config, root / "raw", root / "truth.parquet")
    write_clean(check(root / "raw"), root / "clean")
    report = (root / "clean" / REPORT_NAME).read_text()
    for path in (root / "clean").glob("*.parquet"):
        table = pq.read_table(path)
        pq.write_table(table, path, row_group_size=2_000)
    (root / "clean" / REPORT_NAME).write_text(report)  # newer than the files: still trusted
    assert load(root / "clean").con.execute("SELECT count(*) FROM clean_orders").fetchone()[0]
    return root / "clean"


def digest(frame: pd.DataFrame, path: Path) -> str:
    frame.to_parquet(path, index=False)
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_features_at_one_cutoff_are_byte_identical_with_any_thread_count(clean, tmp_path):
    runs = [(1, "a"), (2, "b"), (2, "c"), (None, "d")]  # None: every core
    digests = set()
    frames = []
    for threads, name in runs:
        spec = EngineSpec(threads=threads)
        frame = features_at(load(clean), CUTOFF, FeatureConfig(), LabelSpec(), spec=spec)
        frames.append(frame)
        digests.add(digest(frame, tmp_path / f"{name}.parquet"))
    assert len(frames[0]) > 100 and frames[0]["order_value_long"].notna().sum() > 100
    for frame in frames[1:]:
        pd.testing.assert_frame_equal(frame, frames[0], check_exact=True)
    assert len(digests) == 1


@pytest.mark.parametrize("engine", ["sliding", "window"])
def test_training_frames_are_byte_identical_with_any_thread_count(clean, tmp_path, engine):
    digests = set()
    for threads, name in [(1, "a"), (2, "b"), (2, "c")]:
        spec = EngineSpec(engine=engine, threads=threads)
        frame, _ = training_frame(load(clean), SCHEDULE, FeatureConfig(), LabelSpec(), spec=spec)
        digests.add(digest(frame, tmp_path / f"{name}.parquet"))
    assert len(digests) == 1


def test_fixed_point_keeps_millionths_and_unknowns():
    con = ibis.duckdb.connect()
    t = ibis.memtable({"v": [1.5, 0.1234567, -2.0000004, None, 1e300, -1e300]})
    got = con.execute(t.select(m=fixed_point(t.v)))["m"].tolist()
    assert got[:3] == [1_500_000, 123_457, -2_000_000]
    assert pd.isna(got[3])
    assert got[4:] == [LIMIT * UNIT, -LIMIT * UNIT]
    total = con.execute(t.select(s=fixed_point(t.v).sum().cast("float64") / UNIT))["s"][0]
    assert total == pytest.approx(1.5 + 0.123457 - 2.0)
    ints = ibis.memtable({"n": [1, 2]}).n
    assert fixed_point(ints).equals(ints)  # whole numbers add up exactly already


def test_threads_setting_accepts_empty_for_every_core():
    assert EngineSpec.from_params({"threads": None}).threads is None
    assert EngineSpec().threads is None
    assert EngineSpec.from_params({"threads": 2}).threads == 2


def test_the_row_groups_reach_several_threads(clean):
    """The rewritten files hold many row groups, so two threads share the work."""
    assert pq.ParquetFile(clean / "orders.parquet").metadata.num_row_groups > 4
