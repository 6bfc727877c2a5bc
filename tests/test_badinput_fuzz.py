"""Fuzzing `churn validate`: mutated input folders end in success or a clean exit 2, never a crash.

Each case starts from the hand-made world and applies a few mutations: broken cells (text in
numbers, impossible or placeholder dates, formulas, control characters, random text), broken
files (flipped, inserted or deleted bytes, truncation, other delimiters, encodings and line
endings, duplicated or dropped lines, renamed or dropped columns), dropped tables, and tables
written as Parquet with random column types. Validation runs in-process under a random policy
and end date; a case passes if it writes clean tables or raises the user-facing error, and
every tenth case also goes through the command line's error path.

FUZZ_EXAMPLES sets the number of cases (default 60 in `make test`, 200 under the `long`
Hypothesis profile of `make test-long`); FUZZ_SEED picks another run of them
(default: the same cases every run); FUZZ_REPORT names a JSON file for the outcome counts.
"""

from __future__ import annotations

import collections
import json
import os
import re
import tempfile
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from pipeline.checking import check
from pipeline.errors import UserError
from pipeline.store import write_clean
from tests.conftest import fuzz_cases, tiny_world
from tests.test_badinput_validate import run_cli

EXAMPLES = fuzz_cases("FUZZ_EXAMPLES", ci=60, long=200)
SEED = os.environ.get("FUZZ_SEED")
OUTCOMES: collections.Counter[str] = collections.Counter()
CHECKS: collections.Counter[str] = collections.Counter()  # which checks the cases reached
CALLS = [0]
TABLES = ["accounts", "orders", "interactions", "links", "churn"]
BASE = {name: frame.astype(object) for name, frame in tiny_world().items()}
BASE_CSV = {name: frame.to_csv(index=False).encode() for name, frame in BASE.items()}
CONNECTION = duckdb.connect()  # each case gets its own cursor: its temp tables die with it

NASTY = [
    "",
    " ",
    "NULL",
    "nan",
    "NaN",
    "inf",
    "-inf",
    "-1",
    "-0.0",
    "0",
    "1e400",
    "1,5",
    "1.234,50",
    "12 EUR",
    "2023-02-30",
    "2023-13-01",
    "9999-12-31",
    "0001-01-01",
    "1899-12-31",
    "15/01/2023",
    "2023/01/15",
    "20230115",
    "2023-01-15T10:00:00Z",
    "2023-01-15 10:00",
    "2030-01-01",
    "=1+2",
    "+cmd",
    "@SUM(A1)",
    "-2+3",
    "a",
    "zz",
    "o1",
    "i1",
    "Müller",
    "\x00",
    '"',
    "'",
    "a,b",
    "a;b",
    "a\nb",
    "a\r\nb",
    "\t",
    "\ufeff",
    "other",
    "Complaint",
    "EDI",
    "x" * 300,
]
CELL = st.one_of(
    st.sampled_from(NASTY),
    st.text(max_size=12),
    st.integers(-(10**12), 10**12).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(str),
    st.dates().map(str),
)
SPECIAL_BYTES = b',;"\n\r\t\x00\xff\xfe\xef\xbb\xbf-:/. 0123456789aZ'


@st.composite
def cell_edits(draw) -> list[tuple[str, int, str, str]]:
    edits = []
    for _ in range(draw(st.integers(0, 4))):
        table = draw(st.sampled_from(TABLES))
        frame = BASE[table]
        edits.append(
            (
                table,
                draw(st.integers(0, len(frame) - 1)),
                draw(st.sampled_from(list(frame.columns))),
                draw(CELL),
            )
        )
    return edits


@st.composite
def byte_mutation(draw):
    kind = draw(
        st.sampled_from(
            [
                "flip",
                "insert",
                "delete",
                "truncate",
                "dup_line",
                "drop_line",
                "swap_lines",
                "header",
                "bom",
                "latin1",
                "utf16",
                "semicolon",
                "tab",
                "crlf",
                "cr",
                "empty",
                "header_only",
                "garbage",
            ]
        )
    )
    return (
        kind,
        draw(st.integers(0, 10**6)),
        draw(st.integers(0, 10**6)),
        draw(
            st.binary(min_size=1, max_size=8) | st.sampled_from([bytes([b]) for b in SPECIAL_BYTES])
        ),
    )


def mutate_bytes(data: bytes, mutation) -> bytes:
    kind, a, b, chunk = mutation
    n = max(len(data), 1)
    i, j = sorted((a % n, b % n))
    lines = data.split(b"\n")
    if kind == "flip" and data:
        return data[:i] + chunk[:1] + data[i + 1 :]
    if kind == "insert":
        return data[:i] + chunk + data[i:]
    if kind == "delete":
        return data[:i] + data[j:]
    if kind == "truncate":
        return data[:i]
    if kind == "dup_line":
        k = a % len(lines)
        return b"\n".join(lines[: k + 1] + [lines[k]] + lines[k + 1 :])
    if kind == "drop_line":
        k = a % len(lines)
        return b"\n".join(lines[:k] + lines[k + 1 :])
    if kind == "swap_lines":
        k, m = a % len(lines), b % len(lines)
        lines[k], lines[m] = lines[m], lines[k]
        return b"\n".join(lines)
    if kind == "header":
        names = lines[0].split(b",")
        k = a % len(names)
        names[k] = chunk if b % 2 else names[k].upper() + b" "
        return b"\n".join([b",".join(names)] + lines[1:])
    if kind == "bom":
        return b"\xef\xbb\xbf" + data
    if kind in ("latin1", "utf16"):
        text = data.decode("utf-8", "replace").replace("a", "ä", 1)
        return text.encode("latin-1", "replace") if kind == "latin1" else text.encode("utf-16")
    if kind == "semicolon":
        return data.replace(b",", b";")
    if kind == "tab":
        return data.replace(b",", b"\t")
    if kind == "crlf":
        return data.replace(b"\n", b"\r\n")
    if kind == "cr":
        return data.replace(b"\n", b"\r")
    if kind == "empty":
        return b""
    if kind == "header_only":
        return lines[0] + b"\n"
    return bytes((x * 37 + a) % 256 for x in data[: i + 1])  # garbage


PARQUET_TYPES = [pa.string(), pa.int64(), pa.float64(), pa.bool_(), pa.timestamp("us"), pa.date32()]


def parquet_table(frame: pd.DataFrame, retype: dict[str, int]) -> pa.Table:
    """The frame as Arrow, some columns converted (or, failing that, nulled) to other types."""
    columns = {}
    for name in frame.columns:
        values = frame[name]
        if name not in retype:
            columns[name] = pa.array([None if pd.isna(v) else str(v) for v in values], pa.string())
            continue
        target = PARQUET_TYPES[retype[name] % len(PARQUET_TYPES)]
        converted = pd.Series(values)
        try:
            if pa.types.is_timestamp(target) or pa.types.is_date(target):
                converted = pd.to_datetime(converted, errors="coerce", format="mixed")
                if pa.types.is_date(target):
                    converted = converted.dt.date
            elif pa.types.is_integer(target) or pa.types.is_floating(target):
                converted = pd.to_numeric(converted, errors="coerce").replace(
                    [np.inf, -np.inf], np.nan
                )
                if pa.types.is_integer(target):
                    converted = converted.round().astype("Int64")
            elif pa.types.is_boolean(target):
                converted = converted.notna()
            columns[name] = pa.array(converted, target, from_pandas=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError, ValueError, TypeError):
            columns[name] = pa.nulls(len(values), target)
    return pa.table(columns)


@st.composite
def cases(draw) -> dict:
    world = {name: frame.copy() for name, frame in BASE.items()}
    for table, row, column, value in draw(cell_edits()):
        world[table].loc[row, column] = value
    plan = {t: {"how": "csv", "bytes": [], "retype": {}, "drop_column": None} for t in TABLES}
    for _ in range(draw(st.integers(0, 3))):
        table = draw(st.sampled_from(TABLES))
        how = draw(st.sampled_from(["bytes", "parquet", "drop_column", "drop", "both"]))
        columns = list(world[table].columns)
        if how == "bytes":
            plan[table]["how"] = "bytes"
            plan[table]["bytes"] += draw(st.lists(byte_mutation(), min_size=1, max_size=3))
        elif how == "drop_column":
            plan[table]["drop_column"] = draw(st.sampled_from(columns))
        elif how in ("parquet", "both"):
            plan[table]["how"] = how
            retype = st.dictionaries(st.sampled_from(columns), st.integers(0, 11), max_size=3)
            plan[table]["retype"] = draw(retype)
        else:
            plan[table]["how"] = "drop"
    return {
        "world": world,
        "plan": plan,
        "policy": draw(st.sampled_from(["fail", "drop"])),
        "end_date": draw(st.none() | st.sampled_from(["2023-03-01", "2022-12-31", "2030-01-01"])),
    }


def write_case(case: dict, folder: Path) -> None:
    folder.mkdir()
    for table, plan in case["plan"].items():
        frame = case["world"][table]
        if plan["drop_column"] is not None and plan["how"] != "bytes":
            frame = frame.drop(columns=plan["drop_column"])
        if plan["how"] == "drop":
            continue
        if plan["how"] in ("csv", "both"):
            frame.to_csv(folder / f"{table}.csv", index=False)
        if plan["how"] == "bytes":
            data = BASE_CSV[table] if frame is BASE[table] else frame.to_csv(index=False).encode()
            for mutation in plan["bytes"]:
                data = mutate_bytes(data, mutation)
            (folder / f"{table}.csv").write_bytes(data)
        if plan["how"] in ("parquet", "both"):
            pq.write_table(parquet_table(frame, plan["retype"]), folder / f"{table}.parquet")


def run_case(case: dict, folder: Path, via_cli: bool) -> str:
    """Validate one case; return its outcome. Anything but a UserError propagates (a bug)."""
    raw, out = folder / "raw", folder / "clean"
    write_case(case, raw)
    if via_cli:
        args = ["validate", "--data", str(raw), "--out", str(out), "--policy", case["policy"]]
        if case["end_date"]:
            args += ["--end-date", case["end_date"]]
        code, _, stderr = run_cli(*args)
        assert code in (0, 2) and "Traceback" not in stderr, stderr
        assert out.exists() == (code == 0)
        return f"cli exit {code}"
    cursor = CONNECTION.cursor()
    try:
        result = check(raw, con=cursor, policy=case["policy"], end_date=case["end_date"])
        for problem in result.problems:
            name = re.split(r" \(|:|;| [A-Za-z_]+\.(?:csv|parquet)", problem.check)[0]
            CHECKS[re.sub(r" [0-9]{4}-[0-9]{2}-[0-9]{2}$", "", name)] += 1
        try:
            write_clean(result, out)
        except UserError:
            assert not out.exists()
            return "exit 2 (problems reported)"
        again = check(out)  # what was written is valid input itself
        assert again.ok, again.summary()
        return "written, rows dropped" if result.dropped else "written"
    finally:
        cursor.close()


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=SEED is None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(case=cases())
def _fuzz(case: dict) -> None:
    CALLS[0] += 1
    with tempfile.TemporaryDirectory() as folder:
        OUTCOMES[run_case(case, Path(folder), via_cli=CALLS[0] % 10 == 0)] += 1


def test_fuzz_validate_never_crashes():
    fuzz = seed(int(SEED))(_fuzz) if SEED is not None else _fuzz
    OUTCOMES.clear()
    CHECKS.clear()
    fuzz()
    figures = dict(OUTCOMES, cases=sum(OUTCOMES.values()), checks=dict(CHECKS))
    print("fuzz outcomes:", json.dumps(figures, sort_keys=True))
    if os.environ.get("FUZZ_REPORT"):
        Path(os.environ["FUZZ_REPORT"]).write_text(json.dumps(figures, indent=2, sort_keys=True))
    assert figures["cases"] >= EXAMPLES * 0.9
    written = sum(n for k, n in OUTCOMES.items() if k.startswith("written") or k == "cli exit 0")
    assert written and written < figures["cases"]  # both outcomes happen
    assert len(CHECKS) >= 10  # and the cases reach many different checks
