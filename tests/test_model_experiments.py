"""A queued DVC experiment (run in a temporary folder by DVC's queue) logs to the MLflow store
at the repository root: real `dvc exp run --queue` / `--run-all`, real MLflow, no mocks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from models.lineage import lineage_alias
from tests.test_e2e import project_copy

BIN = Path(sys.executable).parent

pytestmark = pytest.mark.e2e


def _run(cmd: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc


@pytest.fixture(scope="module")
def queued(tmp_path_factory):
    repo = tmp_path_factory.mktemp("queue")
    env = project_copy(repo, accounts=300, mc_samples=8)
    dvc = str(BIN / "dvc")
    _run([dvc, "exp", "run", "--queue", "-S", "train.learning_rate=0.05"], repo, env)
    _run([dvc, "exp", "run", "--run-all"], repo, env)
    return repo, env


def test_queued_experiment_lands_in_the_root_store(queued):
    from mlflow.tracking import MlflowClient

    repo, env = queued
    db = repo / "mlflow.db"
    assert db.is_file() and (repo / "mlartifacts").is_dir()
    assert not list((repo / ".dvc" / "tmp").rglob("mlflow.db"))  # not in DVC's temp folder
    uri = f"sqlite:///{db}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    exp = client.get_experiment_by_name("churn")
    runs = client.search_runs([exp.experiment_id])
    assert len(runs) == 1
    run = runs[0]
    assert run.data.params["train.learning_rate"] == "0.05"
    assert run.data.tags.get("dvc_exp_name")
    head = _run(["git", "rev-parse", "HEAD"], repo, env).stdout.strip()
    assert run.data.tags["git_commit"] == head
    for key in ("valid.auc", "test.auc", "test.ece", "baselines.logistic_regression.auc"):
        assert key in run.data.metrics, key
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "plots")}
    assert {"plots/roc.png", "plots/calibration.png", "plots/campaign.png"} <= artifacts
    version = client.get_model_version_by_alias("churn-risk", "champion")
    assert version.run_id == run.info.run_id
    # run in a temporary copy of the repository, the data is still 'data/raw': its champion
    assert version.tags["data.lineage"] == version.tags["data.source"] == "data/raw"
    mine = client.get_model_version_by_alias("churn-risk", lineage_alias("champion", "data/raw"))
    assert mine.version == version.version

    shown = json.loads(_run([str(BIN / "dvc"), "exp", "show", "--json"], repo, env).stdout)
    names = [
        e.get("name")
        for rev in shown
        for exp_ in rev.get("experiments") or []
        for e in exp_.get("revs") or []
    ]
    assert run.data.tags["dvc_exp_name"] in names

    out = _run([str(BIN / "churn"), "compare", "--last", "3"], repo, env).stdout
    assert run.info.run_id[:8] in out and "test.auc" in out
