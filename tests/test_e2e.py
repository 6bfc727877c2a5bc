"""End to end: the real `dvc repro` on a small simulated world, in a temporary git repository,
with the real MLflow SQLite store and registry; then batch scoring of a customer list."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent

pytestmark = pytest.mark.e2e


def _project_files() -> list[str]:
    """Tracked and untracked-but-not-ignored files: what a fresh clone of this tree would hold."""
    out = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [f for f in out.splitlines() if (ROOT / f).is_file()]


def _run(cmd: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc


def project_copy(repo: Path, accounts: int, mc_samples: int) -> dict[str, str]:
    """This tree copied into `repo` as a fresh git repository with a small simulated world;
    returns the environment to run its commands in (no MLflow or DVC settings inherited)."""
    for name in _project_files():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, repo / name)
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["simulate"].update(accounts=accounts, mc_samples=mc_samples)
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "DVC_"))}
    env.update(
        PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}",
        DVC_NO_ANALYTICS="1",
        GIT_AUTHOR_NAME="t",
        GIT_AUTHOR_EMAIL="t@t",
        GIT_COMMITTER_NAME="t",
        GIT_COMMITTER_EMAIL="t@t",
    )
    for cmd in (["git", "init", "-q"], ["git", "add", "-A"], ["git", "commit", "-qm", "clone"]):
        _run(cmd, repo, env)
    return env


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    repo = tmp_path_factory.mktemp("clone")
    env = project_copy(repo, accounts=400, mc_samples=16)
    _run([str(BIN / "dvc"), "repro"], repo, env)
    return repo, env


def test_second_repro_has_nothing_to_do(repo):
    # First in the file: later tests score lists with `churn score`, and each run joins the
    # score history, which rightly makes the monitor stage out of date.
    root, env = repo
    proc = _run([str(BIN / "dvc"), "status"], root, env)
    assert "up to date" in proc.stdout.lower()


def test_metrics_make_sense(repo):
    root, _ = repo
    metrics = json.loads((root / "reports" / "evaluation.json").read_text())
    test, oracle = metrics["test"], metrics["oracle"]
    assert {"auc", "pr_auc", "brier", "log_loss", "lift_at_10pct", "n", "churn_rate"} <= set(test)
    assert test["n"] > 500 and 0.01 < test["churn_rate"] < 0.3
    assert 0.6 < test["auc"] <= 1.0 and test["lift_at_10pct"] > 1.5
    assert 0.6 < oracle["auc"] <= 1.0 and 0 < oracle["brier"] < test["churn_rate"]
    for plot in ("roc.csv", "calibration.csv", "evaluation.png"):
        assert (root / "reports" / "plots" / plot).stat().st_size > 100


def test_mlflow_store_at_repo_root_with_registered_champion(repo):
    from mlflow.tracking import MlflowClient

    root, env = repo
    assert (root / "mlflow.db").is_file() and (root / "mlartifacts").is_dir()
    assert not (root / "mlruns").exists()
    uri = f"sqlite:///{root / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)  # not the process-wide default
    champion = client.get_model_version_by_alias("churn-risk", "champion")
    challenger = client.get_model_version_by_alias("churn-risk", "challenger")
    assert str(champion.version) == str(challenger.version) == "1"
    run = client.get_run(champion.run_id)
    head = _run(["git", "rev-parse", "HEAD"], root, env).stdout.strip()
    assert run.data.tags["git_commit"] == head
    leaves = yaml.safe_load((root / "params.yaml").read_text())["train"]["num_leaves"]
    assert run.data.params["train.num_leaves"] == str(leaves)
    assert run.data.params["simulate.accounts"] == "400"
    assert {"valid.auc", "test.auc", "oracle.auc"} <= set(run.data.metrics)
    info = json.loads((root / "data" / "model" / "train_info.json").read_text())
    assert info["run_id"] == champion.run_id


def test_scores_for_every_active_account(repo):
    root, _ = repo
    scores = pd.read_csv(root / "outputs" / "scores.csv")
    assert list(scores.columns[:6]) == [
        "account_id",
        "as_of",
        "p_churn",
        "risk_tier",
        "model_version",
        "status",
    ]
    churn = pd.read_csv(root / "data" / "raw" / "churn.csv")
    accounts = pd.read_csv(root / "data" / "raw" / "accounts.csv")
    active = set(accounts.account_id) - set(churn.account_id)
    assert set(scores.account_id) == active
    assert (scores.status == "scored").all() and scores.p_churn.between(0, 1).all()
    names = accounts.set_index("account_id")["name"]
    assert (scores.set_index("account_id")["name"] == names[scores.account_id]).all()
    assert scores.p_churn.is_monotonic_decreasing
    assert (scores.model_version == "churn-risk/1").all()
    assert scores.risk_tier.isin(["high", "medium", "low"]).all()
    assert scores.p_churn.nunique() > 50  # a model that ranks, not a constant


def test_scoring_a_customer_list_keeps_every_row(repo):
    root, env = repo
    churn = pd.read_csv(root / "data" / "raw" / "churn.csv")
    scored = pd.read_csv(root / "outputs" / "scores.csv")
    gone = churn.account_id.iloc[0]
    listed = pd.DataFrame(
        {
            "account_id": [
                scored.account_id.iloc[0],
                "NO-SUCH-ACCOUNT",
                gone,
                scored.account_id.iloc[0],
            ],
            "owner": ["ann", "bob", "cy", "dee"],
        }
    )
    listed.to_csv(root / "mylist.csv", index=False)
    _run(
        [
            str(BIN / "churn"),
            "score",
            "--data",
            "data/clean",
            "--accounts",
            "mylist.csv",
            "--out",
            "outputs/mylist.parquet",
        ],
        root,
        env,
    )
    out = pd.read_parquet(root / "outputs" / "mylist.parquet")
    assert out.status.tolist() == ["scored", "unknown_account", "churned", "duplicate"]
    assert out.owner.tolist() == ["ann", "bob", "cy", "dee"]
    assert out.p_churn.iloc[0] == pytest.approx(scored.p_churn.iloc[0])
    assert out.p_churn.iloc[1:].isna().all()
    meta = json.loads((root / "outputs" / "mylist.meta.json").read_text())
    assert meta["status_counts"] == {
        "scored": 1,
        "unknown_account": 1,
        "churned": 1,
        "duplicate": 1,
    }


def test_the_monitor_stage_judges_the_score_run(repo):
    """dvc repro ends with the monitor: the score run is in the history, estimated (its label
    window is open), the figures are DVC metrics, and the report has its section."""
    root, env = repo
    summary = json.loads((root / "reports" / "monitor.json").read_text())
    assert summary["estimated_runs"] == 1 and summary["realized_runs"] == summary["alerts"] == 0
    (run,) = summary["runs"].values()
    assert 0.5 < run["expected_auc"] < 1 and run["scored"] > 100
    shown = _run([str(BIN / "dvc"), "metrics", "show"], root, env).stdout
    assert "reports/monitor.json" in shown and "runs." in shown
    assert "Did the scores come true?" in (root / "reports" / "report.html").read_text()
    info = json.loads((root / "data" / "model" / "train_info.json").read_text())
    assert info["envelope"]["test_rows"] > info["envelope"]["rows"] > 0


def test_featurize_one_cutoff_from_the_command_line(repo):
    root, env = repo
    _run(
        [
            str(BIN / "churn"),
            "featurize",
            "--data",
            "data/clean",
            "--as-of",
            "2025-06-02",
            "--out",
            "feats.csv",
        ],
        root,
        env,
    )
    feats = pd.read_csv(root / "feats.csv")
    frame = pd.read_parquet(root / "data" / "features" / "frame.parquet")
    assert feats.columns[0] == "account_id" and len(feats) > 100
    assert feats.account_id.is_unique and (feats.cutoff == "2025-06-02").all()
    assert set(frame.columns) - {"label"} == set(feats.columns)


def test_accounts_and_orders_alone_run_end_to_end(repo):
    """No interactions, links or churn table: inactivity labels, the features the data allows."""
    root, env = repo
    minimal = root / "minimal"
    minimal.mkdir()
    for table in ("accounts", "orders"):
        shutil.copy(root / "data" / "raw" / f"{table}.csv", minimal / f"{table}.csv")
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["data"]["truth"] = ""
    params["mlflow"]["registered_model"] = "churn-risk-minimal"
    (root / "minimal.yaml").write_text(yaml.safe_dump(params))
    churn = [str(BIN / "churn")]
    p = ["--params", "minimal.yaml"]
    out = _run([*churn, "validate", "--data", "minimal", "--out", "min/clean"], root, env).stdout
    assert "interactions: no table" in out and "silence: left out" in out
    _run([*churn, "featurize", "--data", "min/clean", "--out", "min/features", *p], root, env)
    meta = json.loads((root / "min" / "features" / "meta.json").read_text())
    assert meta["label_mode"] == "inactivity"
    groups = {f.split("_")[0] for f in meta["features"]}
    assert "days" in groups and "on" in groups  # days_since_last_order, on_time_rate_long
    assert "complaints_recent" not in meta["features"] and "active_links" not in meta["features"]
    _run([*churn, "train", "--frame", "min/features", "--model-out", "min/model", *p], root, env)
    _run(
        [
            *churn,
            "evaluate",
            "--frame",
            "min/features",
            "--model",
            "min/model",
            "--reports",
            "min/reports",
            *p,
        ],
        root,
        env,
    )
    metrics = json.loads((root / "min" / "reports" / "evaluation.json").read_text())
    assert "oracle" not in metrics and metrics["test"]["auc"] > 0.6
    _run(
        [
            *churn,
            "score",
            "--data",
            "min/clean",
            "--all-active",
            "--out",
            "min/scores.csv",
            "--model",
            "min/model/mlflow",
            *p,
        ],
        root,
        env,
    )
    scores = pd.read_csv(root / "min" / "scores.csv")
    assert len(scores) > 50 and scores.p_churn.between(0, 1).all()
