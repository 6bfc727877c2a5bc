"""The training frame written in parts (ranges of accounts, then merged cutoff by cutoff) is the
frame built whole: the same rows, values, types and order."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from features import FeatureConfig
from pipeline.checking import check
from pipeline.frame import account_ranges, training_frame, write_training_frame
from pipeline.labels import LabelSpec
from pipeline.schedule import snapshot_schedule
from pipeline.simulate import SimConfig
from pipeline.simulate import write as simulate
from pipeline.store import data_end, load, write_clean

CFG = FeatureConfig(recent_days=60, long_days=200)


@pytest.fixture(scope="module")
def clean(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("parts")
    simulate(
        SimConfig(n_accounts=120, seed=11, weeks=80, mc_samples=0), root / "raw", root / "t.parquet"
    )
    write_clean(check(root / "raw"), root / "clean")
    return root / "clean"


@pytest.mark.parametrize("mode", ["explicit", "inactivity"])
def test_parts_give_the_frame_built_whole(clean, tmp_path, mode):
    validated = load(clean)
    label = LabelSpec(mode=mode, horizon_days=56)
    cutoffs = snapshot_schedule(
        pd.Timestamp(validated.data_start), data_end(validated), label, every_days=28
    )[-8:]
    whole, whole_mode = training_frame(validated, cutoffs, CFG, label)
    assert len(whole) > 0 and whole["account_id"].nunique() > 50
    one = write_training_frame(validated, cutoffs, CFG, label, tmp_path / "one.parquet")
    assert one.parts == 1
    parted = write_training_frame(
        validated, cutoffs, CFG, label, tmp_path / "parts.parquet", frame_rows=300
    )
    assert parted.parts > 3 and parted.mode == one.mode == whole_mode
    assert (parted.rows, parted.churned, parted.columns) == (one.rows, one.churned, one.columns)
    got = pd.read_parquet(tmp_path / "parts.parquet")
    pd.testing.assert_frame_equal(got, whole, check_exact=True)
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "one.parquet"), whole)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one.parquet", "parts.parquet"]


def test_account_ranges_cover_every_account_once(clean):
    validated = load(clean)
    ids = sorted(validated.con.execute("SELECT account_id FROM clean_accounts").df()["account_id"])
    for parts in (1, 3, 7, len(ids), len(ids) + 5):
        ranges = account_ranges(validated, parts)
        assert len(ranges) == min(parts, len(ids))
        covered = [a for first, last in ranges for a in ids if first <= a <= last]
        assert covered == ids
