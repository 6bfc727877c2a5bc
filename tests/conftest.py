"""Shared fixtures: a tiny hand-made world whose features can be worked out by hand."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from hypothesis import settings

# Property tests without their own example count take it from a profile: `ci`, the default, a
# small fixed set of derandomized examples; `long` (`make test-long`, which passes
# `--hypothesis-profile=long -m "long or not long"`), many fresh random ones.
settings.register_profile("ci", max_examples=8, derandomize=True, database=None)
settings.register_profile("long", max_examples=200, derandomize=False)
settings.load_profile("ci")

T = pd.Timestamp

# Tests run in parallel (pytest-xdist, `-n auto --dist loadgroup` in pyproject.toml). A test
# module whose tests share a module-scoped fixture (a simulated world, a trained model, a DVC
# pipeline run) is one group: its tests run on one worker, which builds the fixture once; the
# tests of other modules are spread one by one. Groups whose fixture runs the whole pipeline
# go first, so that no worker is left with one of them at the end.
FIRST = ("test_model_experiments", "test_e2e", "test_e2e_cdnow")


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items) -> None:
    for item in items:
        info = getattr(item, "_fixtureinfo", None)
        defs = info.name2fixturedefs.values() if info is not None else ()
        if any(d[-1].scope in ("module", "package") for d in defs if d):
            item.add_marker(pytest.mark.xdist_group(item.module.__name__.rsplit(".", 1)[-1]))
    rank = {name: i for i, name in enumerate(FIRST)}
    items.sort(key=lambda item: rank.get(item.module.__name__.rsplit(".", 1)[-1], len(FIRST)))


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
