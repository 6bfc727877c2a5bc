"""Killing `churn validate` or `churn score` mid-write leaves the previous outputs intact, and a
rerun recovers (and clears what the killed run left behind)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from features import FeatureConfig
from pipeline.engine import features_at
from pipeline.labels import LabelSpec
from pipeline.store import load
from tests.conftest import T, tiny_world, write_world
from tests.test_badinput_score import PARAMS, save_model

CHURN = [sys.executable, "-m", "pipeline.cli"]


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file a reader would open (temporaries are hidden: .NAME.<pid>.<random>.tmp)."""
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if not p.name.startswith(".")}


def temporaries(parent: Path, name: str) -> list[Path]:
    return [p for p in parent.iterdir() if p.name.startswith(f".{name}.")]


def kill_while_writing(args: list[str], parent: Path, name: str, cwd: Path) -> int | None:
    """Start `churn ARGS`; SIGKILL it as soon as its temporary output appears. Exit code or None."""
    proc = subprocess.Popen(
        [*CHURN, *args], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        while proc.poll() is None:
            if temporaries(parent, name):
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                return None
            time.sleep(0.005)
        return proc.returncode
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


@pytest.fixture(scope="module")
def big_world(tmp_path_factory) -> Path:
    """A simulated world of 3000 accounts (about 40 MB of CSV): validation takes seconds."""
    root = tmp_path_factory.mktemp("big")
    params = root / "params.yaml"
    params.write_text("simulate: {accounts: 3000, seed: 3, mc_samples: 1}\n")
    subprocess.run(
        [*CHURN, "simulate", "--out", str(root / "raw"), "--params", str(params)],
        cwd=root,
        check=True,
        capture_output=True,
    )
    return root / "raw"


def test_killed_validate_keeps_the_previous_clean_tables(big_world, tmp_path):
    small = write_world(tiny_world(), tmp_path / "small")
    out = tmp_path / "clean"
    run = [*CHURN, "validate", "--out", str(out), "--data"]
    assert subprocess.run([*run, str(small)], cwd=tmp_path, capture_output=True).returncode == 0
    before = snapshot(out)
    args = ["validate", "--data", str(big_world), "--out", str(out)]
    killed = 0
    for delay in (0.5, None):  # once early (while checking), once mid-write
        if delay is None:
            code = kill_while_writing(args, tmp_path, "clean", tmp_path)
            assert code is None, "the run ended before its output was written"
        else:
            proc = subprocess.Popen([*CHURN, *args], cwd=tmp_path, stderr=subprocess.DEVNULL)
            time.sleep(delay)
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        killed += 1
        assert snapshot(out) == before  # the previous output, byte for byte
        for leftover in temporaries(tmp_path, "clean"):
            assert leftover.name.endswith(".tmp")  # never under a name a reader would use
    assert killed == 2
    done = subprocess.run([*CHURN, *args], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert not temporaries(tmp_path, "clean")  # the rerun cleared what the killed runs left
    report = json.loads((out / "validation.json").read_text())
    assert report["ok"] and report["tables"]["accounts"]["rows"] == 3000
    assert len(pd.read_parquet(out / "orders.parquet")) == report["tables"]["orders"]["rows"]


@pytest.fixture(scope="module")
def big_clean(big_world) -> Path:
    clean = big_world.parent / "clean"
    subprocess.run(
        [*CHURN, "validate", "--data", str(big_world), "--out", str(clean)],
        cwd=big_world.parent,
        check=True,
        capture_output=True,
    )
    return clean


def test_killed_score_keeps_the_previous_scores(big_clean, tmp_path):
    small = tmp_path / "small"
    run = [*CHURN, "validate", "--data", str(write_world(tiny_world(), tmp_path / "raw"))]
    assert subprocess.run([*run, "--out", str(small)], capture_output=True).returncode == 0
    feats = features_at(load(small), T("2023-03-21"), FeatureConfig(), LabelSpec())
    model = save_model(tmp_path / "model", [c for c in feats if c not in ("account_id", "cutoff")])
    (tmp_path / "params.yaml").write_bytes(PARAMS.read_bytes())
    out = tmp_path / "outputs" / "scores.csv"
    score = ["score", "--all-active", "--model", str(model), "--out", str(out), "--data"]
    first = subprocess.run(
        [*CHURN, *score, str(small)], cwd=tmp_path, capture_output=True, text=True
    )
    assert first.returncode == 0, first.stderr
    before = snapshot(out.parent)
    assert kill_while_writing([*score, str(big_clean)], out.parent, "scores.csv", tmp_path) is None
    assert snapshot(out.parent) == before
    done = subprocess.run(
        [*CHURN, *score, str(big_clean)], cwd=tmp_path, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert sorted(os.listdir(out.parent)) == ["scores.csv", "scores.meta.json"]
    meta = json.loads((out.parent / "scores.meta.json").read_text())
    assert meta["as_of"] == "2025-12-29" and meta["rows"] == len(pd.read_csv(out)) > 100
