"""Benchmark the pipeline on a simulated world of N accounts: time and peak memory per step.

    python bench/run.py --accounts 100000 [--world /tmp/aftersale-bench/100000] [--out r.json]
    python bench/run.py --reuse /tmp/big            # a world already simulated (DIR/raw)
    churn bench --accounts 100000                   # the same, through the CLI

Steps (each in a fresh process, so that its peak resident memory is its own):

- simulate: the world in Parquet (skipped with --reuse; no Monte Carlo truth unless
  --mc-samples), into WORLD/raw
- validate: what `churn validate` does (pipeline.checking.check + pipeline.store.write_clean) into
  WORLD/clean, with DuckDB under the same --threads and --memory-limit as the features
- trusted_clean (instead of validate, not by default): the same clean folder without the
  checks, for simulated worlds too large to validate in the time at hand
- scan: a bare DuckDB scan that reads every event column the features use and aggregates by
  account (the floor that features at one cutoff are compared with)
- featurize_one: pipeline.engine.features_at at one cutoff (default: the day after the data)
- featurize_schedule: pipeline.frame.training_frame over the last --cutoffs cutoffs of the
  snapshot schedule, every --every-days days, written to WORLD/frame
- train: `churn train` on that frame (--trees caps n_estimators), MLflow store in WORLD
- score_earlier (not by default): `churn score --all-active` as of `score.change_days` before
  the data's end, kept in the benchmark run's history (the run an account manager had a
  month ago)
- score: `churn score --all-active` with the model just trained, as of the data's end; after
  score_earlier the change in p_churn reads that run from the history instead of computing
  features and predictions at the earlier date again

For train and score the wall time is the whole command; for the other steps it is the call
itself (process start and imports are in `process s`). `cpu s` is the CPU time of the same
span, all threads: the steadier figure when the machine is shared. Peak memory is the
maximum resident set size of the step's process (wait4).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

ROOT = Path(__file__).resolve().parents[1]
STEPS = (
    "simulate",
    "validate",
    "trusted_clean",
    "scan",
    "featurize_one",
    "featurize_schedule",
    "train",
    "score_earlier",
    "score",
)
EVENT_TABLES = ("orders", "interactions", "links")
# every event column the features read (features/), aggregated per account by the bare scan
SCAN = {
    "orders": {
        "order_date": "max",
        "amount": "sum",
        "product_line": "max",
        "channel": "max",
        "promised_date": "max",
        "delivered_date": "max",
    },
    "interactions": {
        "occurred_at": "max",
        "type": "max",
        "initiated_by": "max",
        "department": "max",
        "minutes": "sum",
        "contact_id": "max",
        "resolved_at": "max",
    },
    "links": {"link_type": "max", "start_date": "min", "end_date": "max"},
}


# ---- steps, run in a child process -------------------------------------------------------
_CALL_CPU: list[float] = []  # CPU seconds (all threads) of the timed call, set by _elapsed


def _clock() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def _elapsed(start: tuple[float, float]) -> float:
    """Wall seconds since start (from _clock); the CPU seconds go to _CALL_CPU."""
    _CALL_CPU.append(time.process_time() - start[1])
    return time.perf_counter() - start[0]


def _settings(work: Path) -> dict[str, Any]:
    return json.loads((work / "settings.json").read_text())


def _engine(params: dict[str, Any]):
    from pipeline.engine import EngineSpec

    return EngineSpec.from_params(params.get("features", {}))


def _limits(con, spec) -> None:
    """DuckDB threads and memory limit as the features get them (threads None: every core)."""
    if spec.threads is not None:
        con.execute(f"SET threads = {int(spec.threads)}")
    if spec.memory_limit:
        con.execute(f"SET memory_limit = '{spec.memory_limit}'")


def _feature_args(params: dict[str, Any]):
    from features import FeatureConfig
    from features.catalog import GROUPS
    from pipeline.labels import LabelSpec

    cfg = FeatureConfig.from_params(params.get("features", {}))
    label = LabelSpec.from_params(params.get("label", {}))
    groups = params.get("features", {}).get("groups") or GROUPS
    return cfg, label, groups


def _event_rows(validated) -> int:
    return sum(validated.kept.get(t, 0) for t in EVENT_TABLES)


def step_simulate(s: dict[str, Any]) -> dict[str, Any]:
    from pipeline.simulate import SimConfig, write

    cfg = SimConfig(
        n_accounts=s["accounts"], seed=s["seed"], mc_samples=s["mc_samples"], weeks=s["weeks"]
    )
    world = Path(s["world"])
    started = _clock()
    counts = write(cfg, world / "raw", world / "truth.parquet", "parquet")
    seconds = _elapsed(started)
    events = sum(counts.get(t, 0) for t in EVENT_TABLES)
    return {"seconds": seconds, "rows_in": events, "rows_out": events, "counts": counts}


def step_validate(s: dict[str, Any]) -> dict[str, Any]:
    """What `churn validate` does (check + write_clean), under the bench's threads and limit."""
    import duckdb

    from pipeline.checking import check
    from pipeline.store import write_clean

    spec = _engine(s["params"])
    connect = duckdb.connect

    def limited(*args: Any, **kwargs: Any) -> duckdb.DuckDBPyConnection:
        con = connect(*args, **kwargs)
        _limits(con, spec)
        return con

    duckdb.connect = limited  # this process only: validate's connection gets the same settings
    settings = s["params"].get("validate") or {}
    started = _clock()
    result = check(
        Path(s["world"]) / "raw",
        policy=settings.get("policy", "fail"),
        end_date=settings.get("end_date"),
        vocabulary=settings.get("vocabulary"),
    )
    write_clean(result, Path(s["clean"]))
    events = sum(result.kept.get(t, 0) for t in EVENT_TABLES)
    return {"seconds": _elapsed(started), "rows_in": events, "rows_out": events}


def step_trusted_clean(s: dict[str, Any]) -> dict[str, Any]:
    """The clean folder validate would write, without its checks: for simulated worlds only.

    Each contract column cast to its contract type, in file order, and the report that
    `pipeline.store.load` opens; at a million accounts this takes minutes where validate
    takes most of an hour on this machine. Simulated data passes every check, so the tables
    are the ones validate writes (the bench's tests compare them).
    """
    import duckdb

    from pipeline.contract import EVENT_TIME, SQL_TYPES, TABLES
    from pipeline.io import atomic_dir, write_json
    from pipeline.lineage import source_of
    from pipeline.store import REPORT_NAME

    spec = _engine(s["params"])
    raw, clean = Path(s["world"]) / "raw", Path(s["clean"])
    con = duckdb.connect()
    _limits(con, spec)
    started = _clock()
    tables, spans = {}, []
    with atomic_dir(clean) as tmp:
        for name, table in TABLES.items():
            path = raw / f"{name}.parquet"
            if not path.is_file():
                continue
            present = {r[0] for r in con.execute(f"DESCRIBE SELECT * FROM '{path}'").fetchall()}
            cols = [c for c in table.columns if c.name in present]
            select = ", ".join(
                f'CAST("{c.name}" AS {SQL_TYPES[c.kind]}) AS "{c.name}"' for c in cols
            )
            con.execute(
                f"COPY (SELECT {select} FROM read_parquet('{path}')) "
                f"TO '{tmp / (name + '.parquet')}' (FORMAT parquet)"
            )
            rows = con.execute(f"SELECT count(*) FROM '{path}'").fetchone()[0]
            tables[name] = {
                "rows": rows,
                "columns": [c.name for c in cols],
                "file": path.name,
                "encoding": None,
                "clean_rows": rows,
            }
            if name in EVENT_TIME:
                spans.append(f"SELECT {EVENT_TIME[name]} AS t FROM '{tmp / (name + '.parquet')}'")
        start, end = con.execute(
            "SELECT CAST(CAST(min(t) AS DATE) AS VARCHAR), CAST(CAST(max(t) AS DATE) AS VARCHAR) "
            f"FROM ({' UNION ALL '.join(spans)})"
        ).fetchone()
        report = {
            "data_dir": str(raw), "source": source_of(raw), "ok": True, "policy": "fail",
            "end_date": None,
            "tables": tables, "data_start": start, "data_end": end, "notes": [],
            "problems": [], "dropped": {}, "mapped_to_other": {},
        }  # fmt: skip
        write_json(report, tmp / REPORT_NAME)  # last: load() trusts tables older than it
    seconds = _elapsed(started)
    events = sum(tables[t]["rows"] for t in EVENT_TABLES if t in tables)
    return {"seconds": seconds, "rows_in": events, "rows_out": events}


def step_scan(s: dict[str, Any]) -> dict[str, Any]:
    """Every event column the features use, read and aggregated per account, on DuckDB."""
    import duckdb

    spec = _engine(s["params"])
    clean = Path(s["clean"])
    con = duckdb.connect()
    _limits(con, spec)
    started = _clock()
    rows_in = rows_out = 0
    for table, cols in SCAN.items():
        path = clean / f"{table}.parquet"
        if not path.is_file():
            continue
        aggs = ", ".join(f"{fn}({c}) AS {c}" for c, fn in cols.items())
        result = con.execute(
            f"SELECT account_id, count(*) AS n, {aggs} FROM read_parquet('{path}') "
            "GROUP BY account_id"
        ).to_arrow_table()
        rows_out += result.num_rows
        rows_in += con.execute(f"SELECT count(*) FROM read_parquet('{path}')").fetchone()[0]
    return {"seconds": _elapsed(started), "rows_in": rows_in, "rows_out": rows_out}


def step_featurize_one(s: dict[str, Any]) -> dict[str, Any]:
    import pandas as pd

    from features.build import choose_engine
    from pipeline.engine import features_at
    from pipeline.store import data_end, load

    params = s["params"]
    cfg, label, groups = _feature_args(params)
    spec = _engine(params)
    validated = load(Path(s["clean"]))
    as_of = pd.Timestamp(s["as_of"]) if s.get("as_of") else data_end(validated)
    started = _clock()
    frame = features_at(validated, as_of, cfg, label, groups, spec)
    seconds = _elapsed(started)
    return {
        "seconds": seconds,
        "rows_in": _event_rows(validated),
        "rows_out": len(frame),
        "as_of": str(as_of.date()),
        "features": frame.shape[1] - 2,
        "engine": choose_engine(spec.engine, 1),
    }


def step_featurize_schedule(s: dict[str, Any]) -> dict[str, Any]:
    """`churn featurize` (the training frame) over the last s["cutoffs"] cutoffs, in process."""
    import yaml

    from features.build import choose_engine
    from pipeline.cli import featurize as featurize_command
    from pipeline.store import load

    params, work = s["params"], Path(s["work"])
    _, label, _ = _feature_args(params)
    validated = load(Path(s["clean"]))
    cutoffs = schedule(validated, label, s["cutoffs"], s["every_days"])
    sched = params.setdefault("schedule", {})
    sched.update(start=str(cutoffs[0].date()), end=None, every_days=s["every_days"])
    (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    out = Path(s["world"]) / "frame"
    started = _clock()
    featurize_command(data=Path(s["clean"]), out=out, as_of=None, params_file=work / "params.yaml")
    seconds = _elapsed(started)
    meta = json.loads((out / "meta.json").read_text())
    return {
        "seconds": seconds,
        "rows_in": _event_rows(validated),
        "rows_out": meta["rows"],
        "cutoffs": len(meta["cutoffs"]),
        "first_cutoff": meta["cutoffs"][0],
        "last_cutoff": meta["cutoffs"][-1],
        "engine": choose_engine(_engine(params).engine, len(cutoffs)),
    }


def schedule(validated, label, n: int, every_days: int) -> list:
    """The last n cutoffs of the snapshot schedule (every every_days days, default warm-up)."""
    import pandas as pd

    from pipeline.schedule import snapshot_schedule
    from pipeline.store import data_end

    full = snapshot_schedule(
        pd.Timestamp(validated.data_start), data_end(validated), label, every_days=every_days
    )
    return full[-n:]


CHILD_STEPS = {
    "simulate": step_simulate,
    "validate": step_validate,
    "trusted_clean": step_trusted_clean,
    "scan": step_scan,
    "featurize_one": step_featurize_one,
    "featurize_schedule": step_featurize_schedule,
}


def child(step: str, work: Path) -> None:
    """Run one step in this process and write its figures to WORK/STEP.json."""
    out = CHILD_STEPS[step](_settings(work))
    out["call_cpu_s"] = _CALL_CPU[-1] if _CALL_CPU else None
    (work / f"{step}.json").write_text(json.dumps(out, default=str))


# ---- the parent: one process per step ----------------------------------------------------
def _du(path: Path) -> int:
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            with contextlib.suppress(OSError):  # a spill file removed meanwhile
                total += os.lstat(os.path.join(root, f)).st_size
    return total


def run_process(cmd: list[str], cwd: Path, env: dict[str, str], log: Path) -> dict[str, Any]:
    """Run cmd; its wall time, peak RSS (GiB, from wait4) and the most DuckDB spilled."""
    started = time.perf_counter()
    with open(log, "w") as sink:
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=sink, stderr=subprocess.STDOUT)
        # DuckDB's temp_directory: the features' (pipeline.engine.ibis_tables) and, for
        # other connections, ./.tmp
        spills = [cwd / ".tmp", Path(tempfile.gettempdir()) / f"aftersale-duckdb-{proc.pid}"]
        peak_spill, done = 0, threading.Event()

        def watch() -> None:
            nonlocal peak_spill
            while not done.wait(0.5):
                used = sum(_du(s) for s in spills if s.exists())
                peak_spill = max(peak_spill, used)

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        done.set()
        watcher.join()
    return {
        "process_s": time.perf_counter() - started,
        "peak_gb": usage.ru_maxrss / 2**20,  # KiB on Linux
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "spill_gb": peak_spill / 2**30,
        "returncode": proc.returncode,
    }


def command(step: str, s: dict[str, Any], work: Path) -> list[str]:
    """The process that runs a step: the churn CLI, or this script in child mode."""
    if step in CHILD_STEPS:
        return [sys.executable, str(Path(__file__).resolve()), "--child", step, "--work", str(work)]
    churn = [sys.executable, "-m", "pipeline.cli"]
    world, params = Path(s["world"]), str(work / "params.yaml")
    if step == "train":
        frame, model = str(world / "frame"), str(world / "model")
        return [*churn, "train", "--frame", frame, "--model-out", model, "--params", params]
    if step in ("score", "score_earlier"):
        cmd = [
            *churn, "score", "--data", s["clean"], "--all-active", "--out",
            str(world / f"{step}.parquet"), "--model", str(world / "model"), "--params", params,
        ]  # fmt: skip
        if step == "score_earlier":
            cmd += ["--as-of", earlier_date(s)]
        return cmd
    raise ValueError(step)


def earlier_date(s: dict[str, Any]) -> str:
    """The data's end (the as-of date of `churn score` by default) less score.change_days."""
    import pandas as pd

    from pipeline.store import data_end, load

    days = int(s["params"].get("score", {}).get("change_days", 28))
    return str((data_end(load(Path(s["clean"]))) - pd.Timedelta(days=days)).date())


def _rows_of_cli(step: str, s: dict[str, Any]) -> tuple[int, int]:
    """Rows in and out of a CLI step, read from what it wrote."""
    import pyarrow.parquet as pq

    world = Path(s["world"])
    if step == "train":
        frame = pq.read_metadata(world / "frame" / "frame.parquet").num_rows
        return frame, frame
    scores = pq.read_metadata(world / f"{step}.parquet").num_rows
    return scores, scores


def params_for(args: argparse.Namespace) -> dict[str, Any]:
    """The project's params.yaml with the benchmark's overrides."""
    import yaml

    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    feats = params.setdefault("features", {})
    if args.threads:
        feats["threads"] = args.threads
    feats["memory_limit"] = args.memory_limit
    if args.engine:
        feats["engine"] = args.engine
    if args.trees:
        params.setdefault("train", {})["n_estimators"] = args.trees
    return params


def table(results: list[dict[str, Any]]) -> str:
    head = (
        "step", "rows in", "rows out", "wall s", "rows/s", "process s", "cpu s", "peak GB",
        "spill GB",
    )  # fmt: skip
    lines = [" | ".join(head), " | ".join("---" for _ in head)]
    for r in results:
        rate = r["rows_in"] / r["seconds"] if r.get("seconds") else float("nan")
        lines.append(
            " | ".join(
                [
                    r["step"],
                    f"{r['rows_in']:,}",
                    f"{r['rows_out']:,}",
                    f"{r['seconds']:.1f}",
                    f"{rate:,.0f}",
                    f"{r['process_s']:.1f}",
                    f"{r.get('call_cpu_s') or r['cpu_s']:.1f}",
                    f"{r['peak_gb']:.2f}",
                    f"{r['spill_gb']:.2f}",
                ]
            )
        )
    return "\n".join("| " + line + " |" for line in lines)


app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
DEFAULT_STEPS = ",".join(s for s in STEPS[1:] if s not in ("trusted_clean", "score_earlier"))


def _opt(help_: str, default: str | None = None, **kwargs) -> Any:
    """A typer option whose help names its default (brackets escaped for rich markup)."""
    return typer.Option(help=help_ + (f" \\[default: {default}]" if default else ""), **kwargs)


@app.command(help=escape(__doc__ or ""))
def bench(
    accounts: Annotated[int, _opt("accounts to simulate")] = 100_000,
    seed: Annotated[int, _opt("simulation seed")] = 42,
    weeks: Annotated[int, _opt("weeks of history to simulate (events grow with it)")] = 156,
    mc_samples: Annotated[int, _opt("Monte Carlo truth replicates (0: no truth)")] = 0,
    world: Annotated[
        Path | None, _opt("folder for the world and outputs", "/tmp/aftersale-bench/ACCOUNTS")
    ] = None,
    reuse: Annotated[Path | None, _opt("a world simulated before (DIR/raw): no simulate")] = None,
    steps: Annotated[str, _opt("comma-separated, in order; of: " + ", ".join(STEPS))] = (
        DEFAULT_STEPS
    ),
    threads: Annotated[
        int | None, _opt("DuckDB threads (features.threads)", "params: every core")
    ] = None,
    memory_limit: Annotated[str | None, _opt("DuckDB memory limit, e.g. 2GB", "none")] = None,
    engine: Annotated[
        str | None, _opt("features.engine: auto, join, sliding or window", "params")
    ] = None,
    as_of: Annotated[str | None, _opt("featurize_one cutoff", "data end")] = None,
    cutoffs: Annotated[int, _opt("cutoffs of the training frame")] = 24,
    every_days: Annotated[int, _opt("days between those cutoffs")] = 28,
    trees: Annotated[int, _opt("train.n_estimators cap (0: params)")] = 300,
    out: Annotated[Path | None, _opt("write the results as JSON here")] = None,
    child_step: Annotated[str | None, typer.Option("--child", hidden=True)] = None,
    work: Annotated[Path | None, typer.Option(hidden=True)] = None,
) -> int:
    args = argparse.Namespace(**locals())
    args.child = args.child_step
    if args.child is not None:
        if args.child not in CHILD_STEPS:
            raise typer.BadParameter(f"not a child step: {args.child}", param_hint="--child")
        child(args.child, args.work)
        return 0
    from pipeline.simulate import SimConfig

    try:  # the world's size is checked before any step runs
        SimConfig(n_accounts=args.accounts, seed=args.seed, weeks=args.weeks)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    return execute(args)


def main(argv: list[str] | None = None) -> int:
    """Run as a function (tests): the exit code."""
    command = typer.main.get_command(app)
    try:
        return command.main(args=argv, prog_name="churn bench", standalone_mode=False)
    except typer.BadParameter as exc:  # as on the command line: the message, exit 2
        exc.show()
        raise SystemExit(exc.exit_code) from None


def execute(args: argparse.Namespace) -> int:
    """Every step in its own process; the table, and the JSON with --out."""
    steps = [s.strip() for s in args.steps.split(",") if s.strip()]
    unknown = sorted(set(steps) - set(STEPS))
    if unknown:
        raise SystemExit(f"unknown steps {unknown}; choose from {', '.join(STEPS)}")
    if args.reuse:
        world = args.reuse.resolve()
        if not (world / "raw").is_dir() and not (world / "clean").is_dir():
            raise SystemExit(f"--reuse {world}: no raw/ or clean/ folder in it")
        steps = [s for s in steps if s != "simulate"]
    else:
        world = (args.world or Path("/tmp/aftersale-bench") / str(args.accounts)).resolve()
        if "simulate" not in steps and not (world / "raw").is_dir():
            steps.insert(0, "simulate")
    stamp = time.strftime("%Y%m%d-%H%M%S")  # one folder per run: runs may share a world
    work = (
        world
        / "bench"
        / f"{stamp}-{os.getpid()}-{args.threads or 'all'}t-{args.memory_limit or 'nolimit'}"
    )
    work.mkdir(parents=True)
    params = params_for(args)
    # score runs are kept in this benchmark run's own history (score_earlier, then score)
    params.setdefault("score", {})["history"] = str(work / "history")
    import yaml

    (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    settings = {
        "world": str(world),
        "work": str(work),
        "clean": str(world / "clean"),
        "accounts": args.accounts,
        "seed": args.seed,
        "weeks": args.weeks,
        "mc_samples": args.mc_samples,
        "params": params,
        "as_of": args.as_of,
        "cutoffs": args.cutoffs,
        "every_days": args.every_days,
    }
    (work / "settings.json").write_text(json.dumps(settings, default=str))
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": f"sqlite:///{world / 'mlflow.db'}",  # never the project's store
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    results = []
    print(
        f"world {world}; DuckDB threads={args.threads} memory_limit={args.memory_limit}; "
        f"load {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores",
        flush=True,
    )
    for step in steps:
        load_before = os.getloadavg()[0]
        measured = run_process(command(step, settings, work), work, env, work / f"{step}.log")
        if measured["returncode"] != 0:
            print((work / f"{step}.log").read_text()[-3000:], file=sys.stderr)
            raise SystemExit(f"step {step} failed (exit {measured['returncode']})")
        if step in CHILD_STEPS:
            figures = json.loads((work / f"{step}.json").read_text())
        else:
            rows_in, rows_out = _rows_of_cli(step, settings)
            figures = {"seconds": measured["process_s"], "rows_in": rows_in, "rows_out": rows_out}
        results.append({"step": step, **figures, **measured, "load_before": load_before})
        r = results[-1]
        print(
            f"{step}: {r['seconds']:.1f}s, {r['rows_in']:,} rows in, {r['rows_out']:,} out, "
            f"peak {r['peak_gb']:.2f} GB (load {load_before:.1f})",
            flush=True,
        )
    by = {r["step"]: r for r in results}
    ratio = cpu_ratio = None
    if "scan" in by and "featurize_one" in by:
        one, scan = by["featurize_one"], by["scan"]
        ratio = one["seconds"] / scan["seconds"]
        if one.get("call_cpu_s") and scan.get("call_cpu_s"):
            cpu_ratio = one["call_cpu_s"] / scan["call_cpu_s"]
    print()
    print(table(results))
    if ratio is not None:
        print(f"\nfeaturize_one / bare scan: {ratio:.2f}x wall, {cpu_ratio or 0:.2f}x cpu")
    report = {
        "world": str(world),
        "accounts": args.accounts if not args.reuse else None,
        "threads": args.threads,
        "memory_limit": args.memory_limit,
        "engine": args.engine or params.get("features", {}).get("engine"),
        "cutoffs": args.cutoffs,
        "every_days": args.every_days,
        "trees": args.trees,
        "featurize_one_over_scan": ratio,
        "featurize_one_over_scan_cpu": cpu_ratio,
        "machine": {"cores": os.cpu_count(), "python": platform.python_version()},
        "load_end": os.getloadavg(),
        "steps": results,
    }
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2, default=str) + "\n")
        print(f"-> {args.out}")
    return 0


if __name__ == "__main__":
    app()
