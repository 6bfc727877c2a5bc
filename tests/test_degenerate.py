"""Degenerate input breaks no feature on any engine (a property test), nor `churn explain`.

Real purchase logs are thin: CDNOW (tests/data/cdnow) has accounts and orders only, 80 orders
with an amount of 0 and many accounts with a single order. Hypothesis builds small worlds of
such shapes: orders only (accounts and orders tables), zero and repeated equal amounts,
one-order accounts, accounts without orders, optional columns present but all null (quantity,
delivered_date, minutes, resolved_at, contact_id, ...), events on the same day, zero-length
resolutions and links, a first order the day before the cutoff; written as CSV or Parquet and
checked by `churn validate`'s code. Features at one cutoff and a training frame of three
cutoffs are then computed by every DuckDB engine (join, sliding, window): no exception, the
engines agree (values within 1e-9 relative, nulls in the same places), no value is infinite.

The default profile checks the same DEFAULT_EXAMPLES worlds on every run (derandomized, for
CI). The long profile draws fresh worlds each run (DEGENERATE_EXAMPLES of them, default 100,
about 20 minutes here):

    .venv/bin/python -m pytest tests/test_degenerate.py -m long -q

Spark runs one fixed degenerate world (`fixed_world`) in tests/test_spark.py.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import lightgbm as lgb
import mlflow.pyfunc
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from features import CATALOG, FeatureConfig
from features.build import KEYS
from models.baselines import LogisticBaseline
from models.churn_model import ChurnModel
from pipeline.checking import check
from pipeline.contract import INTERACTION_TYPES, LINK_TYPES
from pipeline.engine import EngineSpec, features_at
from pipeline.frame import training_frame
from pipeline.labels import LABEL, LabelSpec
from pipeline.paths import PACKAGE_ROOT
from pipeline.store import load
from tests.conftest import write_world
from tests.test_badinput_score import trained_on
from tests.test_badinput_validate import run_cli
from tests.test_score_output import ALL_HIGH, params_file

BASE = pd.Timestamp("2024-01-01")
CUTOFF_DAY = 100
LAST_DAY = 110  # events run from day 0 to this day: some fall on or after the cutoff
ACCOUNTS = list("abcdefgh")
CFG = FeatureConfig(recent_days=30, long_days=60)  # windows short enough to start and end in
LABELS = LabelSpec(horizon_days=30)
ENGINES = ("join", "sliding", "window")
RTOL = 1e-9
DEFAULT_EXAMPLES = 2
LONG_EXAMPLES = int(os.environ.get("DEGENERATE_EXAMPLES", "100"))


def day(n: int, hours: int = 0) -> pd.Timestamp:
    return BASE + pd.Timedelta(days=n, hours=hours)


CUTOFF = day(CUTOFF_DAY)
SCHEDULE = [day(CUTOFF_DAY - 28), day(CUTOFF_DAY - 14), CUTOFF]
# An optional column is left out, present with every cell empty, or present with values.
SHAPES = st.sampled_from(["absent", "null", "values"])
AMOUNTS = st.sampled_from([0.0, 0.0, 5.0, 5.0, 0.01, 1234.5])  # zeros and repeated equal ones


def _column(frame: pd.DataFrame, name: str, shape: str, values: list) -> None:
    """Add column `name` to `frame` as `shape` says (left out, all empty, or `values`)."""
    if shape == "null":
        empty = pd.NaT if isinstance(values[0] if values else None, pd.Timestamp) else None
        frame[name] = pd.Series([empty] * len(frame), index=frame.index, dtype=object)
    elif shape == "values":
        frame[name] = values


@st.composite
def worlds(draw) -> tuple[dict[str, pd.DataFrame], str]:
    """(tables, file format) of a small degenerate world: which optional columns exist (and
    whether all empty) is drawn once a world, the rows account by account."""
    orders = []
    for account in ACCOUNTS[:-1]:  # the last: no orders, or one the day before the cutoff
        # each account orders on a few days only: several orders fall on one day
        days = st.sampled_from(draw(st.lists(st.integers(0, LAST_DAY), min_size=1, max_size=3)))
        for _ in range(draw(st.integers(0, 3))):
            orders.append((account, draw(days), draw(AMOUNTS)))
    if draw(st.booleans()):
        orders.append((ACCOUNTS[-1], CUTOFF_DAY - 1, draw(AMOUNTS)))
    if not orders:  # the contract needs an order
        orders.append((ACCOUNTS[0], CUTOFF_DAY - 1, draw(AMOUNTS)))
    o = pd.DataFrame(
        {
            "order_id": [f"o{i}" for i in range(len(orders))],
            "account_id": [a for a, _, _ in orders],
            "order_date": [day(d) for _, d, _ in orders],
            "amount": [amount for *_, amount in orders],
        }
    )
    days = st.sampled_from(draw(st.lists(st.integers(0, LAST_DAY), min_size=1, max_size=6)))
    n = len(o)
    _column(o, "quantity", draw(SHAPES), [draw(st.sampled_from([0.0, 1.0, 1.0])) for _ in o.index])
    _column(o, "product_line", draw(SHAPES), [draw(st.sampled_from("xy")) for _ in range(n)])
    _column(o, "channel", draw(SHAPES), [draw(st.sampled_from(["edi", "phone"])) for _ in range(n)])
    promised = draw(SHAPES)
    if promised != "absent":  # promised on the order day or later; delivered maybe never
        due = [(d, d + draw(st.integers(0, 20))) for _, d, _ in orders]
        _column(o, "promised_date", "values", [day(p) for _, p in due])
        # a day early, on time or late, never before the order (the contract refuses that)
        late = [day(max(d, p + draw(st.integers(-1, 15)))) for d, p in due]
        _column(o, "delivered_date", "null" if promised == "null" else "values", late)
    accounts = pd.DataFrame({"account_id": ACCOUNTS})
    began = {a: min((d for x, d, _ in orders if x == a), default=None) for a in ACCOUNTS}
    since = draw(SHAPES)
    if since == "values":
        started = [draw(st.integers(0, LAST_DAY)) for _ in ACCOUNTS]
        began = dict(zip(ACCOUNTS, started, strict=True))
    _column(accounts, "customer_since", since, [day(began[a] or 0) for a in ACCOUNTS])
    wallets = [draw(st.sampled_from([0.0, 0.0, 100.0])) for _ in ACCOUNTS]
    _column(accounts, "annual_wallet", draw(SHAPES), wallets)
    tables = {"accounts": accounts, "orders": o}
    if draw(st.booleans()):  # else orders only
        tables["interactions"] = draw(interactions(days))
    if draw(st.booleans()):
        tables["links"] = draw(links(days))
    churned = [a for a in ACCOUNTS if began[a] is not None and draw(st.booleans())]
    if churned and draw(st.booleans()):
        when = st.sampled_from([CUTOFF_DAY - 20, LAST_DAY])
        at = [day(max(began[a], draw(when))) for a in churned]
        tables["churn"] = pd.DataFrame({"account_id": churned, "churned_at": at})
    return tables, draw(st.sampled_from(["csv", "parquet"]))


@st.composite
def interactions(draw, days) -> pd.DataFrame:
    rows = []
    for i in range(draw(st.integers(1, 10))):
        at = draw(days)
        rows.append(
            {
                "interaction_id": f"i{i}",
                "account_id": draw(st.sampled_from(ACCOUNTS)),
                "occurred_at": day(at, draw(st.sampled_from([0, 0, 13]))),
                "type": draw(st.sampled_from(["complaint", "repair", *INTERACTION_TYPES])),
            }
        )
    t = pd.DataFrame(rows)
    n = len(t)
    _column(t, "initiated_by", draw(SHAPES), draw(st.lists(CUSTOMER, min_size=n, max_size=n)))
    departments = st.sampled_from(["engineering", "sales", "service"])
    _column(t, "department", draw(SHAPES), draw(st.lists(departments, min_size=n, max_size=n)))
    _column(t, "minutes", draw(SHAPES), [draw(st.sampled_from([0.0, 30.0])) for _ in range(n)])
    contacts = [f"{a}-{draw(st.integers(1, 2))}" for a in t["account_id"]]
    _column(t, "contact_id", draw(SHAPES), contacts)
    # resolved at the very moment of the interaction, or days later
    resolved = [ts + pd.Timedelta(days=draw(st.sampled_from([0, 0, 3]))) for ts in t.occurred_at]
    _column(t, "resolved_at", draw(SHAPES), resolved)
    return t


CUSTOMER = st.sampled_from(["customer", "supplier"])


@st.composite
def links(draw, days) -> pd.DataFrame:
    rows = []
    for _ in range(draw(st.integers(1, 4))):
        start = draw(days)
        rows.append(
            {
                "account_id": draw(st.sampled_from(ACCOUNTS)),
                "link_type": draw(st.sampled_from(LINK_TYPES)),
                "start_date": day(start),
                "end": day(start + draw(st.sampled_from([0, 5]))),  # zero-length links too
            }
        )
    t = pd.DataFrame(rows)
    ends = t.pop("end").tolist()
    _column(t, "end_date", draw(SHAPES), ends)
    return t.drop_duplicates(ignore_index=True)  # a row exported twice is a validation problem


def fixed_world() -> dict[str, pd.DataFrame]:
    """One world of every degenerate shape at once, orders only (as CDNOW): a: two orders of
    0 on the same day; b: one order; c: equal amounts; d: a first order the day before the
    cutoff; e: no order at all; all-empty quantity and delivered_date."""
    orders = [
        ("a", 40, 0.0),
        ("a", 40, 0.0),
        ("b", 95, 7.5),
        ("c", 20, 5.0),
        ("c", 60, 5.0),
        ("c", 80, 5.0),
        ("c", 80, 0.0),
        ("d", CUTOFF_DAY - 1, 12.0),
    ]
    o = pd.DataFrame(
        {
            "order_id": [f"o{i}" for i in range(len(orders))],
            "account_id": [a for a, _, _ in orders],
            "order_date": [day(d) for _, d, _ in orders],
            "amount": [amount for *_, amount in orders],
        }
    )
    _column(o, "quantity", "null", [])
    o["promised_date"] = o["order_date"]
    _column(o, "delivered_date", "null", [])
    return {"accounts": pd.DataFrame({"account_id": ["a", "b", "c", "d", "e"]}), "orders": o}


def spark_world() -> dict[str, pd.DataFrame]:
    """The fixed world with interactions whose optional columns are all empty (minutes,
    resolved_at, contact_id) and links of zero length: the world Spark runs
    (tests/test_spark.py)."""
    world = fixed_world()
    accounts = ["a", "a", "b", "c", "d"]
    t = pd.DataFrame(
        {
            "interaction_id": [f"i{i}" for i in range(len(accounts))],
            "account_id": accounts,
            "occurred_at": [day(d) for d in (40, 40, 95, 80, CUTOFF_DAY - 1)],
            "type": ["complaint", "complaint", "repair", "price_negotiation", "dispute"],
            "initiated_by": ["customer", "customer", "supplier", "supplier", "customer"],
            "department": ["service", "service", "engineering", "sales", "sales"],
        }
    )
    for column in ("minutes", "contact_id", "resolved_at"):
        _column(t, column, "null", [])
    world["interactions"] = t
    world["links"] = pd.DataFrame(
        {
            "account_id": ["a", "c"],
            "link_type": ["edi", "service_contract"],
            "start_date": [day(40), day(80)],
            "end_date": [day(40), day(80)],
        }
    )
    return world


def validated(tables: dict[str, pd.DataFrame], fmt: str, folder: Path):
    """The world written as `fmt` files into `folder` and checked as `churn validate` would."""
    result = check(write_world(tables, folder, fmt))
    assert result.ok, result.summary()
    return result


def assert_agree(frames: dict[str, pd.DataFrame]) -> None:
    """Every frame like the first: keys, columns, types, nulls; values within RTOL; no inf."""
    (first, a), *others = frames.items()
    for name, b in others:
        assert list(b.columns) == list(a.columns), (first, name)
        assert dict(b.dtypes.astype(str)) == dict(a.dtypes.astype(str)), (first, name)
        for key in KEYS:
            assert b[key].tolist() == a[key].tolist(), (first, name, key)
        for column in a.columns.drop(KEYS):
            x, y = a[column].to_numpy("float64"), b[column].to_numpy("float64")
            where = f"{column}: {first} {x.tolist()} vs {name} {y.tolist()}"
            assert np.array_equal(np.isnan(x), np.isnan(y)), where
            known = ~np.isnan(x)
            np.testing.assert_allclose(y[known], x[known], rtol=RTOL, atol=0, err_msg=where)
    for column in a.columns.drop(KEYS):
        assert not np.isinf(a[column].to_numpy("float64")).any(), f"{column} is infinite"


def features_by_engine(result) -> tuple[dict[str, pd.DataFrame], dict[str, pd.DataFrame]]:
    """(features at CUTOFF, training frame over SCHEDULE), by engine."""
    at, frames = {}, {}
    for engine in ENGINES:
        spec = EngineSpec(engine=engine)
        at[engine] = features_at(result, CUTOFF, CFG, LABELS, spec=spec)
        frames[engine] = training_frame(result, SCHEDULE, CFG, LABELS, spec=spec)[0]
    return at, frames


def check_world(world: tuple[dict[str, pd.DataFrame], str]) -> None:
    tables, fmt = world
    with tempfile.TemporaryDirectory() as tmp:
        at, frames = features_by_engine(validated(tables, fmt, Path(tmp) / "raw"))
    assert_agree(at)
    assert_agree(frames)
    # the training frame's last cutoff holds what the features at that cutoff hold
    last = frames["join"][frames["join"].cutoff == CUTOFF].drop(columns=LABEL)
    assert_agree({"features_at": at["join"], "training_frame": last.reset_index(drop=True)})


FIXED = (fixed_world(), "csv")
PROFILE = dict(
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@settings(max_examples=DEFAULT_EXAMPLES, derandomize=True, **PROFILE)
@given(worlds())
@example(FIXED)
def test_degenerate_worlds_break_no_engine(world):
    check_world(world)


@pytest.mark.long
def test_degenerate_worlds_long_profile(request):
    """The long profile: fresh random worlds each run; only with `-m long`."""
    if "long" not in (request.config.getoption("markexpr") or ""):
        pytest.skip("the long profile runs with -m long")
    settings(max_examples=LONG_EXAMPLES, derandomize=False, **PROFILE)(
        given(worlds())(check_world)
    )()


def test_the_fixed_world_keeps_zero_and_unknown_apart(tmp_path):
    """By hand, on the fixed world: ln of a zero amount is no value, not an error; an account
    without orders has 0 orders and an unknown mean order value."""
    result = validated(fixed_world(), "csv", tmp_path / "raw")
    f = features_at(result, CUTOFF, CFG, LABELS, spec=EngineSpec(engine="sliding"))
    f = f.set_index("account_id")
    assert list(f.index) == ["a", "b", "c", "d"]  # e never ordered: no relationship yet
    # a: only zero amounts: no ln, so no shift; a value of 0, known
    assert pd.isna(f.loc["a", "order_log_value_shift"])
    assert f.loc["a", "order_value_long"] == 0 and f.loc["a", "avg_order_value_long"] == 0
    # c: ln(5) before the recent window and ln(5) within it (the 0 on day 80 is skipped)
    assert f.loc["c", "order_log_value_shift"] == 0
    # d: first and only order the day before: one day of history, no rate before it
    assert f.loc["d", "days_since_first_order"] == 1 and f.loc["d", "orders_recent"] == 1
    assert pd.isna(f.loc["d", "order_rate_ratio"])
    assert pd.isna(f.loc["d", "order_value_rate_ratio"])


# --- `churn explain` and `churn score` when accounts have fewer than three reasons -----------


def blended_model(path: Path, features: list[str]) -> Path:
    """A small LightGBM blended with a logistic regression (as `churn train` blends them),
    saved as the pipeline saves a model."""
    rng = np.random.default_rng(0)
    x = pd.DataFrame(rng.normal(size=(300, len(features))), columns=features)
    y = (x.iloc[:, 0] + rng.normal(size=len(x)) > 0).astype(int).to_numpy()
    estimator = lgb.LGBMClassifier(
        n_estimators=20, num_leaves=4, min_child_samples=5, random_state=0, verbose=-1
    ).fit(x, y)
    linear = LogisticBaseline(features).fit(x, y)
    model = ChurnModel(estimator, features, {}, {"mode": "auto"}, linear=linear, blend_weight=0.5)
    mlflow.pyfunc.save_model(str(path), python_model=model, pip_requirements=[])
    return path


GROUPS_PRESENT = ("promises", "engagement")  # of the fixed world's features


@pytest.fixture(scope="module")
def orders_only(tmp_path_factory) -> Path:
    """A project on the fixed world (accounts and orders only: its features fall in two
    groups, so an account has two reasons at most), with a blended model in data/model."""
    root = tmp_path_factory.mktemp("orders_only")
    shutil.copy(PACKAGE_ROOT / "params.yaml", root / "params.yaml")
    raw = root / "raw"
    raw.mkdir()
    for name, frame in fixed_world().items():
        frame.to_csv(raw / f"{name}.csv", index=False)
    code, _, err = run_cli("validate", "--data", str(raw), "--out", str(root / "clean"))
    assert code == 0, err
    feats = features_at(load(root / "clean"), CUTOFF, FeatureConfig(), LabelSpec())
    features = [c for c in feats if c not in KEYS]
    assert {f.group for f in CATALOG if f.name in features} == set(GROUPS_PRESENT)
    blended_model(root / "data" / "model" / "mlflow", features)
    return trained_on(root)


@pytest.fixture
def project(orders_only, monkeypatch) -> Path:
    monkeypatch.setenv("DVC_ROOT", str(orders_only))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return orders_only


def test_explain_an_account_with_fewer_than_three_reasons(project, tmp_path):
    chart = tmp_path / "c.png"
    code, out, err = run_cli(
        "explain", "c", "--data", str(project / "clean"), "--as-of", str(CUTOFF.date()),
        "--cutoffs", "2", "--every", "14", "--out", str(chart),
    )  # fmt: skip
    assert code == 0, out + err
    assert "Traceback" not in out + err
    rows = [line for line in out.splitlines() if line.startswith("2024-")]
    assert [r.split()[0] for r in rows] == ["2024-03-27", "2024-04-10"]
    reasons = [line for line in out.splitlines() if line.startswith("  ")]
    assert len(reasons) <= 2  # two groups at most: no empty third reason printed
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("listed", [None, "e\nzz\n"])
def test_score_with_fewer_than_three_reasons_or_none(project, tmp_path, listed):
    """Every active account in a tier with reasons (two at most each); or a list of accounts
    none of which is scored (e has not ordered yet, zz is unknown): reasons for no account."""
    params = params_file(tmp_path, **ALL_HIGH)
    out = tmp_path / "scores.csv"
    which = ["--all-active"]
    if listed is not None:
        (tmp_path / "list.csv").write_text("account_id\n" + listed)
        which = ["--accounts", str(tmp_path / "list.csv")]
    code, stdout, err = run_cli(
        "score", "--data", str(project / "clean"), *which, "--as-of", str(CUTOFF.date()),
        "--out", str(out), "--params", str(params),
    )  # fmt: skip
    assert code == 0, stdout + err
    scores = pd.read_csv(out)
    assert scores["reason_3"].isna().all()
    explained = scores["reason_groups"].notna()
    if listed is None:
        assert scores["account_id"].tolist() and scores["p_churn"].notna().all()
        assert explained.all() and scores["reason_1"].notna().all()
        named = scores["reason_groups"].str.split("; ").explode()
        assert set(named) <= set(GROUPS_PRESENT)
    else:
        assert scores["status"].tolist() == ["not_yet_customer", "unknown_account"]
        assert not explained.any() and scores["reason_1"].isna().all()
