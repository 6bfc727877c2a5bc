"""Bad input to `churn validate`: every case ends in success or a clear exit 2, never a traceback.

Each case starts from the hand-made world of conftest.py, breaks one thing, and runs the real
command line in-process (the same `main()` the console script calls).
"""

from __future__ import annotations

import contextlib
import io
import json
import sys
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.checking import check
from pipeline.cli import main
from pipeline.store import REJECTS_NAME, write_clean
from tests.conftest import tiny_world, write_world

World = dict[str, pd.DataFrame]


def run_cli(*args: str) -> tuple[int, str, str]:
    """Run `churn ARGS` in-process; return (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    argv = sys.argv
    sys.argv = ["churn", *args]
    code = 0
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            main()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        sys.argv = argv
    return code, out.getvalue(), err.getvalue()


def texts(world: World) -> World:
    """The world with every column as text, so single cells can be broken."""
    return {name: frame.astype(object) for name, frame in world.items()}


def edit(table: str, row: int, column: str, value) -> Callable[[World], None]:
    def apply(world: World) -> None:
        world[table].loc[row, column] = value

    return apply


def write_csv_bytes(folder: Path, table: str, data: bytes) -> None:
    (folder / f"{table}.csv").write_bytes(data)


def csv_text(world: World, table: str) -> str:
    return world[table].to_csv(index=False)


# Each case: (id, how to break the world, extra CLI args, exit code, fragments of the output).
# A builder takes (world, folder): it may change `world` before it is written as CSV, or write
# files itself and return True to skip the default writing.
def _case_world(change: Callable[[World], None]):
    def build(world: World, folder: Path) -> bool:
        change(world)
        return False

    return build


def _raw(write: Callable[[World, Path], None]):
    def build(world: World, folder: Path) -> bool:
        write_world(world, folder)
        write(world, folder)
        return True

    return build


def _drop_table(name: str):
    return _case_world(lambda w: w.pop(name))


def _drop_column(table: str, column: str):
    return _case_world(lambda w: w.__setitem__(table, w[table].drop(columns=column)))


def _header_only(table: str):
    return _raw(
        lambda w, f: write_csv_bytes(f, table, (",".join(w[table].columns) + "\n").encode())
    )


def _parquet(table: str, changes: dict[str, pa.Array]):
    def write(world: World, folder: Path) -> None:
        (folder / f"{table}.csv").unlink()
        frame = tiny_world()[table]
        arrow = pa.Table.from_pandas(frame, preserve_index=False)
        for name, array in changes.items():
            arrow = arrow.set_column(arrow.schema.get_field_index(name), name, array)
        pq.write_table(arrow, folder / f"{table}.parquet")

    return _raw(write)


CASES = [
    ("clean data", _case_world(lambda w: None), [], 0, ["valid: accounts 3 rows"]),
    (
        "missing required table",
        _drop_table("accounts"),
        [],
        2,
        ["accounts: required table is missing", "put accounts.csv or accounts.parquet"],
    ),
    (
        "missing optional table",
        _drop_table("links"),
        [],
        0,
        ["note: links: no table; features that need it are left out"],
    ),
    (
        "missing required column",
        _drop_column("orders", "amount"),
        [],
        2,
        ["orders.amount: required column is missing", "orders.csv has: order_id"],
    ),
    (
        "text in amount",
        _case_world(edit("orders", 1, "amount", "12 EUR")),
        [],
        2,
        ["orders.amount: values that are not numbers (1 row)", "amount='12 EUR'"],
    ),
    (
        "decimal comma",
        _case_world(edit("orders", 1, "amount", "1.234,50")),
        [],
        2,
        ["values that are not numbers", "dot as decimal separator"],
    ),
    (
        "amount inf",
        _case_world(edit("orders", 0, "amount", "inf")),
        [],
        2,
        ["orders.amount: values that are not numbers (1 row)"],
    ),
    (
        "date that does not parse",
        _case_world(edit("orders", 2, "order_date", "soon")),
        [],
        2,
        ["orders.order_date: dates that do not parse (1 row)", "order_date='soon'"],
    ),
    (
        "impossible calendar date",
        _case_world(edit("orders", 2, "order_date", "2023-02-30")),
        [],
        2,
        ["orders.order_date: dates that do not parse (1 row)"],
    ),
    (
        "mixed date formats",
        _case_world(edit("orders", 2, "order_date", "15/01/2023")),
        [],
        2,
        ["orders.order_date: dates in another format than the rest of the column (mixed"],
    ),
    (
        "placeholder date",
        _case_world(edit("links", 0, "end_date", "9999-12-31")),
        [],
        2,
        ["links.end_date: dates before 1900-01-01 or from 2200-01-01 on (1 row)"],
    ),
    (
        "timezone offset",
        _case_world(edit("interactions", 0, "occurred_at", "2022-11-05T09:00:00+02:00")),
        [],
        2,
        ["interactions.occurred_at: dates in another format than the rest of the column"],
    ),
    ("empty table (header only)", _header_only("accounts"), [], 2, ["accounts: table has no rows"]),
    (
        "header-only optional table",
        _header_only("links"),
        [],
        2,
        ["links: table has no rows", "or remove links.csv if there is no such data"],
    ),
    (
        "0-byte file",
        _raw(lambda w, f: write_csv_bytes(f, "orders", b"")),
        [],
        2,
        ["orders: orders.csv is empty (no header row)"],
    ),
    (
        "duplicate ids",
        _case_world(edit("orders", 3, "order_id", "o1")),
        [],
        2,
        ["orders.order_id: duplicate ids (2 rows)", "keep one row per order_id"],
    ),
    (
        "duplicate ids after trimming",
        _case_world(edit("accounts", 1, "account_id", " a ")),
        [],
        2,
        ["accounts.account_id: duplicate ids (2 rows)"],
    ),
    (
        "unknown account",
        _case_world(edit("orders", 4, "account_id", "zz")),
        [],
        2,
        ["orders.account_id: rows pointing at accounts not in the accounts table (1 row)"],
    ),
    (
        "empty required value",
        _case_world(edit("interactions", 0, "account_id", None)),
        [],
        2,
        ["interactions.account_id: empty values in a required column (1 row)"],
    ),
    (
        "negative amount",
        _case_world(edit("orders", 0, "amount", -5.0)),
        [],
        2,
        ["orders.amount: negative values (1 row)", "amount='-5.0'"],
    ),
    (
        "delivered before ordered",
        _case_world(edit("orders", 0, "delivered_date", "2023-01-01")),
        [],
        2,
        ["orders.delivered_date: delivered before it was ordered (1 row)"],
    ),
    (
        "resolved before occurred",
        _case_world(edit("interactions", 0, "resolved_at", "2022-11-01")),
        [],
        2,
        ["interactions.resolved_at: resolved before it occurred (1 row)"],
    ),
    (
        "link end before start",
        _case_world(edit("links", 1, "end_date", "2022-01-01")),
        [],
        2,
        ["links.end_date: link ends before it starts (1 row)"],
    ),
    (
        "churn before the relationship began",
        _case_world(edit("churn", 0, "churned_at", "2022-01-01")),
        [],
        2,
        [
            "churn.churned_at: churned before the relationship began",
            "relationship_began='2022-06-01'",
        ],
    ),
    (
        "events after the end date",
        _case_world(lambda w: None),
        ["--end-date", "2023-03-01"],
        2,
        [
            "orders.order_date: dated after the data's end date 2023-03-01 (validate.end_date)"
            " (1 row)"
        ],
    ),
    (
        "end date not a date",
        _case_world(lambda w: None),
        ["--end-date", "March"],
        2,
        ["validate.end_date 'March' is not a date"],
    ),
    (
        "unknown interaction and link types",
        _case_world(
            lambda w: (
                edit("interactions", 0, "type", "Escalation")(w),
                edit("links", 0, "link_type", "fax")(w),
            )
        ),
        [],
        0,
        [
            "interactions.type: values outside the vocabulary mapped to 'other' in 1 row "
            "('escalation' 1)",
            "links.link_type: values outside the vocabulary mapped to 'other' in 1 row ('fax' 1)",
        ],
    ),
    (
        "CSV with a byte-order mark",
        _raw(
            lambda w, f: write_csv_bytes(
                f, "accounts", b"\xef\xbb\xbf" + csv_text(w, "accounts").encode()
            )
        ),
        [],
        0,
        ["valid: accounts 3 rows"],
    ),
    (
        "semicolon delimiters",
        _raw(lambda w, f: w["orders"].to_csv(f / "orders.csv", sep=";", index=False)),
        [],
        0,
        ["orders 5 rows"],
    ),
    (
        "semicolons and decimal commas",
        _raw(
            lambda w, f: tiny_world()["orders"].to_csv(
                f / "orders.csv", sep=";", decimal=",", index=False
            )
        ),
        [],
        2,
        ["orders.amount: values that are not numbers (5 rows)", "amount='100,0'"],
    ),
    (
        "quoted newlines",
        _raw(
            lambda w, f: (
                w["accounts"]
                .assign(name=["Al\npha", 'Be"ta', "Gam,ma"])
                .to_csv(f / "accounts.csv", index=False)
            )
        ),
        [],
        0,
        ["valid: accounts 3 rows"],
    ),
    (
        "Latin-1 text",
        _raw(
            lambda w, f: write_csv_bytes(
                f, "accounts", csv_text(w, "accounts").replace("Alpha", "Müller").encode("latin-1")
            )
        ),
        [],
        0,
        ["accounts.csv is not UTF-8; read it as latin-1"],
    ),
    (
        "UTF-16 text",
        _raw(lambda w, f: write_csv_bytes(f, "accounts", csv_text(w, "accounts").encode("utf-16"))),
        [],
        0,
        ["read it as utf-16"],
    ),
    (
        "Windows line endings",
        _raw(lambda w, f: w["orders"].to_csv(f / "orders.csv", index=False, lineterminator="\r\n")),
        [],
        0,
        ["orders 5 rows"],
    ),
    (
        "line with too many fields",
        _raw(
            lambda w, f: write_csv_bytes(
                f, "links", (csv_text(w, "links") + "c,edi,2022-01-01,,extra\n").encode()
            )
        ),
        [],
        2,
        ["links: lines of links.csv that cannot be read (1 row)", "too many columns"],
    ),
    (
        "header names in other case and spacing",
        _case_world(
            lambda w: w.__setitem__(
                "accounts", w["accounts"].rename(columns={"account_id": " Account_ID "})
            )
        ),
        [],
        0,
        ["valid: accounts 3 rows"],
    ),
    (
        "two columns for one contract column",
        _case_world(lambda w: w["accounts"].insert(1, "ACCOUNT_ID", w["accounts"]["account_id"])),
        [],
        2,
        ["accounts.account_id: several columns are called account_id"],
    ),
    (
        "CSV and Parquet for one table",
        _raw(lambda w, f: w["links"].to_parquet(f / "links.parquet")),
        [],
        2,
        ["links: more than one file for the table"],
    ),
    (
        "Parquet with typed columns",
        _raw(
            lambda w, f: (
                (f / "orders.csv").unlink(),
                tiny_world()["orders"].to_parquet(f / "orders.parquet"),
            )
        ),
        [],
        0,
        ["orders 5 rows"],
    ),
    (
        "Parquet amount stored as timestamp",
        _parquet("orders", {"amount": pa.array(pd.to_datetime(["2023-01-01"] * 5))}),
        [],
        2,
        [
            "orders.amount: column stored as TIMESTAMP; it must hold numbers (5 rows)",
            "pd.to_numeric",
        ],
    ),
    (
        "Parquet dates stored as numbers",
        _parquet(
            "orders", {"order_date": pa.array([20230110, 20230301, 20230115, 20230220, 20230320])}
        ),
        [],
        2,
        ["orders.order_date: column stored as BIGINT; it must hold dates", "pd.to_datetime"],
    ),
    (
        "Parquet ids stored as decimals",
        _parquet("accounts", {"account_id": pa.array([1.0, 2.0, 3.0])}),
        [],
        2,
        ["accounts.account_id: column stored as DOUBLE; it must hold text or whole numbers"],
    ),
    (
        "Parquet amount as text",
        _parquet("orders", {"amount": pa.array(["100", "200", "50", "70", "30"])}),
        [],
        0,
        ["orders 5 rows"],
    ),
    (
        "Parquet timestamps with a time zone",
        _parquet(
            "churn",
            {
                "churned_at": pa.array(
                    pd.to_datetime(["2023-03-20 10:00"]).tz_localize("Europe/Berlin")
                )
            },
        ),
        [],
        0,
        ["churn 1 rows"],
    ),
    (
        "corrupt Parquet file",
        _raw(
            lambda w, f: (
                (f / "links.csv").unlink(),
                (f / "links.parquet").write_bytes(b"PAR1 not really"),
            )
        ),
        [],
        2,
        ["links: cannot read links.parquet"],
    ),
    (
        "null tokens in optional columns",
        _case_world(
            lambda w: (
                edit("orders", 1, "delivered_date", "NULL")(w),
                edit("interactions", 0, "minutes", "NaN")(w),
            )
        ),
        [],
        0,
        ["orders 5 rows"],
    ),
    (
        "many problems at once",
        _case_world(
            lambda w: (
                edit("orders", 1, "amount", "12 EUR")(w),
                edit("orders", 2, "order_date", "2023/13/45")(w),
                edit("orders", 3, "order_id", "o1")(w),
                edit("links", 1, "end_date", "2021-01-01")(w),
                edit("interactions", 0, "account_id", "nobody")(w),
            )
        ),
        [],
        2,
        [
            "5 problem(s)",
            "orders.amount",
            "orders.order_date",
            "orders.order_id",
            "links.end_date",
            "interactions.account_id",
        ],
    ),
    (
        "unknown policy",
        _case_world(lambda w: None),
        ["--policy", "ignore"],
        2,
        ["validate.policy must be one of fail, drop; got 'ignore'"],
    ),
    (
        "drop policy",
        _case_world(
            lambda w: (
                edit("orders", 1, "amount", "12 EUR")(w),
                edit("orders", 3, "delivered_date", "2023-01-01")(w),
            )
        ),
        ["--policy", "drop"],
        0,
        ["dropped 2 rows with problems (orders 2)", "valid: accounts 3 rows, orders 3 rows"],
    ),
    (
        "drop policy, nothing left",
        _case_world(lambda w: w["accounts"].__setitem__("customer_since", "yesterday")),
        ["--policy", "drop"],
        2,
        ["accounts: no rows left after dropping the rows with problems"],
    ),
    (
        "drop policy, missing column still fails",
        _drop_column("orders", "order_date"),
        ["--policy", "drop"],
        2,
        ["orders.order_date: required column is missing"],
    ),
]


def build_case(builder, folder: Path) -> Path:
    """Write the tiny world broken by `builder` into `folder`."""
    world = texts(tiny_world())
    folder.mkdir(parents=True, exist_ok=True)
    if not builder(world, folder):
        write_world(world, folder)
    return folder


def run_case(builder, args: list[str], tmp: Path) -> tuple[int, str, Path]:
    raw = build_case(builder, tmp / "raw")
    out = tmp / "clean"
    code, stdout, stderr = run_cli(
        "validate",
        "--data",
        str(raw),
        "--out",
        str(out),
        "--report",
        str(tmp / "report.json"),
        *args,
    )
    return code, stdout + stderr, out


@pytest.mark.parametrize(
    ("builder", "args", "code", "fragments"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_case(tmp_path, builder, args, code, fragments):
    got, output, out = run_case(builder, args, tmp_path)
    assert got == code, output
    assert "Traceback" not in output
    for fragment in fragments:
        assert fragment in output, f"{fragment!r} not in:\n{output}"
    if code == 2:
        assert not out.exists()
        assert not [p for p in tmp_path.iterdir() if p.name.startswith(".clean")]
    else:
        report = json.loads((out / "validation.json").read_text())
        assert report["ok"]


def test_every_message_names_table_column_count_examples_and_fix(tmp_path):
    world = texts(tiny_world())
    for row in range(5):
        world["orders"].loc[row, "amount"] = f"{row} EUR"
    world["orders"].loc[0, "quantity"] = "-3"
    result = check(write_world(world, tmp_path / "raw"))
    amount = next(p for p in result.problems if p.column == "amount")
    assert (amount.table, amount.count, len(amount.examples)) == ("orders", 5, 5)
    assert [e["_row"] for e in amount.examples] == ["1", "2", "3", "4", "5"]
    assert amount.examples[0] == {
        "_row": "1",
        "order_id": "o1",
        "account_id": "a",
        "amount": "0 EUR",
    }
    for problem in result.problems:
        assert problem.table and problem.check and problem.fix and problem.count >= 0
        assert len(problem.examples) <= 5
        assert problem.render().startswith(f"- {problem.table}.")


def test_json_report_written_even_when_validation_fails(tmp_path):
    world = texts(tiny_world())
    world["orders"].loc[1, "amount"] = "12 EUR"
    raw = write_world(world, tmp_path / "raw")
    code, _, _ = run_cli(
        "validate",
        "--data",
        str(raw),
        "--out",
        str(tmp_path / "c"),
        "--report",
        str(tmp_path / "r.json"),
    )
    report = json.loads((tmp_path / "r.json").read_text())
    assert code == 2 and not report["ok"]
    assert [(p["table"], p["column"], p["count"]) for p in report["problems"]] == [
        ("orders", "amount", 1)
    ]
    assert report["problems"][0]["examples"][0]["amount"] == "12 EUR"


def test_file_formats_read_to_the_same_clean_tables(tmp_path):
    """BOM, semicolons, CRLF, Latin-1, UTF-16 and Parquet give the tables plain CSV gives."""
    world = tiny_world()
    base = check(write_world(world, tmp_path / "plain"))
    write_clean(base, tmp_path / "plain_clean")
    variants = {
        "bom": lambda f: write_csv_bytes(
            f, "orders", b"\xef\xbb\xbf" + csv_text(world, "orders").encode()
        ),
        "semicolon": lambda f: world["orders"].to_csv(f / "orders.csv", sep=";", index=False),
        "crlf": lambda f: world["orders"].to_csv(
            f / "orders.csv", index=False, lineterminator="\r\n"
        ),
        "latin1": lambda f: write_csv_bytes(
            f, "orders", csv_text(world, "orders").encode("latin-1")
        ),
        "utf16": lambda f: write_csv_bytes(f, "orders", csv_text(world, "orders").encode("utf-16")),
        "parquet": lambda f: (
            (f / "orders.csv").unlink(),
            world["orders"].to_parquet(f / "orders.parquet"),
        ),
    }
    expected = pd.read_parquet(tmp_path / "plain_clean" / "orders.parquet")
    for name, write in variants.items():
        folder = write_world(world, tmp_path / name)
        write(folder)
        result = check(folder)
        assert result.ok, (name, result.summary())
        write_clean(result, tmp_path / f"{name}_clean")
        got = pd.read_parquet(tmp_path / f"{name}_clean" / "orders.parquet")
        pd.testing.assert_frame_equal(got, expected, check_dtype=True), name


def test_latin1_text_is_read_as_latin1(tmp_path):
    world = tiny_world()
    folder = write_world(world, tmp_path / "raw")
    text = csv_text(world, "accounts").replace("Alpha", "Müller & Söhne")
    write_csv_bytes(folder, "accounts", text.encode("latin-1"))
    result = check(folder)
    names = result.con.execute("SELECT name FROM clean_accounts ORDER BY account_id").df()["name"]
    assert names.iloc[0] == "Müller & Söhne"


def test_drop_policy_writes_rejects_and_clean_tables_that_validate_again(tmp_path):
    world = texts(tiny_world())
    accounts = world["accounts"]
    other_c = accounts.iloc[[2]].assign(name="Gamma GmbH")  # c twice, the rows differ
    world["accounts"] = pd.concat([accounts, other_c], ignore_index=True)
    world["orders"].loc[3, "amount"] = "-1"  # o4 (b)
    world["interactions"].loc[3, "account_id"] = "zz"  # i4: unknown account
    world["interactions"].loc[2, "type"] = "Escalation"  # i3: kept, mapped to other
    raw = write_world(world, tmp_path / "raw")
    (raw / "links.csv").write_text(csv_text(world, "links") + "c,edi,2022-01-01,,extra\n")
    out = tmp_path / "clean"
    code, _, stderr = run_cli("validate", "--data", str(raw), "--out", str(out), "--policy", "drop")
    assert code == 0, stderr
    assert "dropped 6 rows with problems" in stderr
    rejects = pd.read_csv(out / REJECTS_NAME)
    assert rejects.groupby("table").size().to_dict() == {
        "accounts": 2,  # both copies of c
        "orders": 2,  # o4's negative amount; o5 belongs to c, which was dropped
        "interactions": 1,  # i4 points at an unknown account
        "links": 1,  # a line with too many fields
    }
    o5 = rejects[rejects["row"].eq(5) & rejects["table"].eq("orders")].iloc[0]
    assert o5["problems"] == (
        "orders.account_id: rows of accounts that were dropped (see the accounts problems)"
    )
    assert json.loads(o5["record"])["order_id"] == "o5"
    line = rejects[rejects["line"].notna()].iloc[0]
    assert line["table"] == "links" and "too many columns" in line["problems"]
    assert line["record"] == "c,edi,2022-01-01,,extra"
    report = json.loads((out / "validation.json").read_text())
    assert report["dropped"] == {"accounts": 2, "orders": 2, "interactions": 1, "links": 1}
    assert report["mapped_to_other"] == {
        "interactions.type": {"rows": 1, "values": {"escalation": 1}}
    }
    clean = {
        t: pd.read_parquet(out / f"{t}.parquet") for t in ("accounts", "orders", "interactions")
    }
    assert clean["accounts"]["account_id"].tolist() == ["a", "b"]
    assert clean["orders"]["order_id"].tolist() == ["o1", "o2", "o3"]
    assert clean["interactions"]["type"].tolist() == ["complaint", "complaint", "other"]
    again = check(out)  # the clean output is itself valid data
    assert again.ok, again.summary()


def test_drop_policy_keeps_every_good_row(tmp_path):
    world = texts(tiny_world())
    world["orders"].loc[1, "amount"] = "12 EUR"
    raw = write_world(world, tmp_path / "raw")
    result = check(raw, policy="drop")
    assert result.ok and result.dropped == {"orders": 1}
    write_clean(result, tmp_path / "clean")
    orders = pd.read_parquet(tmp_path / "clean" / "orders.parquet")
    assert orders["order_id"].tolist() == ["o1", "o3", "o4", "o5"]
    rejects = pd.read_csv(tmp_path / "clean" / REJECTS_NAME)
    assert rejects[["table", "row", "problems"]].to_dict("records") == [
        {"table": "orders", "row": 2, "problems": "orders.amount: values that are not numbers"}
    ]


def test_end_date_and_policy_from_params(tmp_path):
    raw = write_world(tiny_world(), tmp_path / "raw")
    params = tmp_path / "params.yaml"
    params.write_text("validate:\n  policy: drop\n  end_date: '2023-03-01'\n")
    code, _, stderr = run_cli(
        "validate", "--data", str(raw), "--out", str(tmp_path / "clean"), "--params", str(params)
    )
    assert code == 0, stderr
    report = json.loads((tmp_path / "clean" / "validation.json").read_text())
    assert report["policy"] == "drop" and report["end_date"] == "2023-03-01"
    assert report["data_end"] <= "2023-03-01"
    assert {p["check"] for p in report["problems"]} == {
        "dated after the data's end date 2023-03-01 (validate.end_date)",
        "rows of accounts that were dropped (see the accounts problems)",
    }
