"""`churn backfill` then `churn monitor`, on a small simulated world, through the real CLI, the
real MLflow store and the real score history: each past as-of date is scored by a model fitted
only on labels known by then, which keeps its test-fold envelope; monitoring checks the
realized runs against it, logs the figures to each model's MLflow run once, and the report
shows them."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
import yaml
from mlflow.tracking import MlflowClient

from models.tracking import configure
from pipeline.history import runs
from pipeline.monitor_section import monitor_section
from pipeline.paths import PACKAGE_ROOT
from pipeline.simulate import SimConfig, write
from tests.test_badinput_validate import run_cli

WINDOW = pd.Timedelta(days=90)


@pytest.fixture(scope="module")
def backfilled(tmp_path_factory):
    """A 300-account world, its training frame, two backfilled as-of dates, and the monitor."""
    root = tmp_path_factory.mktemp("backfill")
    params = yaml.safe_load((PACKAGE_ROOT / "params.yaml").read_text())
    params["train"] |= {"n_estimators": 200, "early_stopping_rounds": 30}
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    write(SimConfig(n_accounts=300, weeks=80, mc_samples=0), root / "raw", root / "t.parquet")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DVC_ROOT", str(root))
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        p = ("--params", str(root / "params.yaml"))
        for args in (
            ("validate", "--data", str(root / "raw"), "--out", str(root / "clean")),
            ("featurize", "--data", str(root / "clean"), "--out", str(root / "features")),
            ("backfill", "--data", str(root / "clean"), "--frame", str(root / "features"),
             "--runs", "2", "--every", "2"),
        ):  # fmt: skip
            code, stdout, err = run_cli(*args, *p)
            assert code == 0, err
        assert "2 backfilled run(s)" in stdout
        out = root / "reports" / "monitor.json"
        monitor = ("monitor", "--data", str(root / "clean"), "--out", str(out), *p)
        code, first, err = run_cli(*monitor)
        assert code == 0, err
        code, second, err = run_cli(*monitor)  # again: no point is logged twice
        assert code == 0, err
        configure(root, params["mlflow"]["experiment"])
        client = MlflowClient()
        yield (
            root,
            json.loads((root / "reports" / "monitor_runs.json").read_text()),
            client,
            (
                first,
                second,
            ),
        )
        mlflow.set_tracking_uri(None)


def test_each_past_date_is_scored_by_a_model_of_its_time(backfilled):
    """Point in time: the model of date A learned only from cutoffs whose label window had
    closed by A (its test fold's last cutoff + 90 days <= A), and it scored as of A."""
    root, _, client, _ = backfilled
    kept = runs(root / "outputs" / "history")
    frame_cutoffs = sorted(pd.read_parquet(root / "features" / "frame.parquet")["cutoff"].unique())
    assert [r.meta["as_of"] for r in kept] == [
        pd.Timestamp(c).date().isoformat() for c in (frame_cutoffs[-3], frame_cutoffs[-1])
    ]
    for run in kept:
        as_of = pd.Timestamp(run.meta["as_of"])
        assert run.meta["model_version"] == f"backfill:{run.meta['as_of']}"
        local = mlflow.artifacts.download_artifacts(
            run_id=run.meta["model_run_id"], artifact_path="training_setup.json"
        )
        setup = json.loads(Path(local).read_text())
        last = max(pd.Timestamp(c) for fold in setup["folds"].values() for c in fold)
        assert last + WINDOW <= as_of
        assert client.get_run(run.meta["model_run_id"]).data.tags["backfill.as_of"] == str(
            as_of.date()
        )
        env = run.meta["model_envelope"]
        assert env["test_rows"] > env["rows"] > 0 and 0.5 < env["auc"] <= 1
        assert (run.scores["status"] == "scored").sum() == run.meta["status_counts"]["scored"]


def test_the_monitor_checks_each_run_against_its_model(backfilled):
    root, details, _, (first, _) = backfilled
    assert [r["kind"] for r in details["runs"]] == ["realized", "realized"]
    for r in details["runs"]:
        assert r["checked"] and r["test_fold"]["level"] == 0.99
        lo, hi = r["test_fold"]["auc_interval"]
        assert lo < r["test_fold"]["auc"] < hi
        assert (r["auc"] < lo) == any("realized AUC" in a for a in r["alerts"])
        olo, ohi = r["test_fold"]["observed_over_expected_interval"]
        oe = r["observed_over_expected"]
        assert (oe > ohi) == any("observed/expected" in a for a in r["alerts"])
        assert (oe < olo) == any("observed/expected" in n for n in r["notes"])
        assert r["psi"] and all(v >= 0 for v in r["psi"].values())
    assert "test AUC (99%)" in first


def test_the_figures_are_logged_once_to_each_models_run(backfilled):
    _, details, client, (first, second) = backfilled
    assert "logged 8 figure(s)" in first and "logged" not in second
    for r in details["runs"]:
        history = client.get_metric_history(r["model_run_id"], "monitor.realized_auc")
        day = (pd.Timestamp(r["as_of"]) - pd.Timestamp("1970-01-01")).days
        assert [(m.step, round(m.value, 4)) for m in history] == [(day, r["auc"])]


def test_the_report_shows_the_monitor(backfilled, tmp_path):
    root, details, _, _ = backfilled
    html = "\n".join(monitor_section(root / "reports"))
    assert "Did the scores come true?" in html and "data:image/png;base64," in html
    assert html.count("<tr><td>") == len(details["runs"])
    assert "No monitoring yet" in "\n".join(monitor_section(tmp_path))


def test_a_regime_shift_changes_nothing_before_it_and_raises_churn_after():
    """The simulator's shift param: the same world up to the shift week, then competitors
    take more accounts."""
    from pipeline.simulate import simulate

    start = pd.Timestamp("2023-01-02")
    base, _ = simulate(SimConfig(n_accounts=400, weeks=60, mc_samples=0))
    moved, _ = simulate(SimConfig(n_accounts=400, weeks=60, mc_samples=0, shift_week=30))
    cut = start + pd.Timedelta(weeks=30)
    # (a delivery after the shift can differ: the account may have left by then)
    for name, col, keep in (
        ("orders", "order_date", ["order_id", "account_id", "order_date", "amount"]),
        ("churn", "churned_at", None),
    ):
        before = [t.loc[t[col] < cut, keep or t.columns] for t in (base[name], moved[name])]
        pd.testing.assert_frame_equal(*(b.reset_index(drop=True) for b in before))
    after = [int((t["churned_at"] >= cut).sum()) for t in (base["churn"], moved["churn"])]
    assert after[1] > 1.5 * after[0], after
    with pytest.raises(ValueError, match="shift_health"):
        SimConfig(shift_week=3, shift_health=1.5)


def test_a_bad_shift_param_is_an_exit_2(tmp_path):
    params = yaml.safe_load((PACKAGE_ROOT / "params.yaml").read_text())
    params["simulate"] |= {"shift_week": 10, "shift_offers": -1}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    code, _, err = run_cli(
        "simulate", "--out", str(tmp_path / "raw"), "--params", str(tmp_path / "params.yaml")
    )
    assert code == 2 and "params.yaml simulate" in err and "Traceback" not in err
    assert not (tmp_path / "raw").exists()


def test_backfill_dates_are_the_frames_last_cutoffs():
    from pipeline.backfill import as_of_dates

    cutoffs = pd.Series(pd.date_range("2024-01-01", periods=10, freq="28D").repeat(3))
    got = as_of_dates(cutoffs, runs=3, every=2)
    assert got == list(pd.date_range("2024-01-01", periods=10, freq="28D")[[5, 7, 9]])
    assert len(as_of_dates(cutoffs, runs=50, every=1)) == 10
    assert np.all(np.diff(np.array(got, dtype="datetime64[ns]")) > np.timedelta64(0))


def _backfill_and_monitor(root, shift_week: int | None) -> dict:
    """A 1,500-account world of two years (shifted or not), backfilled at two of the frame's
    last cutoffs and monitored; the monitor's details."""
    params = yaml.safe_load((PACKAGE_ROOT / "params.yaml").read_text())
    params["train"] |= {"n_estimators": 300, "early_stopping_rounds": 50}
    params["simulate"]["shift_week"] = shift_week
    root.mkdir()
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    config = SimConfig(n_accounts=1500, weeks=104, mc_samples=0, shift_week=shift_week)
    write(config, root / "raw", root / "t.parquet")
    p = ("--params", str(root / "params.yaml"))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DVC_ROOT", str(root))
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        for args in (
            ("validate", "--data", str(root / "raw"), "--out", str(root / "clean")),
            ("featurize", "--data", str(root / "clean"), "--out", str(root / "features")),
            ("backfill", "--data", str(root / "clean"), "--frame", str(root / "features"),
             "--runs", "2", "--every", "2"),
            ("monitor", "--data", str(root / "clean"), "--out", str(root / "m.json")),
        ):  # fmt: skip
            code, _, err = run_cli(*args, *p)
            assert code == 0, err
    mlflow.set_tracking_uri(None)
    return json.loads((root / "m_runs.json").read_text())


@pytest.mark.long
def test_a_regime_shift_fires_the_alert_and_an_unchanged_world_does_not(tmp_path):
    """The issue's proof at a size a test can afford (`make test-long`); the README gives the
    default world's figures."""
    calm = _backfill_and_monitor(tmp_path / "calm", None)
    moved = _backfill_and_monitor(tmp_path / "moved", 80)  # mid-July 2024, before both dates
    assert len(calm["runs"]) == len(moved["runs"]) == 2
    assert all(r["kind"] == "realized" and r["checked"] for r in calm["runs"] + moved["runs"])
    assert calm["alerts"] == []
    assert moved["alerts"] and "understates the risk" in moved["alerts"][0]


def test_backfill_refuses_a_frame_of_other_data_and_bad_counts(backfilled, tmp_path):
    import shutil

    root = backfilled[0]
    shutil.copytree(root / "raw", tmp_path / "other")
    p = ("--params", str(root / "params.yaml"), "--frame", str(root / "features"))
    code, _, err = run_cli("backfill", "--data", str(tmp_path / "other"), *p)
    assert code == 2 and "built from other data" in err and "Traceback" not in err
    code, _, err = run_cli("backfill", "--data", str(root / "clean"), "--runs", "0", *p)
    assert code == 2 and "--runs and --every must be at least 1" in err


def test_a_date_is_backfilled_once(backfilled):
    root = backfilled[0]
    before = len(runs(root / "outputs" / "history"))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DVC_ROOT", str(root))
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        code, out, err = run_cli(
            "backfill", "--data", str(root / "clean"), "--frame", str(root / "features"),
            "--runs", "2", "--every", "2", "--params", str(root / "params.yaml"),
        )  # fmt: skip
    assert code == 0, err
    assert "nothing to backfill" in out and len(runs(root / "outputs" / "history")) == before
