"""The benchmark runs its steps end to end on a tiny world (figures are printed, never checked)."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import duckdb
import pytest

from pipeline.simulate import SimConfig, write

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_run", ROOT / "bench" / "run.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("bench")
    write(
        SimConfig(n_accounts=150, weeks=60, seed=3, mc_samples=0),
        root / "raw",
        root / "t.pq",
        "parquet",
    )
    return root


def test_trusted_clean_writes_what_validate_writes(bench, world, tmp_path) -> None:
    """trusted_clean (no checks) gives the tables and report validate gives, on simulated data."""
    other = tmp_path / "other"
    shutil.copytree(world / "raw", other / "raw")
    out = tmp_path / "r.json"
    assert (
        bench.main(
            ["--reuse", str(world), "--steps", "validate,scan,featurize_one", "--out", str(out)]
        )
        == 0
    )
    assert bench.main(["--reuse", str(other), "--steps", "trusted_clean"]) == 0
    con = duckdb.connect()
    for table in ("accounts", "orders", "interactions", "links", "churn"):
        a, b = world / "clean" / f"{table}.parquet", other / "clean" / f"{table}.parquet"
        assert (
            con.execute(f"DESCRIBE SELECT * FROM '{a}'").fetchall()
            == con.execute(f"DESCRIBE SELECT * FROM '{b}'").fetchall()
        )
        for x, y in ((a, b), (b, a)):
            extra = f"SELECT count(*) FROM (SELECT * FROM '{x}' EXCEPT ALL SELECT * FROM '{y}')"
            assert con.execute(extra).fetchone()[0] == 0, table
    ours, theirs = (
        json.loads((d / "clean" / "validation.json").read_text()) for d in (world, other)
    )
    # the two worlds' folders, and the notes on the data's facts that only validate computes
    # (trusted_clean skips every query but the casts); everything else is the same
    where = ("data_dir", "source", "notes", "facts")
    assert {k: v for k, v in ours.items() if k not in where} == {
        k: v for k, v in theirs.items() if k not in where
    }
    assert ours["source"] == (world / "raw").resolve().as_posix()
    report = json.loads(out.read_text())
    assert [s["step"] for s in report["steps"]] == ["validate", "scan", "featurize_one"]
    steps = {s["step"]: s for s in report["steps"]}
    assert steps["featurize_one"]["rows_out"] > 0 and steps["scan"]["rows_in"] > 0
    assert report["featurize_one_over_scan"] > 0 and all(s["peak_gb"] > 0 for s in report["steps"])


@pytest.mark.parametrize("args", [["--weeks", "0"], ["--accounts", "0"]])
def test_an_impossible_world_is_a_usage_error(bench, tmp_path, capsys, args) -> None:
    """Checked before any step runs: exit 2 with the simulator's reason, no world folder."""
    with pytest.raises(SystemExit) as exit_:
        bench.main([*args, "--world", str(tmp_path / "w"), "--steps", "simulate"])
    assert exit_.value.code == 2
    assert "n_accounts must be at least 1 and weeks from 1 to 3500" in capsys.readouterr().err
    assert not (tmp_path / "w").exists()
