"""End to end on a real purchase log: the README's own-data command (`dvc exp run` with
`data.raw` pointed at the user's folder) on CDNOW, with the shipped defaults, in a temporary
git repository with the real MLflow store; then `churn score` and `churn explain`.

CI runs a third of CDNOW's accounts (every third one, all of their orders, the whole 78 weeks)
to keep `make test` short; `AFTERSALE_CDNOW_EVERY=1` runs it whole.
"""

from __future__ import annotations

import json
import os
import re
import subprocess

import pandas as pd
import pytest

from tests.test_e2e import BIN, ROOT, _run, project_copy

pytestmark = pytest.mark.e2e
CDNOW = ROOT / "tests" / "data" / "cdnow"
EVERY = int(os.environ.get("AFTERSALE_CDNOW_EVERY", "3"))


@pytest.fixture(scope="module")
def cdnow(tmp_path_factory):
    repo = tmp_path_factory.mktemp("cdnow")
    env = project_copy(repo, accounts=400, mc_samples=16)
    export = repo / "export"  # the user's folder: not a DVC output, not the simulator's
    export.mkdir()
    accounts = pd.read_csv(CDNOW / "accounts.csv")
    accounts = accounts.iloc[::EVERY]
    orders = pd.read_parquet(CDNOW / "orders.parquet")
    orders = orders[orders.account_id.isin(accounts.account_id)]
    accounts.to_csv(export / "accounts.csv", index=False)
    orders.to_csv(export / "orders.csv", index=False)
    # the README's command, word for word but for the folder
    proc = _run(
        [str(BIN / "dvc"), "exp", "run", "-S", "data.raw=export", "-S", "data.truth=", "score",
         "report"],
        repo,
        env,
    )  # fmt: skip
    return repo, env, orders, proc.stdout + proc.stderr


def test_the_simulator_does_not_run_and_nothing_mentions_an_oracle(cdnow):
    root, _, _, output = cdnow
    assert not (root / "data" / "raw").exists() and not (root / "data" / "truth.parquet").exists()
    assert "oracle" not in output.lower() and "simulat" not in output.lower()
    metrics = json.loads((root / "reports" / "evaluation.json").read_text())
    assert "oracle" not in metrics and "auc_vs_oracle" not in metrics["test"]
    assert "campaign_value" not in metrics["test"]  # no money figures unless the user sets them
    html = (root / "reports" / "report.html").read_text()
    text = re.sub(r"<style>.*?</style>|<[^>]+>", " ", html, flags=re.S)  # what a reader sees
    assert "bg/nbd" in text.lower() and "oracle" not in text.lower()


def test_schedule_and_validation_follow_the_data(cdnow):
    root, _, orders, output = cdnow
    meta = json.loads((root / "data" / "features" / "meta.json").read_text())
    assert meta["label_mode"] == "inactivity"
    assert meta["schedule"] == {"every_days": 14, "warmup_days": 91, "derived": True}
    assert "schedule: 26 cutoffs every 14 days after a 91-day warm-up" in output
    zero = int((orders.amount == 0).sum())
    assert f"{zero:,} of {len(orders):,}" in output and "have amount 0" in output


def test_the_model_beats_every_baseline_bg_nbd_included(cdnow):
    root, _, _, _ = cdnow
    metrics = json.loads((root / "reports" / "evaluation.json").read_text())
    test, baselines = metrics["test"], metrics["baselines"]
    assert {"bg_nbd", "logistic_regression", "recency_frequency"} <= set(baselines)
    assert 0.70 < baselines["bg_nbd"]["auc"] < test["auc"] < 0.9
    for name, b in baselines.items():
        assert test["auc"] > b["auc"] and test["pr_auc"] > b["pr_auc"], name
    versus = metrics["vs_baselines"]["bg_nbd"]
    assert versus["auc_diff_lo"] > 0 and versus["clusters"] > 1000
    assert versus["auc_diff"] == pytest.approx(test["auc"] - baselines["bg_nbd"]["auc"], abs=1e-9)


def test_per_row_predictions_beside_the_metrics(cdnow):
    root, _, _, _ = cdnow
    metrics = json.loads((root / "reports" / "evaluation.json").read_text())
    rows = pd.read_csv(root / "reports" / "test_predictions.csv")
    assert list(rows.columns[:4]) == ["account_id", "cutoff", "label", "p_model"]
    assert {f"p_{name}" for name in metrics["baselines"]} <= set(rows.columns)
    assert len(rows) == metrics["test"]["n"] and rows.label.mean() == pytest.approx(
        metrics["test"]["churn_rate"]
    )
    from sklearn.metrics import roc_auc_score

    assert roc_auc_score(rows.label, rows.p_model) == pytest.approx(metrics["test"]["auc"])
    assert roc_auc_score(rows.label, rows.p_bg_nbd) == pytest.approx(
        metrics["baselines"]["bg_nbd"]["auc"]
    )


def test_the_top_of_the_population_gets_reasons_and_actions(cdnow):
    root, _, _, _ = cdnow
    scores = pd.read_csv(root / "outputs" / "scores.csv")
    scored = scores[scores.status == "scored"]
    assert len(scored) > 1000 and scored.p_churn.is_monotonic_decreasing
    high = scored[scored.risk_tier == "high"]
    assert 0.04 < len(high) / len(scored) < 0.07  # the top 5% of the active accounts
    assert high.reason_1.notna().all() and high.action.notna().all()


def test_score_and_explain_afterwards_with_the_defaults(cdnow):
    root, env, _, _ = cdnow
    churn = str(BIN / "churn")
    out = _run(
        [churn, "score", "--data", "data/clean", "--all-active", "--out", "again.csv"], root, env
    )
    again = pd.read_csv(root / "again.csv")
    first = pd.read_csv(root / "outputs" / "scores.csv")
    assert "churn-risk" in out.stdout
    assert again.p_churn.to_numpy() == pytest.approx(first.p_churn.to_numpy())
    for account in (first.account_id.iloc[0], first.account_id.iloc[len(first) // 2]):
        proc = subprocess.run(
            [churn, "explain", account, "--data", "data/clean", "--out", "e.png"],
            cwd=root, env=env, capture_output=True, text=True,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        assert account in proc.stdout and "Traceback" not in proc.stderr
        assert (root / "e.png").stat().st_size > 1000
