"""Fuzzing `churn score`: random customer lists, as-of spellings and previous score files
through the real command line end in exit 0 with every listed row back, or exit 2 with a
message and no file; never a traceback.

Lists mix active, churned, unknown, duplicate, blank, whitespace-padded, numeric-looking and
formula-like ids, in CSV (any delimiter, UTF-8, a BOM or Latin-1) or Parquet, sometimes broken
(no account_id column, ragged lines, no rows, random bytes). As-of dates come in ISO spellings
with and without time zones, and in ambiguous or out-of-range ones. Previous score files are
valid, re-saved by a spreadsheet (`;` and decimal commas), out of range, later than the as-of
date, without p_churn, or empty.

The feature frames are computed once per as-of date and reused across cases (they are the
same for every case; tests/test_point_in_time.py and tests/test_features.py prove them): the
fuzz is about what enters from outside the tables. SCORE_FUZZ_EXAMPLES sets the number of
cases (default 50 in `make test`, 150 under the `long` Hypothesis profile of `make test-long`,
the same cases every run); SCORE_FUZZ_SEED picks another run of
them; SCORE_FUZZ_REPORT names a JSON file for the outcome counts.
"""

from __future__ import annotations

import collections
import json
import os
import re
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

import pipeline.scoring
from pipeline.io import neutralise
from tests.conftest import fuzz_cases
from tests.test_badinput_validate import run_cli
from tests.test_score_total import STATUSES, churned_ids, everyone, project  # noqa: F401

EXAMPLES = fuzz_cases("SCORE_FUZZ_EXAMPLES", ci=50, long=150)
SEED = os.environ.get("SCORE_FUZZ_SEED")
OUTCOMES: collections.Counter[str] = collections.Counter()


@pytest.fixture(scope="module")
def pools(project, everyone) -> dict:  # noqa: F811
    active = everyone["account_id"].tolist()
    return {
        "ids": [
            *active[:3],  # high tier
            *active[-3:],  # low tier
            *churned_ids(project),
            "NOPE",
            "zz",
            "007",
            "7",
            "1e3",
            "0",
            "=1+1",
            "",
            "   ",
            None,
            f"  {active[0]} ",
            active[0].lower(),
        ],
        "end": pd.Timestamp(everyone["as_of"].iloc[0]),
    }


def as_of_spellings(end: pd.Timestamp) -> tuple[list[str | None], list[str]]:
    """(spellings that mean a date within the data, spellings that must be refused)."""
    days = [end, end - pd.Timedelta(days=30), end - pd.Timedelta(days=200)]
    valid = [None, *(f"{d:%Y-%m-%d}" for d in days)]
    valid += [f"{days[1]:%Y-%m-%d}T00:00:00Z", f"{days[2]:%Y-%m-%d} 10:00:00+02:00"]
    invalid = [f"{days[1]:%d.%m.%Y}", f"{days[1]:%Y/%m/%d}", f"{days[1]:%Y%m%d}", "tomorrow"]
    return valid, [*invalid, "2099-06-04", "1999-01-01"]


@st.composite
def cases(draw, pools: dict) -> dict:
    """A case with nothing wrong (half of them) or one thing wrong: the list, the as-of date
    or the previous file. Lists without rows, broken files and refused dates are the wrong."""
    fault = draw(st.sampled_from([None, None, None, "list", "as_of", "previous"]))
    valid_dates, invalid_dates = as_of_spellings(pools["end"])
    formats = ["csv", "csv;", "csv\t", "latin-1", "bom", "parquet"]
    return {
        "all_active": draw(st.integers(0, 9)) == 0,
        "ids": draw(st.lists(st.sampled_from(pools["ids"]), min_size=1, max_size=8)),
        "list_format": draw(st.sampled_from(["broken"] if fault == "list" else formats)),
        "extra": draw(st.booleans()),
        "as_of": draw(st.sampled_from(invalid_dates if fault == "as_of" else valid_dates)),
        "previous": draw(
            st.sampled_from(
                ["spreadsheet", "outside", "later", "no_p", "empty"]
                if fault == "previous"
                else [None, None, "valid", "pq"]
            )
        ),
        "broken": draw(st.sampled_from(["no_account_id", "ragged", "bytes", "header_only"])),
    }


def write_list(case: dict, folder: Path) -> Path:
    frame = pd.DataFrame({"account_id": pd.Series(case["ids"], dtype=object)})
    if case["extra"]:
        frame.insert(0, "note", [f"Köln {i}" for i in range(len(frame))])
    fmt = case["list_format"]
    if fmt == "parquet":
        path = folder / "list.parquet"
        frame.to_parquet(path, index=False)
        return path
    path = folder / "list.csv"
    if fmt == "broken":
        broken = {
            "no_account_id": "id,name\n1,a\n",
            "ragged": "account_id,x\nA,1\nB,2,3,4\n",
            "bytes": "\x00\x01\x02account_id\n\xff\n",
            "header_only": "account_id\n",
        }[case["broken"]]
        path.write_bytes(broken.encode("latin-1"))
        return path
    sep = {"csv;": ";", "csv\t": "\t"}.get(fmt, ",")
    encoding = {"latin-1": "latin-1", "bom": "utf-8-sig"}.get(fmt, "utf-8")
    frame.to_csv(path, sep=sep, index=False, encoding=encoding)
    return path


def write_previous(kind: str, earlier: pd.DataFrame, folder: Path, end: pd.Timestamp) -> Path:
    frame = earlier.head(20)[["account_id", "p_churn"]].assign(
        as_of=f"{end - pd.Timedelta(days=400):%Y-%m-%d}", status="scored"
    )
    path = folder / ("previous.parquet" if kind == "pq" else "previous.csv")
    if kind == "spreadsheet":
        frame.assign(p_churn=frame["p_churn"].map(lambda v: f"{v:.4f}".replace(".", ","))).to_csv(
            path, sep=";", index=False
        )
    elif kind == "outside":
        frame.assign(p_churn=frame["p_churn"] * 100).to_csv(path, index=False)
    elif kind == "later":
        frame.assign(as_of="2099-01-01").to_csv(path, index=False)
    elif kind == "no_p":
        frame.drop(columns="p_churn").to_csv(path, index=False)
    elif kind == "empty":
        path.write_text("")
    elif kind == "pq":
        frame.to_parquet(path, index=False)
    else:
        frame.to_csv(path, index=False)
    return path


def expected_ids(case: dict) -> list[str | None]:
    """The ids as the score file gives them back: trimmed, blank as missing, a formula-like
    text neutralised for spreadsheets."""
    ids = [None if v is None or not v.strip() else v.strip() for v in case["ids"]]
    written = neutralise(pd.DataFrame({"account_id": pd.Series(ids, dtype=object)}))
    return [None if pd.isna(v) else v for v in written["account_id"]]


def check_case(case: dict, root: Path, earlier: pd.DataFrame, end: pd.Timestamp) -> str:
    with tempfile.TemporaryDirectory(dir=root) as tmp:
        folder = Path(tmp)
        out = folder / "out" / "scores.csv"
        args = ["score", "--data", str(root / "clean"), "--out", str(out)]
        if case["all_active"]:
            args.append("--all-active")
        else:
            args += ["--accounts", str(write_list(case, folder))]
        if case["as_of"] is not None:
            args += ["--as-of", case["as_of"]]
        if case["previous"] is not None:
            args += ["--previous", str(write_previous(case["previous"], earlier, folder, end))]
        code, stdout, stderr = run_cli(*args)
        assert "Traceback" not in stdout + stderr, stderr
        assert code in (0, 2), (code, stderr)
        if code == 2:
            assert stderr.strip().splitlines()[-1].startswith("error: "), stderr
            assert not out.exists() and not out.with_name("scores.meta.json").exists()
            message = stderr.strip().splitlines()[-1].removeprefix("error: ")
            return "exit 2: " + re.sub(r"\S*/\S*", "<file>", message)[:48]
        frame = pd.read_csv(out, dtype={"account_id": str}, keep_default_na=False, na_values=[""])
        assert set(frame["status"]) <= STATUSES
        scored = frame["status"].eq("scored")
        assert frame.loc[scored, "p_churn"].between(0, 1).all()
        assert frame.loc[~scored, "p_churn"].isna().all()
        if not case["all_active"]:
            got = [None if pd.isna(v) else v for v in frame["account_id"]]
            assert got == expected_ids(case)
            assert frame["status"].eq("no_account_id").tolist() == [i is None for i in got]
        return "exit 0, all active" if case["all_active"] else "exit 0, every row back"


@pytest.fixture
def memoized_features(monkeypatch):
    """Feature frames computed once per (data, as-of), reused by every case."""
    real, memo = pipeline.scoring.features_at, {}

    def features_at(validated, as_of, cfg, label, *args, **kwargs):
        key = (str(validated.data_dir), as_of, repr(cfg), repr(label))
        if key not in memo:
            memo[key] = real(validated, as_of, cfg, label, *args, **kwargs)
        return memo[key].copy()

    monkeypatch.setattr(pipeline.scoring, "features_at", features_at)


def test_fuzz_score_never_crashes(project, everyone, pools, monkeypatch, memoized_features):  # noqa: F811
    monkeypatch.setenv("DVC_ROOT", str(project))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    OUTCOMES.clear()

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=SEED is None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
    @given(case=cases(pools))
    def fuzz(case: dict) -> None:
        OUTCOMES[check_case(case, project, everyone, pools["end"])] += 1

    (seed(int(SEED))(fuzz) if SEED is not None else fuzz)()
    figures = dict(OUTCOMES, cases=sum(OUTCOMES.values()))
    print("score fuzz outcomes:", json.dumps(figures, sort_keys=True))
    if os.environ.get("SCORE_FUZZ_REPORT"):
        Path(os.environ["SCORE_FUZZ_REPORT"]).write_text(json.dumps(figures, indent=2))
    assert figures["cases"] >= EXAMPLES * 0.9
    refused = sum(n for k, n in OUTCOMES.items() if k.startswith("exit 2"))
    assert refused and OUTCOMES["exit 0, every row back"]  # both outcomes happen
    assert np.isfinite(figures["cases"])
