"""bench/featuretools_bench.py: its matched features, its comparison, its message without
Featuretools; the run itself (long-marked) only where the bench extra is installed."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from features.catalog import CATALOG
from features.language import FeatureConfig

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def ftb():
    path = ROOT / "bench" / "featuretools_bench.py"
    spec = importlib.util.spec_from_file_location("featuretools_bench", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclass looks its module up there
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop(spec.name, None)


def test_matched_features_are_catalog_features_with_windows_ending_at_the_cutoff(ftb) -> None:
    by_name = {f.name: f for f in CATALOG}
    names = [m.name for m in ftb.MATCHED]
    assert len(set(names)) == len(names) >= 20
    cfg = FeatureConfig()
    for match in ftb.MATCHED:
        feature = by_name[match.name]
        assert feature.source == match.dataframe, match.name
        assert cfg.window(match.window)[0] == 0, match.name  # a training window
        # each window has its own calculate_feature_matrix call
        assert match.window in ("all", "long", "recent")


def test_compare_counts_mismatches_per_feature(ftb) -> None:
    names = [m.name for m in ftb.MATCHED]
    distinct = next(m.name for m in ftb.MATCHED if m.primitive == "num_unique")
    days = next(m.name for m in ftb.MATCHED if m.primitive == "time_since_last")
    ours = pd.DataFrame({"account_id": ["a", "b", "c"], **{n: [1.0, 2.0, 0.0] for n in names}})
    ours[days] = [np.nan, 5.0, 6.0]
    theirs = ours.copy()
    theirs[distinct] = [1.0, 2.0, np.nan]  # NUM_UNIQUE of no rows: unknown there, 0 here
    theirs.loc[1, names[-1]] += 1e-9  # within the tolerance
    assert ftb.compare(ours, theirs, names) == {
        "accounts_on_one_side": 0,
        "features": {
            n: {
                "rows": 3,
                "mismatches": 0,
                "unknown": int(n == days),
                "max_abs_diff": pytest.approx(1e-9 if n == names[-1] else 0.0, abs=1e-12),
            }
            for n in names
        },
    }
    theirs[days] = [1.0, 5.0, 6.5]  # known on one side only, and half a day off
    theirs.loc[1, names[-1]] = 3.0
    theirs = pd.concat([theirs, theirs.iloc[[0]].assign(account_id="d")])  # theirs only
    out = ftb.compare(ours, theirs, names)
    assert out["accounts_on_one_side"] == 1
    bad = {n: c["mismatches"] for n, c in out["features"].items() if c["mismatches"]}
    # account d is a mismatch of every feature (unknown on our side)
    assert bad == {n: 1 for n in names} | {days: 3, names[-1]: 2}


def test_without_featuretools_it_says_how_to_install_it(ftb, monkeypatch, capsys) -> None:
    monkeypatch.setitem(sys.modules, "featuretools", None)  # find_spec: not installed
    assert ftb.main(["--world", "/nonexistent"]) == 2
    err = capsys.readouterr().err
    assert 'pip install -c requirements.lock -e ".[bench]"' in err
    assert "Traceback" not in err


@pytest.mark.long
def test_featuretools_computes_the_same_values_on_a_small_world(ftb, tmp_path) -> None:
    """Both sides on a small simulated world, at a cutoff inside its history: exit 0. About
    30 s: only with `make test-long`, and only where the bench extra is installed."""
    pytest.importorskip("featuretools")
    from pipeline.simulate import SimConfig, write

    write(SimConfig(n_accounts=150, weeks=60, seed=3, mc_samples=0), tmp_path / "raw",
          tmp_path / "t.pq", "parquet")  # fmt: skip
    spec = importlib.util.spec_from_file_location("bench_run", ROOT / "bench" / "run.py")
    run = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(run)
    assert run.main(["--reuse", str(tmp_path), "--steps", "trusted_clean"]) == 0
    out = tmp_path / "ft.json"
    assert ftb.main(["--world", str(tmp_path), "--cutoff", "2023-12-04", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["accounts"] > 0 and report["features_matched"] == len(ftb.MATCHED)
    assert all(c["mismatches"] == 0 for c in report["checks"]["featuretools"]["features"].values())
