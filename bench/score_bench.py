"""Benchmark: batch scoring with reasons for 100,000 and 1,000,000 accounts.

    .venv/bin/python bench/score_bench.py [--sizes 100000 1000000] [--model data/model]

Starts from a feature frame, not from raw tables (building features for a million accounts is
the feature engine's own benchmark): the training frame in data/features is resampled with
replacement to N rows, continuous features jittered by 5% so that rows are not copies. The
timed part is what `churn score` does after the feature build: calibrated probabilities, tiers,
the previous score (a second frame, as the model's score four weeks earlier), reasons and
actions for the tiers in `score.reasons.tiers`, drift against the reference, and the Parquet
score file. Each size runs in a fresh process, so its peak memory (max RSS) is its own.

Also printed: the cost of reasons per account with the compiled TreeSHAP and with LightGBM's
pred_contrib on the same rows, their largest difference (accuracy), and what reasons for
every account would take.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def feature_frame(frame: pd.DataFrame, features: list[str], n: int, seed: int) -> pd.DataFrame:
    """`n` rows resampled from the training frame, continuous features jittered by 5%."""
    rng = np.random.default_rng(seed)
    out = frame[features].iloc[rng.integers(0, len(frame), n)].reset_index(drop=True)
    for column in features:
        values = out[column].to_numpy(dtype="float64", na_value=np.nan)
        present = values[~np.isnan(values)]
        if len(present) and not np.allclose(present, np.round(present)):
            out[column] = values * rng.normal(1.0, 0.05, n)
    out.insert(0, "account_id", [f"B{i:07d}" for i in range(n)])
    return out


def cpu_seconds() -> float:
    """CPU time of this process so far, all threads, user and system."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6


def one(n: int, model_dir: Path, frame_dir: Path) -> dict:
    """Score n accounts in this process; return the figures."""
    from models.drift import Reference, drift_report, find_reference, reference_profile
    from pipeline.params import load_params
    from pipeline.registry import load_model
    from pipeline.scoring import COLUMNS, predict, score_features
    from pipeline.tiers import Settings

    params = load_params(ROOT / "params.yaml")
    settings = Settings.from_params(params.get("score") or {})
    mlflow_dir = model_dir / "mlflow" if (model_dir / "mlflow").is_dir() else model_dir
    model = load_model(ROOT, "churn-risk", str(model_dir), mlflow_dir)
    cm = model.churn_model
    source = pd.read_parquet(frame_dir / "frame.parquet")
    reference = find_reference(model_dir, None)
    if reference is None:  # an older model without one: the training frame stands in
        reference = Reference(reference_profile(source, cm.features), "bench: whole frame")
    feats = feature_frame(source, cm.features, n, seed=1)
    before = feature_frame(source, cm.features, n, seed=2)
    del source
    rss_before = rss_mb()

    started, cpu_started = time.perf_counter(), cpu_seconds()
    scored, facts = score_features(model, feats, settings, reference, progress=False)
    previous = pd.Series(predict(model, before), index=before["account_id"].to_numpy())
    t_prev = time.perf_counter()
    scored["p_churn_change"] = (scored["p_churn"] - scored["account_id"].map(previous)).round(6)
    scored = scored.assign(as_of="2026-01-01", status="scored", model_version=model.version)
    out = scored.sort_values(["p_churn", "account_id"], ascending=[False, True], kind="stable")
    with tempfile.TemporaryDirectory() as tmp:
        out[COLUMNS].to_parquet(Path(tmp) / "scores.parquet", index=False)
        size = (Path(tmp) / "scores.parquet").stat().st_size
    wall, cpu = time.perf_counter() - started, cpu_seconds() - cpu_started
    drift = drift_report(feats, reference, settings.psi_threshold, settings.drift_min_rows)
    return {
        "accounts": n,
        "wall_s": round(wall, 2),
        "accounts_per_s": round(n / wall),
        "cpu_s": round(cpu, 1),
        "seconds": facts["seconds"]
        | {"previous": round(t_prev - started - sum(facts["seconds"].values()), 2)},
        "rows_with_reasons": facts["rows_with_reasons"],
        "reasons_for_tiers": facts["reasons_for_tiers"],
        "tier_counts": out["risk_tier"].value_counts().to_dict(),
        "drifted": drift["drifted"],
        "score_file_mb": round(size / 1e6, 1),
        "rss_before_scoring_mb": round(rss_before),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3),
        "trees": cm.estimator.booster_.num_trees(),
    }


def accuracy(model_dir: Path, frame_dir: Path, rows: int) -> dict:
    """Compiled TreeSHAP against LightGBM's pred_contrib on the same rows: time and difference."""
    from models.reasons import contributions, raw_score
    from pipeline.registry import load_model

    mlflow_dir = model_dir / "mlflow" if (model_dir / "mlflow").is_dir() else model_dir
    model = load_model(ROOT, "churn-risk", str(model_dir), mlflow_dir)
    source = pd.read_parquet(frame_dir / "frame.parquet")
    feats = feature_frame(source, model.churn_model.features, rows, seed=3)
    contributions(model, feats.head(100))  # compile, build the tables
    t0 = time.perf_counter()
    fast = contributions(model, feats)
    t1 = time.perf_counter()
    slow = contributions(model, feats, method="lightgbm")
    t2 = time.perf_counter()
    return {
        "rows": rows,
        "compiled_ms_per_account": round((t1 - t0) / rows * 1e3, 3),
        "lightgbm_ms_per_account": round((t2 - t1) / rows * 1e3, 3),
        "max_abs_difference": float(np.abs(fast.to_numpy() - slow.to_numpy()).max()),
        "max_abs_sum_minus_raw_score": float(
            np.abs(fast.sum(axis=1).to_numpy() - raw_score(model, feats)).max()
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--model", type=Path, default=ROOT / "data" / "model")
    parser.add_argument("--frame", type=Path, default=ROOT / "data" / "features")
    parser.add_argument("--accuracy-rows", type=int, default=5_000)
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--accuracy-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "ERROR")
    if args.one:
        print(json.dumps(one(args.one, args.model, args.frame)))
        return
    if args.accuracy_only:
        print(json.dumps(accuracy(args.model, args.frame, args.accuracy_rows)))
        return

    def child(*extra: str) -> dict:
        cmd = [sys.executable, __file__, "--model", str(args.model), "--frame", str(args.frame)]
        proc = subprocess.run([*cmd, *extra], capture_output=True, text=True, cwd=ROOT)
        if proc.returncode:
            sys.exit(f"benchmark failed:\n{proc.stderr[-3000:]}")
        return json.loads(proc.stdout.strip().splitlines()[-1])

    print(
        f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} (other "
        "processes' share: wall time stretches with it, CPU seconds do not); "
        f"model {args.model}; feature frame resampled from {args.frame / 'frame.parquet'} "
        "(the feature build itself is not timed)"
    )
    acc = child("--accuracy-only", "--accuracy-rows", str(args.accuracy_rows))
    print(
        f"reasons per account on {acc['rows']:,} accounts: compiled TreeSHAP "
        f"{acc['compiled_ms_per_account']} ms, LightGBM pred_contrib "
        f"{acc['lightgbm_ms_per_account']} ms; largest difference "
        f"{acc['max_abs_difference']:.1e} log-odds, contributions minus raw score "
        f"{acc['max_abs_sum_minus_raw_score']:.1e}"
    )
    for n in args.sizes:
        r = child("--one", str(n))
        s = r["seconds"]
        all_rows = n * acc["compiled_ms_per_account"] / 1e3
        print(
            f"{n:>9,} accounts: {r['wall_s']:.1f} s wall ({r['cpu_s']:.1f} CPU s, all threads), "
            f"{r['accounts_per_s']:,} accounts/s, "
            f"peak RSS {r['peak_rss_mb']:,} MB ({r['rss_before_scoring_mb']:,} MB before "
            f"scoring); predict {s['predict']} s, previous {s['previous']} s, reasons "
            f"{s['reasons']} s for {r['rows_with_reasons']:,} accounts in tiers "
            f"{', '.join(r['reasons_for_tiers'])}, drift {s['drift']} s; tiers "
            f"{r['tier_counts']}; reasons for every account would add about {all_rows:.0f} s"
        )


if __name__ == "__main__":
    main()
