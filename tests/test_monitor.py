"""`churn monitor`: past score runs against the data at hand. Realized figures agree with an
independent computation from the churn table; open windows get an estimate from the run's own
probabilities; accounts whose outcome cannot be known are counted."""

from __future__ import annotations

import itertools
import json
import shutil

import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.metrics import roc_auc_score

from models.expected import envelope, expected_auc, expected_auc_interval, interval
from pipeline.history import runs
from pipeline.monitor import check
from pipeline.monitor_summary import alerts
from tests.test_badinput_validate import run_cli
from tests.test_score_total import project  # noqa: F401

HORIZON = pd.Timedelta(days=90)


def test_expected_auc_is_the_auc_over_label_draws():
    """Exact against the pairwise definition on small sets (ties count half), and the mean
    AUC over label draws on a large one."""
    rng = np.random.default_rng(3)
    for p in (np.array([0.2, 0.2, 0.8]), rng.uniform(size=7), np.array([0.1, 0.5, 0.5, 0.9])):
        num = den = 0.0
        for i, j in itertools.permutations(range(len(p)), 2):
            w = p[i] * (1 - p[j])
            den += w
            num += w * (1.0 if p[i] > p[j] else 0.5 if p[i] == p[j] else 0.0)
        assert expected_auc(p) == pytest.approx(num / den)
    p = rng.beta(0.5, 5, size=2000)
    draws = [roc_auc_score(rng.random(len(p)) < p, p) for _ in range(300)]
    assert expected_auc(p) == pytest.approx(np.mean(draws), abs=0.003)
    lo, hi = expected_auc_interval(p)
    assert lo < np.mean(draws) < hi and hi - lo < 0.1
    assert np.isnan(expected_auc(np.array([0.3]))) and np.isnan(expected_auc(np.zeros(4)))


@pytest.fixture(scope="module")
def history(project):  # noqa: F811
    """Three score runs of the project: two whose label window has closed, one open."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DVC_ROOT", str(project))
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        for as_of in ("2023-12-04", "2024-03-04", None):
            args = ["--as-of", as_of] if as_of else []
            out = project / "scores" / f"{as_of}.csv"
            code, _, err = run_cli(
                "score", "--data", str(project / "clean"), "--all-active", "--out", str(out), *args
            )
            assert code == 0, err
        out = project / "monitor.json"
        code, stdout, err = run_cli("monitor", "--data", str(project / "clean"), "--out", str(out))
        assert code == 0, err
    details = json.loads((project / "monitor_runs.json").read_text())
    return project / "outputs" / "history", details, stdout


def test_every_score_run_is_kept(history):
    folder, _, _ = history
    kept = runs(folder)
    assert [r.meta["as_of"] for r in kept] == ["2023-12-04", "2024-03-04", "2024-07-15"]
    assert all(r.meta["label"]["horizon_days"] == 90 for r in kept)
    assert all(len(r.scores) == r.meta["rows"] for r in kept)


def test_realized_figures_agree_with_the_churn_table(history, project):  # noqa: F811
    _, result, stdout = history
    churn = pd.read_parquet(project / "clean" / "churn.parquet").set_index("account_id")
    closed = [r for r in result["runs"] if r["kind"] == "realized"]
    assert [r["as_of"] for r in closed] == ["2023-12-04", "2024-03-04"]
    for run, kept in zip(closed, runs(history[0]), strict=False):
        scored = kept.scores[kept.scores["status"] == "scored"]
        at = pd.Timestamp(run["as_of"])
        churned = scored["account_id"].map(churn["churned_at"])
        y = ((churned >= at) & (churned < at + HORIZON)).astype(int)
        assert run["with_outcome"] == run["scored"] == len(scored)
        assert run["observed_churners"] == int(y.sum())
        assert run["auc"] == pytest.approx(roc_auc_score(y, scored["p_churn"]), abs=1e-4)
        assert run["churn_rate"] == pytest.approx(y.mean(), abs=1e-4)
        tiers = run["by_tier"]
        assert sum(t["n"] for t in tiers.values()) == len(scored)
        high = scored["risk_tier"] == "high"
        assert tiers["high"]["observed"] == pytest.approx(y[high].mean(), abs=1e-4)
    assert "realized" in stdout and "estimate" in stdout


def test_an_open_window_gets_an_estimate(history):
    _, result, _ = history
    last = result["runs"][-1]
    assert last["kind"] == "estimate" and "auc" not in last
    assert last["unknown_outcome"] == {"window still open": last["scored"]}
    lo, hi = last["expected_auc_interval"]
    assert lo < last["expected_auc"] < hi


def test_accounts_the_data_no_longer_holds_are_counted(history, project, tmp_path):  # noqa: F811
    """A later export of the same company (the same lineage) without one scored account."""
    folder, result, _ = history
    first = runs(folder)[0]
    gone = first.scores.loc[first.scores["status"] == "scored", "account_id"].iloc[0]
    raw = tmp_path / "raw"
    shutil.copytree(project / "raw", raw)
    for name in ("accounts", "orders", "interactions", "links", "churn"):
        frame = pd.read_csv(raw / f"{name}.csv", dtype=str)
        frame[frame["account_id"] != gone].to_csv(raw / f"{name}.csv", index=False)
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["data"]["lineage"] = first.meta["data"]["lineage"]  # as data.lineage names it
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    out = tmp_path / "m.json"
    code, _, err = run_cli(
        "monitor", "--data", str(raw), "--history", str(folder), "--out", str(out),
        "--params", str(tmp_path / "params.yaml"),
    )  # fmt: skip
    assert code == 0, err
    run = json.loads((tmp_path / "m_runs.json").read_text())["runs"][0]
    assert run["unknown_outcome"] == {"not in the data": 1}
    assert run["with_outcome"] == run["scored"] - 1 == result["runs"][0]["scored"] - 1
    code, _, err = run_cli("monitor", "--data", str(raw), "--history", str(folder))
    assert code == 2 and f"no score runs of this data (lineage {raw}" in err  # another source


def test_no_history_is_a_clear_error(tmp_path, project):  # noqa: F811
    code, _, err = run_cli(
        "monitor", "--data", str(project / "clean"), "--history", str(tmp_path / "none")
    )
    assert code == 2 and "no score runs of this data (lineage" in err and "Traceback" not in err


def test_the_metrics_file_holds_numbers_dvc_can_compare(history, project):  # noqa: F811
    """reports/monitor.json (DVC metrics): numbers only, one entry per run by as-of date."""
    _, details, stdout = history
    summary = json.loads((project / "monitor.json").read_text())
    assert summary["realized_runs"] == 2 and summary["estimated_runs"] == 1
    assert list(summary["runs"]) == [r["as_of"] for r in details["runs"]]

    def leaves(d):
        for v in d.values():
            yield from leaves(v) if isinstance(v, dict) else [v]

    numbers = [
        v
        for k, v in summary.items()
        if k not in ("data_end",)
        for v in ([v] if not isinstance(v, dict) else leaves(v))
    ]
    assert numbers and all(isinstance(v, int | float) for v in numbers)
    first = details["runs"][0]
    assert summary["runs"][first["as_of"]]["auc"] == first["auc"]
    # the project's model was made by hand, without a test fold: nothing to check, and it says so
    assert not first["checked"] and first["test_fold"] is None
    assert "nothing checked yet" in stdout


# --- the test-fold envelope and the alert ------------------------------------------------------


def _calibrated(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    p = rng.beta(0.6, 8, size=n)
    return (rng.random(n) < p).astype(int), p


def test_the_envelope_covers_fresh_runs_of_an_unchanged_world():
    """Runs drawn from the test fold's own world: the realized AUC falls inside the 99%
    interval about 99% of the time (at least 95 of 100 runs), and the alert stays quiet as
    often, at the fold's run size and at four times it; the interval scales with the run's
    rows and allows for the fold's own chance."""
    y, p = _calibrated(9000, 1)
    cutoffs = np.repeat(np.arange(3), 3000)
    env = envelope(y, p, cutoffs, draws=200)
    assert env["rows"] == 3000 and env["test_rows"] == 9000
    for rows in (3000, 12000):
        lo, hi = interval(env, "auc", 0.99, rows)
        inside = quiet = 0
        for k in range(100):
            yk, pk = _calibrated(rows, 100 + k)
            auc = roc_auc_score(yk, pk)
            inside += lo <= auc <= hi
            run = {
                "with_outcome": rows,
                "auc": auc,
                "observed_churners": int(yk.sum()),
                "expected_churners_with_outcome": float(pk.sum()),
                "observed_over_expected": yk.sum() / pk.sum(),
            }
            quiet += not check(run, env, 0.99)["alerts"]
        assert inside >= 95 and quiet >= 95, (rows, inside, quiet)
    wide, narrow = interval(env, "auc", 0.99, 3000), interval(env, "auc", 0.99, 12000)
    ratio = np.sqrt((1 / 12000 + 1 / 9000) / (1 / 3000 + 1 / 9000))
    assert narrow[1] - narrow[0] == pytest.approx((wide[1] - wide[0]) * ratio, rel=1e-9)
    with pytest.raises(ValueError, match="0.90, 0.95 and 0.99"):
        interval(env, "auc", 0.8, 3000)
    with pytest.raises(ValueError, match="churners and non-churners"):
        envelope(np.zeros(10), np.full(10, 0.1), np.zeros(10))


def test_the_estimate_interval_covers_the_realized_auc():
    """CBPE: under calibration the realized AUC lies in the 95% interval about 95% of the time."""
    inside = 0
    for k in range(100):
        y, p = _calibrated(1000, 500 + k)
        lo, hi = expected_auc_interval(p)
        inside += lo <= roc_auc_score(y, p) <= hi
    assert 88 <= inside <= 100


def test_the_alert_fires_outside_the_interval_and_only_there():
    y, p = _calibrated(6000, 2)
    env = envelope(y, p, np.repeat([0, 1], 3000))
    base = {"with_outcome": 3000, "observed_churners": 200, "expected_churners_with_outcome": 200}
    lo, _ = interval(env, "auc", 0.99, 3000)
    fine = check(base | {"auc": env["auc"], "observed_over_expected": 1.0}, env, 0.99)
    assert fine["checked"] and fine["alerts"] == []
    assert check(base | {"auc": 0.99, "observed_over_expected": 1.0}, env, 0.99)["alerts"] == []
    low = check(base | {"auc": lo - 0.01, "observed_over_expected": 1.0}, env, 0.99)
    assert len(low["alerts"]) == 1 and "realized AUC" in low["alerts"][0]
    many = check(base | {"auc": env["auc"], "observed_over_expected": 1.6}, env, 0.99)
    assert len(many["alerts"]) == 1 and "observed/expected churners 1.60" in many["alerts"][0]
    assert "understates" in many["alerts"][0] and many["notes"] == []
    # a test fold that already saw more churn does not excuse the same miss later
    missed = env | {
        "observed_over_expected": env["observed_over_expected"] + 0.6,
        "observed_over_expected_quantiles": [
            q + 0.6 for q in env["observed_over_expected_quantiles"]
        ],
    }
    again = check(base | {"auc": env["auc"], "observed_over_expected": 1.6}, missed, 0.99)
    saw = f"where it saw {missed['observed_over_expected']:.2f}"
    assert len(again["alerts"]) == 1 and saw in again["alerts"][0]
    assert check(base | {"auc": 0.5}, None, 0.99) == {
        "test_fold": None,
        "alerts": [],
        "notes": [],
        "checked": False,
    }
    # fewer churners than the interval allows: a note (the risk is overstated), not an alert
    few = check(base | {"auc": env["auc"], "observed_over_expected": 0.5}, env, 0.99)
    assert few["alerts"] == [] and len(few["notes"]) == 1 and "overstates" in few["notes"][0]
    found = alerts(
        [
            {"model_version": "churn-risk/3", "as_of": "2025-01-06", **low},
            {"model_version": "churn-risk/3", "as_of": "2025-02-03", **many},
            {"model_version": "churn-risk/4", "as_of": "2025-03-03", **fine},
        ]
    )
    assert len(found) == 1 and found[0].startswith("ALERT churn-risk/3: 2 finding(s)")
    assert "2025-01-06" in found[0] and "2025-02-03" in found[0]
