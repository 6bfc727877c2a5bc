"""Featuretools beside our feature engine: the same accounts, the same cutoff, the same values.

    python bench/featuretools_bench.py --world DIR [--cutoff YYYY-MM-DD] [--out r.json]

DIR is a world of `churn bench` (DIR/clean: the clean Parquet tables that `--steps
simulate,trusted_clean` or `validate` write). Featuretools comes with the `bench` extra:
`pip install -c requirements.lock -e ".[bench]"`.

Three processes, one after another, so that each side's peak memory is its own (wait4):

- ours: pipeline.engine.features_at at the cutoff, every feature of the catalog (what
  `churn bench --steps featurize_one` times); its accounts are the rows both sides compute
- ours_matched: the same call with the catalog cut down to the matched features (MATCHED)
- featuretools: the clean tables read into pandas (only the columns the matched features
  use), an EntitySet (accounts, orders, interactions, links), and one
  `calculate_feature_matrix` per window (all history, the long and the recent window as
  `training_window`), for the same accounts at the same cutoff, events strictly before it
  (`include_cutoff_time=False`), conditions as `where` features (Featuretools' interesting
  values)

Then every matched value is compared (NaN with NaN, numbers within TOLERANCE): a benchmark of
different numbers is worthless, so any mismatch prints the count per feature and exits 1.
The table gives wall seconds (the timed call, not imports), CPU seconds of that call, the
peak resident memory of each process (GiB) and the 1-minute load average before each.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
INSTALL_HINT = 'pip install -c requirements.lock -e ".[bench]"'
SIDES = ("ours", "ours_matched", "featuretools")
# |ours - theirs| <= ABS_TOLERANCE + REL_TOLERANCE * |theirs|: our sums and means add each
# value in whole millionths (features.fixed_point.fixed_point), Featuretools adds doubles
ABS_TOLERANCE = 1e-6
REL_TOLERANCE = 1e-8


@dataclass(frozen=True)
class Match:
    """A catalog feature as Featuretools computes it: `primitive` of `dataframe`'s rows (of
    `column`; None: the time index) that lie in `window` before the cutoff and, with `where`,
    whose column equals a value. `time_since` is a transform of an account column instead."""

    name: str  # the catalog's feature
    window: str  # all, long or recent (FeatureConfig.window)
    dataframe: str  # orders, interactions, links, accounts
    primitive: str  # count, sum, mean, num_unique, time_since_last, time_since_first, ...
    column: str | None = None
    where: tuple[str, str] | None = None  # (column, value)


# Every feature of the catalog that Featuretools expresses as one primitive: windows that end
# at the cutoff (a training window), conditions that are one column equal to one value.
MATCHED = (
    # all history before the cutoff
    Match("days_since_last_order", "all", "orders", "time_since_last"),
    Match("days_since_first_order", "all", "orders", "time_since_first"),
    Match("orders_total", "all", "orders", "count"),
    Match("days_since_last_contact", "all", "interactions", "time_since_last"),
    Match(
        "days_since_last_complaint", "all", "interactions", "time_since_last",
        where=("type", "complaint"),
    ),
    Match(
        "days_since_last_customer_contact", "all", "interactions", "time_since_last",
        where=("initiated_by", "customer"),
    ),
    Match("tenure_days", "all", "accounts", "time_since", "customer_since"),
    # the long window (features.long_days)
    Match("order_value_long", "long", "orders", "sum", "amount"),
    Match("avg_order_value_long", "long", "orders", "mean", "amount"),
    Match("product_lines_long", "long", "orders", "num_unique", "product_line"),
    Match("supplier_departments_long", "long", "interactions", "num_unique", "department"),
    *(
        Match(f"{name}_long", "long", "interactions", "count", where=("type", kind))
        for name, kind in (
            ("forecasts_shared", "forecast_shared"),
            ("design_collaborations", "design_collaboration"),
            ("price_negotiations", "price_negotiation"),
            ("disputes", "dispute"),
            ("rfqs", "rfq"),
            ("inspections", "inspection"),
        )
    ),
    # the recent window (features.recent_days)
    Match("orders_recent", "recent", "orders", "count"),
    Match("complaints_recent", "recent", "interactions", "count", where=("type", "complaint")),
    Match("rfqs_recent", "recent", "interactions", "count", where=("type", "rfq")),
    Match(
        "customer_contacts_recent", "recent", "interactions", "count",
        where=("initiated_by", "customer"),
    ),
    Match(
        "supplier_touches_recent", "recent", "interactions", "count",
        where=("initiated_by", "supplier"),
    ),
    Match("contacts_active_recent", "recent", "interactions", "num_unique", "contact_id"),
    Match("links_started_recent", "recent", "links", "count"),
)  # fmt: skip

# The event tables as Featuretools holds them: time index, then the other columns read
# (account_id, the foreign key, is read for each). Categorical columns are declared, not
# inferred (inference reads every row).
EVENTS = {
    "orders": ("order_date", ("amount", "product_line")),
    "interactions": ("occurred_at", ("type", "initiated_by", "department", "contact_id")),
    "links": ("start_date", ()),
}
CATEGORICAL = {"product_line", "type", "initiated_by", "department", "contact_id"}


# ---- helpers shared with bench/run.py -----------------------------------------------------
def _bench_run():
    """bench/run.py as a module: its process runner (peak memory from wait4) and settings."""
    spec = importlib.util.spec_from_file_location("aftersale_bench_run", HERE / "run.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _clock() -> tuple[float, float]:
    """(wall, CPU of this process) now, in seconds."""
    return time.perf_counter(), time.process_time()


def _since(start: tuple[float, float]) -> dict[str, float]:
    """Wall and CPU seconds (all threads) since `start` (from _clock)."""
    return {"wall_s": time.perf_counter() - start[0], "cpu_s": time.process_time() - start[1]}


# ---- our side, in a child process ----------------------------------------------------------
def _ours(s: dict[str, Any], matched_only: bool) -> dict[str, Any]:
    """features_at at the cutoff (every feature, or with matched_only only MATCHED's): its
    time, and the frame (one row per eligible account) in WORK/ours[_matched].parquet."""
    from pipeline.engine import features_at
    from pipeline.store import data_end, load

    run = _bench_run()
    if matched_only:  # this process only: the catalog holds the matched features alone
        from features import catalog

        names = {m.name for m in MATCHED}
        catalog.CATALOG = tuple(f for f in catalog.CATALOG if f.name in names)
    cfg, label, groups = run._feature_args(s["params"])
    spec = run._engine(s["params"])
    validated = load(Path(s["clean"]))
    as_of = pd.Timestamp(s["cutoff"]) if s.get("cutoff") else data_end(validated)
    started = _clock()
    frame = features_at(validated, as_of, cfg, label, groups, spec)
    timed = _since(started)
    name = "ours_matched" if matched_only else "ours"
    frame.to_parquet(Path(s["work"]) / f"{name}.parquet", index=False)
    return {
        **timed,
        "cutoff": str(as_of.date()),
        "accounts": len(frame),
        "features": frame.shape[1] - 2,
        "events": run._event_rows(validated),
    }


# ---- Featuretools, in a child process ------------------------------------------------------
def _cache_woodwork_accessors() -> None:
    """Keep each object's `.ww` accessor on it, as pandas before 3.0 did.

    Woodwork (0.31, the latest release) keeps a table's types in its `.ww` accessor object;
    pandas 3 builds a new accessor object at every attribute access, so the types set by
    `df.ww.init` are lost at once and Featuretools fails (WoodworkNotInitError). This puts
    back pandas 2's cached accessor for `.ww` alone; nothing else changes. Pandas 2 needs none.
    """
    if int(pd.__version__.split(".")[0]) < 3:
        return
    import woodwork  # noqa: F401  (registers the accessors this replaces)

    class CachedAccessor:
        def __init__(self, name: str, accessor: type) -> None:
            self._name, self._accessor = name, accessor

        def __get__(self, obj: Any, cls: type) -> Any:
            if obj is None:
                return self._accessor
            accessor = self._accessor(obj)
            object.__setattr__(obj, self._name, accessor)  # found before this descriptor
            return accessor

    for klass in (pd.DataFrame, pd.Series):
        klass.ww = CachedAccessor("ww", klass.__dict__["ww"]._accessor)


def read_tables(clean: Path) -> dict[str, pd.DataFrame]:
    """The clean tables as pandas frames: the columns MATCHED reads, rows placed in time."""
    columns = {"accounts": ["account_id", "customer_since"]}
    for name, (time_index, others) in EVENTS.items():
        used = {m.column for m in MATCHED if m.dataframe == name} | {
            m.where[0] for m in MATCHED if m.dataframe == name and m.where
        }
        columns[name] = ["account_id", time_index, *[c for c in others if c in used]]
    frames = {}
    for name, cols in columns.items():
        frame = pd.read_parquet(clean / f"{name}.parquet", columns=cols)
        if name in EVENTS:  # as our streams: a row without its time is in no window
            frame = frame[frame[EVENTS[name][0]].notna()].reset_index(drop=True)
        frames[name] = frame
    return frames


def entityset(frames: dict[str, pd.DataFrame]):
    """An EntitySet: accounts (index account_id), each event table (a made index `_row`, its
    time index) and a relationship from accounts to each."""
    import featuretools as ft

    es = ft.EntitySet("aftersale")
    es.add_dataframe(
        frames["accounts"],
        dataframe_name="accounts",
        index="account_id",
        logical_types={"account_id": "Categorical", "customer_since": "Datetime"},
    )
    for name, (time_index, _) in EVENTS.items():
        frame = frames[name]
        types = {c: "Categorical" for c in frame.columns if c in CATEGORICAL}
        es.add_dataframe(
            frame,
            dataframe_name=name,
            index="_row",
            make_index=True,
            time_index=time_index,
            logical_types={"account_id": "Categorical", time_index: "Datetime", **types},
        )
        es.add_relationship("accounts", "account_id", name, "account_id")
    return es


def ft_feature(es, match: Match):
    """The Featuretools feature that computes `match` for each account."""
    import featuretools as ft
    from featuretools import primitives as p

    if match.primitive == "time_since":  # a transform of the account's own column
        return ft.Feature(es["accounts"].ww[match.column], primitive=p.TimeSince(unit="days"))
    child = es[match.dataframe]
    primitive = {
        "count": p.Count,
        "sum": p.Sum,
        "mean": p.Mean,
        "num_unique": p.NumUnique,
        "time_since_last": p.TimeSinceLast(unit="days"),
        "time_since_first": p.TimeSinceFirst(unit="days"),
    }[match.primitive]
    if match.primitive == "count":
        base = child.ww.index
    elif match.primitive.startswith("time_since"):
        base = child.ww.time_index
    else:
        base = match.column
    where = None
    if match.where is not None:
        column, value = match.where
        where = ft.Feature(child.ww[column]) == value
    return ft.Feature(
        child.ww[base], parent_dataframe_name="accounts", primitive=primitive, where=where
    )


def training_window(window: str, cfg) -> str | None:
    """Featuretools' training window for one of ours: whole days before the cutoff."""
    lo, hi = cfg.window(window)
    assert lo == 0, "a training window ends at the cutoff"
    return None if hi is None else f"{hi} days"


def _featuretools(s: dict[str, Any]) -> dict[str, Any]:
    """MATCHED by Featuretools for our accounts at our cutoff: the time of each part, and
    the frame (account_id, then MATCHED's names) in WORK/featuretools.parquet."""
    warnings.filterwarnings("ignore")  # Featuretools' and Woodwork's notes on pandas 3
    _cache_woodwork_accessors()
    import featuretools as ft

    run = _bench_run()
    cfg, _, _ = run._feature_args(s["params"])
    work = Path(s["work"])
    ours = json.loads((work / "ours.json").read_text())
    accounts = pd.read_parquet(work / "ours.parquet", columns=["account_id"])["account_id"]
    cutoff = pd.Timestamp(ours["cutoff"])
    timings: dict[str, Any] = {}
    total = _clock()
    started = _clock()
    frames = read_tables(Path(s["clean"]))
    timings["read"] = _since(started)
    started = _clock()
    es = entityset(frames)
    timings["entityset"] = _since(started)
    cutoff_time = pd.DataFrame({"account_id": accounts, "time": cutoff})
    parts = []
    for window in ("all", "long", "recent"):
        matches = [m for m in MATCHED if m.window == window]
        features = [ft_feature(es, m) for m in matches]
        started = _clock()
        part = ft.calculate_feature_matrix(
            features,
            entityset=es,
            cutoff_time=cutoff_time,
            training_window=training_window(window, cfg),
            include_cutoff_time=False,  # strictly before the cutoff, as ours
        )
        timings[f"features_{window}"] = _since(started)
        names = {f.get_name(): m.name for f, m in zip(features, matches, strict=True)}
        parts.append(part[list(names)].rename(columns=names))
    timed = _since(total)
    frame = pd.concat(parts, axis=1).rename_axis("account_id").reset_index()
    frame.to_parquet(work / "featuretools.parquet", index=False)
    return {
        **timed,
        "parts": timings,
        "featuretools": ft.__version__,
        "pandas": pd.__version__,
        "accounts": len(frame),
        "rows_read": {name: len(f) for name, f in frames.items()},
    }


CHILDREN = {
    "ours": lambda s: _ours(s, matched_only=False),
    "ours_matched": lambda s: _ours(s, matched_only=True),
    "featuretools": _featuretools,
}


def child(side: str, work: Path) -> None:
    """Run one side in this process; its figures go to WORK/SIDE.json."""
    settings = json.loads((work / "settings.json").read_text())
    (work / f"{side}.json").write_text(json.dumps(CHILDREN[side](settings), default=str))


# ---- the comparison ------------------------------------------------------------------------
def compare(ours: pd.DataFrame, theirs: pd.DataFrame, names: list[str]) -> dict[str, Any]:
    """Matched values per account: per feature the rows compared, the mismatches (unknown on
    one side only, or numbers further apart than the tolerance) and the largest difference.

    `ours` holds our features (a fill_zero count is 0 without events); `theirs` Featuretools'
    (NUM_UNIQUE of no rows is unknown there: read as 0, the count of distinct values it is).
    Accounts on one side only count as mismatches of every feature."""
    counts = {m.name for m in MATCHED if m.primitive == "num_unique"}
    joined = ours[["account_id", *names]].merge(
        theirs[["account_id", *names]], on="account_id", how="outer", suffixes=("", "__ft"),
        indicator=True,
    )  # fmt: skip
    one_side = int((joined["_merge"] != "both").sum())
    out = {}
    for name in names:
        a = joined[name].to_numpy(dtype="float64", na_value=np.nan)
        b = joined[f"{name}__ft"].to_numpy(dtype="float64", na_value=np.nan)
        if name in counts:
            b = np.where(np.isnan(b) & (joined["_merge"] == "both"), 0.0, b)
        both_unknown = np.isnan(a) & np.isnan(b)
        close = np.abs(a - b) <= ABS_TOLERANCE + REL_TOLERANCE * np.abs(b)
        agree = both_unknown | close
        diff = np.abs(a - b)
        out[name] = {
            "rows": len(joined),
            "mismatches": int((~agree).sum()),
            "unknown": int(both_unknown.sum()),
            "max_abs_diff": float(np.nanmax(diff)) if np.isfinite(diff).any() else 0.0,
        }
    return {"accounts_on_one_side": one_side, "features": out}


# ---- the parent ----------------------------------------------------------------------------
def featuretools_missing() -> bool:
    """Whether Featuretools cannot be imported here (the bench extra is not installed)."""
    return importlib.util.find_spec("featuretools") is None


def params_for(threads: int) -> dict[str, Any]:
    """The project's params.yaml with DuckDB's threads set (as `churn bench --threads`)."""
    return _bench_run().params_for(
        argparse.Namespace(threads=threads, memory_limit=None, engine=None, trees=0)
    )


def table(report: dict[str, Any]) -> str:
    """The figures as a Markdown table: one row per side."""
    sides = report["sides"]
    ours = sides["ours"]
    head = ("side", "features", "wall s", "cpu s", "peak GB", "load", "x ours")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for side in SIDES:
        r = sides[side]
        features = r.get("features", len(MATCHED))
        lines.append(
            f"| {side} | {features} | {r['wall_s']:.1f} | {r['cpu_s']:.1f} | "
            f"{r['peak_gb']:.2f} | {r['load_before']:.1f} | {r['wall_s'] / ours['wall_s']:.2f} |"
        )
    return "\n".join(lines)


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="featuretools_bench.py",
        description=(__doc__ or "").split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--world", type=Path, help="a world of churn bench (WORLD/clean)")
    parser.add_argument("--cutoff", help="YYYY-MM-DD (default: the day after the data)")
    parser.add_argument("--out", type=Path, help="write the figures as JSON here")
    parser.add_argument("--threads", type=int, default=2, help="DuckDB threads (ours)")
    parser.add_argument("--child", choices=SIDES, help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child is None and args.world is None:
        parser.error("--world is required")
    if args.cutoff is not None:
        try:
            pd.Timestamp(args.cutoff)
        except ValueError:
            parser.error(f"--cutoff {args.cutoff!r} is not a date (YYYY-MM-DD)")
    return args


def main(argv: list[str] | None = None) -> int:
    """Run both sides and compare: 0 when every matched value agrees, 1 when any does not,
    2 for a usage error or without Featuretools."""
    args = parse(argv)
    if args.child is not None:
        child(args.child, args.work)
        return 0
    if featuretools_missing():
        print(
            f"featuretools is not installed; it comes with the bench extra: {INSTALL_HINT}",
            file=sys.stderr,
        )
        return 2
    world = args.world.resolve()
    if not (world / "clean").is_dir():
        print(f"--world {world}: no clean/ folder in it (churn bench --steps "
              "simulate,trusted_clean writes one)", file=sys.stderr)  # fmt: skip
        return 2
    run = _bench_run()
    stamp = time.strftime("%Y%m%d-%H%M%S")
    work = world / "bench" / f"{stamp}-{os.getpid()}-featuretools"
    work.mkdir(parents=True)
    settings = {
        "world": str(world),
        "work": str(work),
        "clean": str(world / "clean"),
        "cutoff": args.cutoff,
        "params": params_for(args.threads),
    }
    (work / "settings.json").write_text(json.dumps(settings, default=str))
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    print(
        f"world {world}; DuckDB threads={args.threads}; load {os.getloadavg()[0]:.1f} on "
        f"{os.cpu_count()} cores",
        flush=True,
    )
    sides = {}
    for side in SIDES:
        load_before = os.getloadavg()[0]
        cmd = [sys.executable, str(Path(__file__).resolve()), "--child", side, "--work", str(work)]
        measured = run.run_process(cmd, work, env, work / f"{side}.log")
        if measured["returncode"] != 0:
            print((work / f"{side}.log").read_text()[-3000:], file=sys.stderr)
            raise SystemExit(f"{side} failed (exit {measured['returncode']})")
        figures = json.loads((work / f"{side}.json").read_text())
        sides[side] = {
            **figures,  # wall_s and cpu_s: the timed call
            "process_s": measured["process_s"],  # the whole process, imports included
            "process_cpu_s": measured["cpu_s"],
            "peak_gb": measured["peak_gb"],
            "load_before": load_before,
        }
        print(
            f"{side}: {figures['wall_s']:.1f} s wall, {figures['cpu_s']:.1f} s cpu, "
            f"peak {measured['peak_gb']:.2f} GB (load {load_before:.1f})",
            flush=True,
        )
    names = [m.name for m in MATCHED]
    ours = pd.read_parquet(work / "ours.parquet")
    checks = {
        "featuretools": compare(ours, pd.read_parquet(work / "featuretools.parquet"), names),
        "ours_matched": compare(ours, pd.read_parquet(work / "ours_matched.parquet"), names),
    }
    report = {
        "world": str(world),
        "cutoff": sides["ours"]["cutoff"],
        "accounts": sides["ours"]["accounts"],
        "events": sides["ours"]["events"],
        "features_matched": len(names),
        "ratio": sides["featuretools"]["wall_s"] / sides["ours"]["wall_s"],
        "ratio_matched": sides["featuretools"]["wall_s"] / sides["ours_matched"]["wall_s"],
        # CPU seconds of the timed calls: steadier than wall time on a shared machine (ours
        # on --threads threads, Featuretools on one)
        "ratio_cpu": sides["featuretools"]["cpu_s"] / sides["ours"]["cpu_s"],
        "tolerance": {"abs": ABS_TOLERANCE, "rel": REL_TOLERANCE},
        "sides": sides,
        "checks": checks,
        "machine": {"cores": os.cpu_count(), "python": platform.python_version()},
        "threads": args.threads,
        "load_end": os.getloadavg(),
    }
    print()
    print(
        f"{report['accounts']:,} accounts, {report['events']:,} events, cutoff "
        f"{report['cutoff']}, {len(names)} features matched"
    )
    print(table(report))
    ft = sides["featuretools"]["parts"]
    print(
        "featuretools parts: "
        + ", ".join(f"{k} {v['wall_s']:.1f} s" for k, v in ft.items())
        + f"; ratio {report['ratio']:.1f}x ours (all {sides['ours']['features']} features), "
        f"{report['ratio_matched']:.1f}x ours (the {len(names)} matched), "
        f"{report['ratio_cpu']:.1f}x ours by CPU (all)"
    )
    failed = []
    for against, check in checks.items():
        bad = {n: c["mismatches"] for n, c in check["features"].items() if c["mismatches"]}
        if bad or check["accounts_on_one_side"]:
            failed.append(against)
            print(
                f"\nMISMATCH ours vs {against}: {check['accounts_on_one_side']} accounts on "
                f"one side only; mismatches per feature: {bad}",
                file=sys.stderr,
            )
    if not failed:
        worst = max(c["max_abs_diff"] for c in checks["featuretools"]["features"].values())
        print(
            f"agreement: all {len(names)} matched features agree on all "
            f"{report['accounts']:,} accounts (largest difference {worst:.2g})"
        )
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2, default=str) + "\n")
        print(f"-> {args.out}")
    if failed:
        print("FAILED: the values differ; the timings compare different numbers", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
