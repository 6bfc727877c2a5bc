"""The input contract: clean data passes; every problem is reported at once; nothing is written."""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pytest

from pipeline.errors import DataError
from pipeline.validate import check, load, write_clean
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
