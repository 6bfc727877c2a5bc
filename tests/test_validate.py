"""The input contract: clean data passes; every problem is reported at once; nothing is written."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from pipeline.checking import check
from pipeline.errors import DataError
from pipeline.store import load, write_clean
from tests.conftest import write_world


def churn_cli(*args: str, cwd) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pipeline.cli", *args], cwd=cwd, capture_output=True, text=True
    )


def test_clean_data_passes_and_is_written_typed(tmp_path, world_dir):
    result = check(world_dir)
    assert result.ok, [p.render() for p in result.problems]
    write_clean(result, tmp_path / "clean")
    orders = pd.read_parquet(tmp_path / "clean" / "orders.parquet")
    assert pd.api.types.is_datetime64_any_dtype(orders["order_date"])
    assert pd.api.types.is_float_dtype(orders["amount"])
    report = json.loads((tmp_path / "clean" / "validation.json").read_text())
    assert (
        report["ok"] and report["data_start"] == "2022-11-05" and report["data_end"] == "2023-03-20"
    )


def test_missing_column_names_table_and_column(tmp_path, world):
    world["orders"] = world["orders"].drop(columns="amount")
    with pytest.raises(DataError, match=r"orders\.amount: required column is missing"):
        load(write_world(world, tmp_path / "raw"))


def test_every_problem_reported_in_one_pass(tmp_path, world):
    orders = world["orders"].astype({"amount": object, "order_date": object})
    orders.loc[1, "amount"] = "12 EUR"
    orders.loc[2, "order_date"] = "15/01/2023"
    orders.loc[3, "order_id"] = "o1"
    orders.loc[4, "account_id"] = "zz"
    world["orders"] = orders
    world["interactions"].loc[0, "account_id"] = None
    result = check(write_world(world, tmp_path / "raw"))
    found = {(p.table, p.column, p.check) for p in result.problems}
    assert found == {
        ("orders", "amount", "values that are not numbers"),
        (
            "orders",
            "order_date",
            "dates in another format than the rest of the column (mixed formats)",
        ),
        ("orders", "order_id", "duplicate ids"),
        ("orders", "account_id", "rows pointing at accounts not in the accounts table"),
        ("interactions", "account_id", "empty values in a required column"),
    }
    amount = next(p for p in result.problems if p.column == "amount")
    assert amount.count == 1 and amount.examples[0]["amount"] == "12 EUR"
    assert amount.examples[0]["order_id"] == "o2" and amount.examples[0]["_row"] == "2"


def test_missing_required_table(tmp_path, world):
    del world["accounts"]
    result = check(write_world(world, tmp_path / "raw"))
    assert [(p.table, p.check) for p in result.problems] == [
        ("accounts", "required table is missing")
    ]


def test_unknown_vocabulary_maps_to_other(tmp_path, world):
    world["interactions"].loc[0, "type"] = "Escalation"
    folder = write_world(world, tmp_path / "raw")
    result = load(folder)
    types = result.con.execute("SELECT type FROM clean_interactions ORDER BY interaction_id").df()
    assert types["type"].iloc[0] == "other"
    assert any("mapped to 'other'" in n for n in result.notes)


def test_cli_exits_2_and_writes_nothing(tmp_path, world):
    world["orders"] = world["orders"].drop(columns="order_date")
    raw = write_world(world, tmp_path / "raw")
    out = tmp_path / "clean"
    proc = churn_cli("validate", "--data", str(raw), "--out", str(out), cwd=tmp_path)
    assert proc.returncode == 2
    assert "orders.order_date: required column is missing" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not out.exists()
    assert not list(tmp_path.glob(".clean*"))  # no temporary leftovers either


def test_cli_failure_keeps_the_previous_output(tmp_path, world):
    raw = write_world(world, tmp_path / "raw")
    out = tmp_path / "clean"
    assert (
        churn_cli("validate", "--data", str(raw), "--out", str(out), cwd=tmp_path).returncode == 0
    )
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    (raw / "orders.csv").write_text("order_id,account_id\n1,a\n")
    assert (
        churn_cli("validate", "--data", str(raw), "--out", str(out), cwd=tmp_path).returncode == 2
    )
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_a_companys_own_vocabulary_maps_onto_ours(tmp_path, world):
    """validate.vocabulary: their words for interaction and link types become ours."""
    world["interactions"]["type"] = ["Beschwerde", "BESCHWERDE", "Preisgespräch", "Planung"]
    world["links"]["link_type"] = ["EDI-Anbindung", "vmi", "Kundenportal"]
    folder = write_world(world, tmp_path / "raw")
    vocabulary = {
        "interactions.type": {"beschwerde": "complaint", "preisgespräch": "price_negotiation"},
        "links.link_type": {"edi-anbindung": "edi"},
    }
    result = check(folder, vocabulary=vocabulary)
    assert result.ok, result.summary()
    write_clean(result, tmp_path / "clean")
    types = pd.read_parquet(tmp_path / "clean" / "interactions.parquet")["type"].tolist()
    links = pd.read_parquet(tmp_path / "clean" / "links.parquet")["link_type"].tolist()
    assert types == ["complaint", "complaint", "price_negotiation", "other"]
    assert links == ["edi", "vmi", "other"]  # ours pass through; unmapped ones become other
    assert any("mapped by validate.vocabulary" in n for n in result.notes)
    assert result.mapped["interactions.type"]["values"] == {"planung": 1}
    # unmapped, the same data keeps only what is ours
    plain = check(folder)
    assert plain.mapped["interactions.type"]["rows"] == 4


@pytest.mark.parametrize(
    "vocabulary, message",
    [
        ({"interactions.kind": {"a": "complaint"}}, "'interactions.kind' is not a vocabulary"),
        ({"interactions.type": {"a": "moan"}}, "'a' maps to 'moan', which is not one of ours"),
        ({"links.link_type": ["edi"]}, "must map your values to ours"),
    ],
)
def test_a_wrong_vocabulary_mapping_is_a_clear_error(world_dir, vocabulary, message):
    from pipeline.errors import UserError

    with pytest.raises(UserError, match=message):
        check(world_dir, vocabulary=vocabulary)


CDNOW = Path(__file__).resolve().parent / "data" / "cdnow"


def test_cdnow_notes_count_what_shapes_the_model(tmp_path):
    """Zero amounts, one-time buyers, the history's length and the absent tables, counted."""
    result = check(CDNOW)
    assert result.ok and not result.problems
    orders = pd.read_parquet(CDNOW / "orders.parquet")
    accounts = pd.read_csv(CDNOW / "accounts.csv", dtype=str)
    per_account = orders.groupby("account_id").size()
    one = int((per_account == 1).sum())
    none = int((~accounts["account_id"].isin(orders["account_id"])).sum())
    facts = result.facts
    assert facts["zero_amount_orders"] == 80 == int((orders["amount"] == 0).sum())
    assert (
        facts["zero_amount_examples"]
        == orders.loc[orders["amount"] == 0, "order_id"].head(5).tolist()
    )
    assert facts["one_order_accounts"] == one and 10_000 < one < len(accounts)
    assert facts["no_order_accounts"] == none == 0
    assert facts["orders"] == len(orders) and facts["accounts"] == len(accounts)
    days = (orders["order_date"].max().normalize() - orders["order_date"].min()).days
    assert facts["history_days"] == days == 545
    assert facts["absent_tables"] == ["interactions", "links", "churn"]
    notes = "\n".join(result.notes)
    assert "orders: 80 of 69,659 (0.11%) orders have amount 0 (e.g. O001549, " in notes
    assert f"accounts: {one:,} of 23,570 ({one / 23570:.1%}) accounts have exactly one order" in (
        notes
    )
    assert "no order at all" not in notes
    assert "history: 77.9 weeks (545 days, 1997-01-01 to 1998-06-30); the training" in notes
    assert "churn: no table; churn is labelled by inactivity" in notes
    write_clean(result, tmp_path / "clean")
    report = json.loads((tmp_path / "clean" / "validation.json").read_text())
    assert report["facts"]["zero_amount_orders"] == 80 and report["notes"] == result.notes


def test_tiny_world_notes(world_dir):
    result = check(world_dir)
    facts = result.facts
    assert facts["orders"] == 5 and facts["zero_amount_orders"] == 0
    assert facts["zero_amount_examples"] == [] and facts["no_order_examples"] == []
    assert (facts["accounts"], facts["one_order_accounts"], facts["no_order_accounts"]) == (3, 1, 0)
    assert facts["history_days"] == 135 and facts["absent_tables"] == []
    notes = "\n".join(result.notes)
    assert "accounts: 1 of 3 (33.3%) accounts have exactly one order" in notes
    assert "amount 0" not in notes and "no order at all" not in notes
    assert result.notes[-1].startswith("history: 19.3 weeks (135 days, 2022-11-05 to 2023-03-20)")


def test_notes_count_the_rows_kept(tmp_path, world):
    """Zero amounts and order-less accounts; under drop, only the rows that are kept count."""
    world["orders"].loc[[2, 4], "amount"] = 0.0  # o3 (b) and o5 (c)
    world["orders"].loc[3, "amount"] = -70.0  # o4 (b): a problem, not a note
    world["accounts"] = pd.concat(
        [world["accounts"], pd.DataFrame({"account_id": ["d", "e"], "name": ["D", "E"]})]
    )
    folder = write_world(world, tmp_path / "raw")
    assert [p.check for p in check(folder).problems] == ["negative values"]
    result = check(folder, policy="drop")
    assert result.ok and result.kept["orders"] == 4
    facts = result.facts
    assert facts["zero_amount_orders"] == 2 and facts["zero_amount_examples"] == ["o3", "o5"]
    assert facts["one_order_accounts"] == 2  # b (o4 dropped) and c
    assert facts["no_order_accounts"] == 2 and facts["no_order_examples"] == ["d", "e"]
    notes = "\n".join(result.notes)
    assert "orders: 2 of 4 (50.0%) orders have amount 0 (e.g. o3, o5)" in notes
    assert "accounts: 2 of 5 (40.0%) accounts have exactly one order" in notes
    assert "accounts: 2 of 5 (40.0%) accounts have no order at all (e.g. d, e)" in notes


def test_cli_prints_the_data_notes(tmp_path, world_dir):
    proc = churn_cli(
        "validate", "--data", str(world_dir), "--out", str(tmp_path / "c"), cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr
    assert "note: accounts: 1 of 3 (33.3%) accounts have exactly one order" in proc.stdout
    assert "note: history: 19.3 weeks" in proc.stdout
