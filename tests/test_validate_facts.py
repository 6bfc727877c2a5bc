"""Validation of facts: rows exported twice, dates far after the rest of the data, and facts
that one table states and another contradicts. Hand-made tables, exact counts and rows."""

from __future__ import annotations

import json

import pandas as pd

from pipeline.validate import REJECTS_NAME, check, rejects
from tests.conftest import tiny_world, write_world
from tests.test_badinput_validate import run_cli

T = pd.Timestamp


def _twice(frame: pd.DataFrame, rows: list[int]) -> pd.DataFrame:
    """`frame` with the given rows repeated (byte-identical) at its end."""
    return pd.concat([frame, frame.iloc[rows]], ignore_index=True)


def _by_check(result) -> dict[tuple[str, str], int]:
    return {(p.table, p.check): p.count for p in result.problems}


COPIES = "rows that are exact copies of an earlier row (exported twice)"


def test_exact_copies_fail_with_the_row_they_copy(tmp_path):
    world = tiny_world()
    world["orders"] = _twice(world["orders"], [1, 1])  # o2 three times: rows 2, 6, 7
    world["links"] = _twice(world["links"], [0])  # a's edi link twice: rows 1, 4
    world["churn"] = _twice(world["churn"], [0])  # b churned, exported twice
    result = check(write_world(world, tmp_path / "raw"))
    assert not result.ok
    assert _by_check(result) == {("orders", COPIES): 2, ("links", COPIES): 1, ("churn", COPIES): 1}
    orders = next(p for p in result.problems if p.table == "orders")
    assert [(e["_row"], e["order_id"], e["copy_of"]) for e in orders.examples] == [
        ("6", "o2", "2"),
        ("7", "o2", "2"),
    ]
    assert "identical in every column" in orders.fix and "first copy is kept" in orders.fix
    links = next(p for p in result.problems if p.table == "links")
    assert links.examples[0]["link_type"] == "edi" and links.examples[0]["copy_of"] == "1"
    code, _, stderr = run_cli("validate", "--data", str(tmp_path / "raw"), "--out", "x")
    assert code == 2 and "- orders: rows that are exact copies of an earlier row" in stderr


def test_drop_keeps_the_first_copy_and_rejects_the_others(tmp_path):
    world = tiny_world()
    world["accounts"] = _twice(world["accounts"], [2])  # c twice: its rows elsewhere stay
    world["orders"] = _twice(world["orders"], [1, 1])
    world["links"] = _twice(world["links"], [0])
    raw = write_world(world, tmp_path / "raw")
    out = tmp_path / "clean"
    code, _, stderr = run_cli("validate", "--data", str(raw), "--out", str(out), "--policy", "drop")
    assert code == 0, stderr
    assert "dropped 4 rows with problems (accounts 1, orders 2, links 1)" in stderr
    clean = {t: pd.read_parquet(out / f"{t}.parquet") for t in ("accounts", "orders", "links")}
    assert clean["accounts"]["account_id"].tolist() == ["a", "b", "c"]
    assert clean["orders"]["order_id"].tolist() == ["o1", "o2", "o3", "o4", "o5"]
    assert len(clean["links"]) == 3
    rej = pd.read_csv(out / REJECTS_NAME)
    assert list(zip(rej["table"], rej["row"], strict=True)) == [
        ("accounts", 4),
        ("orders", 6),
        ("orders", 7),
        ("links", 4),
    ]
    assert rej["problems"].tolist()[1] == f"orders: {COPIES} (copy of row 2)"
    assert json.loads(rej["record"][1])["order_id"] == "o2"
    assert check(out).ok  # the clean output is valid input


def test_duplicate_ids_that_differ_reject_every_copy_beside_exact_copies(tmp_path):
    """o4 twice with different amounts: both rejected; o2 exported twice: one copy kept."""
    world = tiny_world()
    other = world["orders"].iloc[[3]].assign(amount=999.0)
    world["orders"] = pd.concat([_twice(world["orders"], [1]), other], ignore_index=True)
    world["churn"] = pd.concat(  # b churned twice, on different days
        [world["churn"], world["churn"].assign(churned_at=T("2023-04-01"))], ignore_index=True
    )
    raw = write_world(world, tmp_path / "raw")
    result = check(raw)
    assert _by_check(result) == {
        ("orders", COPIES): 1,
        ("orders", "duplicate ids"): 2,
        ("churn", "duplicate ids"): 2,
    }
    ids = next(p for p in result.problems if p.check == "duplicate ids" and p.table == "orders")
    assert [e["_row"] for e in ids.examples] == ["4", "7"]
    churn = next(p for p in result.problems if p.table == "churn")
    assert churn.fix.startswith("an account churns once here")
    dropped = check(raw, policy="drop")
    assert dropped.ok and dropped.kept == {
        "accounts": 3,
        "orders": 4,  # o1, o2 (first copy), o3, o5
        "interactions": 4,
        "links": 3,
    }
    assert "churn: every row was dropped; the table is left out" in dropped.notes
    assert rejects(dropped)[["table", "row"]].values.tolist() == [
        ["orders", 4],
        ["orders", 6],
        ["orders", 7],
        ["churn", 1],
        ["churn", 2],
    ]
