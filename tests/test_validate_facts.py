"""Validation of facts: rows exported twice, dates far after the rest of the data, and facts
that one table states and another contradicts. Hand-made tables, exact counts and rows."""

from __future__ import annotations

import json

import pandas as pd

from pipeline.checking import check
from pipeline.store import REJECTS_NAME, rejects
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
    assert "tells them apart" in links.fix and "tells them apart" not in orders.fix
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


def _dense_world(days: int = 200, start: str = "2023-01-01") -> dict[str, pd.DataFrame]:
    """Ten accounts with one order a day for `days` days (order i on day i)."""
    ids = [f"a{k}" for k in range(10)]
    dates = pd.date_range(start, periods=days, freq="D")
    orders = pd.DataFrame(
        {
            "order_id": [f"o{i}" for i in range(days)],
            "account_id": [ids[i % 10] for i in range(days)],
            "order_date": dates,
            "amount": 10.0,
            "delivered_date": dates + pd.Timedelta(days=2),
        }
    )
    accounts = pd.DataFrame({"account_id": ids})
    churn = pd.DataFrame({"account_id": ["a1"], "churned_at": [dates[-1]]})
    return {"accounts": accounts, "orders": orders, "churn": churn}


def _late(result) -> dict[str, int]:
    return {
        f"{p.table}.{p.column}": p.count
        for p in result.problems
        if p.check.startswith("dated long after the rest of the data")
    }


def test_a_year_typo_far_after_the_rest_is_a_problem_and_drop_keeps_the_data_end(tmp_path):
    world = _dense_world()  # orders 2023-01-01 .. 2023-07-19, deliveries to 2023-07-21
    world["orders"].loc[150, ["order_date", "delivered_date"]] = [T("2099-05-31"), T("2099-06-02")]
    world["churn"] = pd.concat(
        [world["churn"], pd.DataFrame({"account_id": ["a2"], "churned_at": [T("2099-06-10")]})]
    )
    raw = write_world(world, tmp_path / "raw")
    result = check(raw)
    assert not result.ok
    assert _late(result) == {
        "orders.order_date": 1,
        "orders.delivered_date": 1,
        "churn.churned_at": 1,
    }
    problem = next(p for p in result.problems if p.column == "order_date")
    assert problem.check == (
        "dated long after the rest of the data (from 2099-05-31 on, after 27708 days without "
        "any event; the rest ends 2023-07-21)"
    )
    assert problem.examples == [
        {"_row": "151", "order_id": "o150", "account_id": "a0", "order_date": "2099-05-31"}
    ]
    assert "correct the year" in problem.fix and "validate.end_date" in problem.fix
    code, _, stderr = run_cli("validate", "--data", str(raw), "--out", str(tmp_path / "x"))
    assert code == 2 and "orders.order_date: dated long after the rest of the data" in stderr
    dropped = check(raw, policy="drop")
    assert dropped.ok and dropped.data_end == "2023-07-19"  # the 2099 dates do not move it
    assert dropped.kept == {"accounts": 10, "orders": 199, "churn": 1}
    assert rejects(dropped)[["table", "row"]].values.tolist() == [["orders", 151], ["churn", 2]]
    # an end date vouches for the dates up to it; gap_days null turns the check off
    assert check(raw, end_date="2100-01-01").ok
    assert check(raw, gap_days=None).ok


def test_every_late_cluster_is_found_and_the_rows_kept_pass_again(tmp_path):
    """Two late clusters (2030, 2099): both, and what is left has no late tail."""
    world = _dense_world(days=300)
    world["orders"].loc[[10, 20], "order_date"] = T("2030-01-01")
    world["orders"].loc[30, "order_date"] = T("2099-01-01")
    world["orders"]["delivered_date"] = pd.NaT
    raw = write_world(world, tmp_path / "raw")
    result = check(raw)
    assert _late(result) == {"orders.order_date": 3}
    assert "from 2030-01-01 on" in result.problems[0].check
    out = tmp_path / "clean"
    code, _, stderr = run_cli("validate", "--data", str(raw), "--out", str(out), "--policy", "drop")
    assert code == 0 and "dropped 3 rows with problems (orders 3)" in stderr
    assert check(out).ok


def test_gaps_that_are_not_a_late_tail_pass(tmp_path):
    """After a 201-day gap: 13 events beside 830 before it (more than 1%, and the 464 days of
    history before the gap are longer than it); and a sparse world half of whose events
    follow a gap of years (not fewer than the rest)."""
    world = _dense_world(days=365, start="2022-01-01")  # orders and deliveries to 2023-01-02
    recent = _dense_world(days=100)["orders"].assign(  # 2023-01-01 .. 2023-04-10, no delivery
        order_id=lambda f: "r" + f["order_id"], delivered_date=pd.NaT
    )
    late = recent.head(12).assign(
        order_id=lambda f: "l" + f["order_id"],
        order_date=pd.date_range("2023-10-28", periods=12, freq="D"),
    )
    world["orders"] = pd.concat([world["orders"], recent, late], ignore_index=True)
    world["churn"]["churned_at"] = T("2023-11-20")
    assert check(write_world(world, tmp_path / "many")).ok
    sparse = tiny_world()  # 6 events from 2022-05-01 to 2023-03-01, then 7 in 2026
    sparse["orders"].loc[[3, 4], "order_date"] = T("2026-01-01")
    sparse["orders"]["promised_date"] = sparse["orders"]["delivered_date"] = pd.NaT
    sparse["accounts"]["customer_since"] = pd.NaT
    sparse["interactions"]["occurred_at"] = T("2026-01-01")
    sparse["interactions"]["resolved_at"] = pd.NaT
    sparse["links"]["start_date"] = T("2022-05-01")
    sparse["links"]["end_date"] = pd.NaT
    sparse["churn"]["churned_at"] = T("2026-01-02")
    result = check(write_world(sparse, tmp_path / "sparse"))
    assert result.ok, result.summary()


def test_gap_days_must_be_whole_days(tmp_path, world_dir):
    import pytest

    from pipeline.errors import UserError

    for wrong in (0, -3, 1.5, "90", True):
        with pytest.raises(UserError, match="validate.gap_days must be"):
            check(world_dir, gap_days=wrong)


def test_events_after_churn_are_a_note_with_counts_and_examples(tmp_path):
    """b churned on 2023-02-01 but ordered (o4, 02-20) and met (i4, 02-10) after it; a link
    of b starts later still. Churn is final for the pipeline, so a note, under both policies."""
    world = tiny_world()
    world["churn"]["churned_at"] = T("2023-02-01")
    world["links"].loc[2, "start_date"] = T("2023-02-05")
    raw = write_world(world, tmp_path / "raw")
    for policy in ("fail", "drop"):
        result = check(raw, policy=policy)
        assert result.ok and not result.problems and not result.dropped
        assert result.facts["events_after_churn"] == {"orders": 1, "interactions": 1, "links": 1}
        assert result.facts["accounts_active_after_churn"] == 1
        assert result.facts["active_after_churn_examples"] == ["b"]
    note = next(n for n in result.notes if n.startswith("churn: "))
    assert note.startswith(
        "churn: 1 of 1 (100.0%) churned accounts have events on a later day than their "
        "churned_at: 1 order, 1 interaction, 1 new link (e.g. b: churned 2023-02-01, portal "
        "link on 2023-02-05). A customer who came back, or a wrong churn date?"
    )
    assert "is not scored (status churned)" in note and "remove its churn row" in note
    assert result.notes[-1].startswith("history: ")


def test_events_on_the_churn_day_are_not_after_it(world_dir):
    """b churned 2023-03-20 in the tiny world; an order that day is not a contradiction."""
    world = tiny_world()
    world["churn"]["churned_at"] = T("2023-02-20 00:00:00")  # o4 is 2023-02-20 too
    result = check(write_world(world, world_dir.parent / "same_day"))
    assert "events_after_churn" not in result.facts
    assert not any(n.startswith("churn: ") for n in result.notes)
    assert "events_after_churn" not in check(world_dir).facts


def test_orders_before_customer_since_are_a_note(tmp_path):
    world = tiny_world()
    world["orders"].loc[[0, 1], "order_date"] = [T("2021-11-01"), T("2021-12-01")]  # a: 2022-01
    world["orders"].loc[4, "order_date"] = T("2023-03-14 23:00")  # c: 2023-03-15
    world["orders"].loc[4, "promised_date"] = T("2023-03-15")
    world["orders"].loc[0, "promised_date"] = T("2021-11-20")
    world["orders"].loc[1, "promised_date"] = T("2021-12-20")
    result = check(write_world(world, tmp_path / "raw"))
    assert result.ok, result.summary()
    facts = result.facts
    assert facts["orders_before_customer_since"] == 3
    assert facts["accounts_ordering_before_customer_since"] == 2
    assert facts["ordering_before_customer_since_examples"] == ["a", "c"]
    note = next(n for n in result.notes if "customer_since (e.g." in n)
    assert note.startswith(
        "orders: 3 orders of 2 accounts are dated before the account's customer_since (e.g. "
        "a: customer since 2022-01-01, order o1 on 2021-11-01; c: customer since 2023-03-15, "
        "order o5 on 2023-03-14). The relationship is taken to begin at customer_since"
    )


def test_event_dates_after_today_are_a_note_unless_an_end_date_is_set(world_dir):
    import datetime as dt

    from pipeline.notes import _after_today

    result = check(world_dir)
    assert "event_dates_after_today" not in result.facts  # 2022-2023 is in the past
    _after_today(result, today=dt.date(2023, 3, 1))
    assert result.facts["event_dates_after_today"] == 3
    assert result.notes[-1] == (
        "dates: 3 event dates after today (2023-03-01, this machine's date; latest first: "
        "churn.churned_at 2023-03-20 (b), orders.order_date 2023-03-20 (o5), "
        "accounts.customer_since 2023-03-15 (c)): an export cannot hold events that have not "
        "happened yet. Correct them, or set validate.end_date to the day the data was "
        "exported to have them reported as problems"
    )
    bounded = check(world_dir, end_date="2023-12-31")
    _after_today(bounded, today=dt.date(2023, 3, 1))
    assert "event_dates_after_today" not in bounded.facts


def test_the_late_tail_rule_on_hand_made_timelines():
    """Each arm at its boundary: 1% of the events before the gap; fewer than them when the gap
    is longer than the history before it; a gap of exactly gap_days is no gap."""
    import datetime as dt

    from pipeline.timeline import Late, late_tail

    def timeline(bulk: int, gap: int, tail: int) -> list[tuple[dt.date, int]]:
        start = dt.date(2023, 1, 1)
        days = [(start + dt.timedelta(days=i), 1) for i in range(bulk)]
        return [*days, (days[-1][0] + dt.timedelta(days=gap), tail)]

    last = dt.date(2023, 1, 1) + dt.timedelta(days=999)
    assert late_tail(timeline(1000, 200, 10), 180) == Late(last + dt.timedelta(days=200), 200, last)
    assert late_tail(timeline(1000, 200, 11), 180) is None  # 11 > 1% of 1000
    assert late_tail(timeline(5, 181, 4), 180) is not None  # 181 days > the 4 before: 4 < 5
    assert late_tail(timeline(5, 181, 5), 180) is None  # not fewer
    assert late_tail(timeline(1000, 180, 1), 180) is None  # not more than gap_days
    assert late_tail([], 180) is None and late_tail(timeline(1, 1, 1), 180) is None
