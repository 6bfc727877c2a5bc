"""Shared fixtures: a tiny hand-made world whose features can be worked out by hand."""

from __future__ import annotations

import fcntl
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import settings

# Property tests without their own example count take it from a profile: `ci`, the default, a
# small fixed set of derandomized examples; `long` (`make test-long`, which passes
# `--hypothesis-profile=long -m "long or not long"`), many fresh random ones.
settings.register_profile("ci", max_examples=8, derandomize=True, database=None)
settings.register_profile("long", max_examples=200, derandomize=False)
# Only when no profile is loaded yet: this file is also imported a second time, as the module
# tests.conftest (`from tests.conftest import ...`), after Hypothesis's plugin has loaded the
# profile of --hypothesis-profile; loading `ci` again then would run `make test-long` at `ci`.
if settings.get_current_profile_name() == "default":
    settings.load_profile("ci")

T = pd.Timestamp


def fuzz_cases(variable: str, ci: int, long: int) -> int:
    """A fuzzer's case count: the environment `variable` if set, else `long` under the `long`
    profile (`make test-long`) and `ci` otherwise."""
    return int(
        os.environ.get(variable) or (long if settings.get_current_profile_name() == "long" else ci)
    )


# Every worker (and every command a test starts) runs beside the others on the machine's cores,
# so OpenMP's threads (LightGBM, numba's prange) must sleep while they wait, not spin: spinning
# made a LightGBM fit 10 to 40 times slower with the other worker busy. Set before anything
# loads libgomp (nothing imported above does), which reads it once.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

# Compiled feature plans (features/compiled.py) are kept in a folder of this test run, shared by
# its workers and the commands they start, never in the user's cache.
os.environ.setdefault(
    "AFTERSALE_CACHE_DIR",
    str(
        Path(tempfile.gettempdir())
        / f"aftersale-test-cache-{os.environ.get('PYTEST_XDIST_TESTRUNUID', os.getpid())}"
    ),
)

# Tests run in parallel (pytest-xdist, `-n auto` in pyproject.toml). The tests of a module go to
# one worker, which builds the module's shared fixtures (a simulated world, a trained model, a
# DVC pipeline run) once; only the modules in SPREAD, whose tests share nothing, are spread test
# by test. The heaviest go first (HEAVY, in this order), so that no worker is left with one of
# them at the end while the other waits. (xdist's own `loadgroup` cannot be used with pytest
# 9.2: it renames node ids through an attribute pytest no longer reads.)
HEAVY = (
    "test_model_experiments",
    "test_e2e_cdnow",
    "test_e2e",
    "test_point_in_time",
    "test_badinput_fuzz",
    "test_badinput_kill",
    "test_score_fuzz",
    "test_spark",
    "test_degenerate",
    "test_compiled",
    "test_threads",
    "test_backfill",
    "test_monitor",
    "test_score_total",
)
SPREAD = {
    "test_badinput_fuzz",
    "test_badinput_io",
    "test_badinput_validate",
    "test_btyd",
    "test_campaign_params",
    "test_cli_help",
    "test_features",
    "test_point_in_time",
    "test_validate",
    "test_validate_facts",
}


def _module(nodeid: str) -> str:
    return Path(nodeid.split("::", 1)[0]).stem


def pytest_xdist_make_scheduler(config, log):
    from xdist.scheduler import LoadScopeScheduling

    class ByModule(LoadScopeScheduling):
        """A module is one unit of work, a test of a SPREAD module is one; in collection
        order (the heaviest first), not by size."""

        def _split_scope(self, nodeid: str) -> str:
            return nodeid if _module(nodeid) in SPREAD else nodeid.split("::", 1)[0]

    config.option.loadscopereorder = False
    return ByModule(config, log)


def pytest_collection_modifyitems(config, items) -> None:
    if "long" not in (config.getoption("markexpr") or ""):  # long runs: `make test-long` only
        skip = pytest.mark.skip(reason="long-marked: runs with make test-long (-m long)")
        for item in items:
            if "long" in item.keywords:
                item.add_marker(skip)
    for item in items:  # a SPREAD module would build a shared fixture once per test
        info = getattr(item, "_fixtureinfo", None)
        defs = info.name2fixturedefs.values() if info is not None else ()
        wide = [d[-1] for d in defs if d and d[-1].scope != "function" and d[-1].baseid]
        if _module(item.nodeid) in SPREAD and wide:  # (baseid: defined here, not by a plugin)
            raise pytest.UsageError(
                f"{item.nodeid} shares a fixture wider than a test: take its module out of "
                "SPREAD in tests/conftest.py"
            )
    rank = {name: i for i, name in enumerate(HEAVY)}
    items.sort(key=lambda item: rank.get(_module(item.nodeid), len(HEAVY)))


def tiny_world() -> dict[str, pd.DataFrame]:
    """Three accounts; a is an old customer with history, b churned, c is new."""
    accounts = pd.DataFrame(
        {
            "account_id": ["a", "b", "c"],
            "name": ["Alpha", "Beta", "Gamma"],
            "customer_since": [T("2022-01-01"), T("2022-06-01"), T("2023-03-15")],
            "annual_wallet": [1000.0, 2000.0, 500.0],
        }
    )
    orders = pd.DataFrame(
        {
            "order_id": ["o1", "o2", "o3", "o4", "o5"],
            "account_id": ["a", "a", "b", "b", "c"],
            "order_date": [
                T("2023-01-10"),
                T("2023-03-01"),
                T("2023-01-15"),
                T("2023-02-20"),
                T("2023-03-20"),
            ],
            "amount": [100.0, 200.0, 50.0, 70.0, 30.0],
            "product_line": ["x", "y", "x", "x", "z"],
            "channel": ["edi", "phone", "portal", "email", "phone"],
            "promised_date": [
                T("2023-01-20"),
                T("2023-03-10"),
                T("2023-01-25"),
                T("2023-03-01"),
                T("2023-04-10"),
            ],
            "delivered_date": [T("2023-01-25"), pd.NaT, T("2023-01-24"), T("2023-03-01"), pd.NaT],
        }
    )
    interactions = pd.DataFrame(
        {
            "interaction_id": ["i1", "i2", "i3", "i4"],
            "account_id": ["a", "a", "a", "b"],
            "occurred_at": [
                T("2022-11-05 09:00:00"),
                T("2023-01-05 00:00:00"),
                T("2023-02-01 12:00:00"),
                T("2023-02-10 08:00:00"),
            ],
            "type": ["complaint", "complaint", "price_negotiation", "planning_meeting"],
            "initiated_by": ["customer", "customer", "supplier", "supplier"],
            "department": ["service", "service", "sales", "engineering"],
            "minutes": [None, None, 60.0, 30.0],
            "contact_id": ["a-1", "a-2", "a-2", "b-1"],
            "resolved_at": [T("2022-11-07 09:00:00"), pd.NaT, pd.NaT, pd.NaT],
        }
    )
    links = pd.DataFrame(
        {
            "account_id": ["a", "a", "b"],
            "link_type": ["edi", "vmi", "portal"],
            "start_date": [T("2022-05-01"), T("2022-06-01"), T("2022-07-01")],
            "end_date": [pd.NaT, T("2023-02-01"), pd.NaT],
        }
    )
    churn = pd.DataFrame(
        {"account_id": ["b"], "churned_at": [T("2023-03-20")], "reason": ["competitor_offer"]}
    )
    return {
        "accounts": accounts,
        "orders": orders,
        "interactions": interactions,
        "links": links,
        "churn": churn,
    }


def write_world(tables: dict[str, pd.DataFrame], folder: Path, fmt: str = "csv") -> Path:
    """Write tables as NAME.csv / NAME.parquet into `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, frame in tables.items():
        if fmt == "csv":
            frame.to_csv(folder / f"{name}.csv", index=False)
        else:
            frame.to_parquet(folder / f"{name}.parquet", index=False)
    return folder


@pytest.fixture(scope="session")
def built_once(tmp_path_factory, worker_id) -> Callable[[str, Callable[[Path], None]], Path]:
    """`built_once(name, build)`: the folder `build(folder)` fills, built once in the whole run
    whichever worker asks first (a session fixture alone is built once per xdist worker). The
    others wait for it on a file lock in the run's temporary folder, which every worker shares.
    Read it, or copy it (`copied`) before writing to it: other modules read it too."""
    shared = tmp_path_factory.getbasetemp()
    if worker_id != "master":  # .../pytest-N/popen-gwK: the run's folder is its parent
        shared = shared.parent

    def get(name: str, build: Callable[[Path], None]) -> Path:
        folder = shared / name
        with open(shared / f"{name}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
            if not (folder / ".built").is_file():
                shutil.rmtree(folder, ignore_errors=True)  # a failed build is built again
                folder.mkdir()
                build(folder)
                (folder / ".built").touch()
        return folder

    return get


def copied(source: Path, target: Path) -> Path:
    """A copy of a folder `built_once` made, for a module to write in."""
    shutil.copytree(source, target, ignore=shutil.ignore_patterns(".built"), dirs_exist_ok=True)
    return target


@pytest.fixture
def world() -> dict[str, pd.DataFrame]:
    return tiny_world()


@pytest.fixture
def world_dir(tmp_path: Path, world) -> Path:
    return write_world(world, tmp_path / "raw")


@pytest.fixture
def env(project, monkeypatch) -> Path:
    """Run as if inside the module's `project` fixture (a project folder with params.yaml,
    clean data and a DVC-tracked model): its params, its model, no MLflow store unless a test
    sets one."""
    monkeypatch.setenv("DVC_ROOT", str(project))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return project


def score(root: Path, *args: str, out: str = "scores.csv") -> tuple[int, str, Path]:
    """Run `churn score` on the project's clean data into a fresh folder: (exit code, output,
    the score file's path)."""
    import tempfile

    from tests.test_badinput_validate import run_cli

    target = Path(tempfile.mkdtemp(dir=root)) / out
    code, stdout, stderr = run_cli(
        "score", "--data", str(root / "clean"), "--out", str(target), *args
    )
    return code, stdout + stderr, target
