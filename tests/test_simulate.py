"""Tests of the simulated world: determinism, schema, point-in-time sanity, truth, mechanisms."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import pipeline.simulator.write as write_module
from pipeline.simulate import SimConfig, simulate, simulate_with_latent, write
from pipeline.simulator.constants import COLLABORATIVE, TRANSACTIONAL

SMALL = SimConfig(n_accounts=600, weeks=104, seed=7, mc_samples=32)
MEETINGS = TRANSACTIONAL + COLLABORATIVE
DIRECT = ("ordering_terminal", "edi", "portal", "vmi")

COLUMNS = {
    "accounts": {
        "account_id": "str", "name": "str", "segment": "str", "region": "str",
        "size_band": "str", "customer_since": "datetime", "annual_wallet": "float",
    },
    "orders": {
        "order_id": "str", "account_id": "str", "order_date": "datetime", "amount": "float",
        "product_line": "str", "channel": "str", "quantity": "int",
        "promised_date": "datetime", "delivered_date": "datetime",
    },
    "interactions": {
        "interaction_id": "str", "account_id": "str", "occurred_at": "datetime", "type": "str",
        "initiated_by": "str", "department": "str", "minutes": "float", "contact_id": "str",
        "resolved_at": "datetime",
    },
    "links": {
        "account_id": "str", "link_type": "str", "start_date": "datetime", "end_date": "datetime",
    },
    "churn": {"account_id": "str", "churned_at": "datetime", "reason": "str"},
}  # fmt: skip
CHECKS = {
    "str": pd.api.types.is_string_dtype,
    "datetime": pd.api.types.is_datetime64_any_dtype,
    "float": pd.api.types.is_float_dtype,
    "int": pd.api.types.is_integer_dtype,
}


@pytest.fixture(scope="module")
def world() -> tuple[dict[str, pd.DataFrame], pd.DataFrame, pd.DataFrame]:
    """One small simulated world, shared by the tests of this module."""
    return simulate_with_latent(SMALL)


@pytest.fixture(scope="module")
def labelled(world) -> pd.DataFrame:
    """Truth rows with the realised label (churn in the window) from the churn table."""
    tables, truth, _ = world
    churned = truth["account_id"].map(tables["churn"].set_index("account_id")["churned_at"])
    lo = truth["cutoff"] + pd.Timedelta(days=SMALL.lead_days)
    hi = lo + pd.Timedelta(days=SMALL.horizon_days)
    return truth.assign(y=((churned >= lo) & (churned < hi)).to_numpy())


def rank_auc(y: np.ndarray, score: np.ndarray) -> float:
    """Area under the ROC curve from ranks (ties get the average rank)."""
    s = np.sort(score)
    uniq, first, counts = np.unique(s, return_index=True, return_counts=True)
    ranks = (first + (counts + 1) / 2.0)[np.searchsorted(uniq, score)]  # tie groups: mean rank
    n1 = y.sum()
    n0 = len(y) - n1
    return float((ranks[y].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def test_rank_auc_helper() -> None:
    """The AUC helper agrees with hand-computed cases, ties included."""
    assert rank_auc(np.array([False, True]), np.array([0.1, 0.9])) == 1.0
    assert rank_auc(np.array([True, False]), np.array([0.1, 0.9])) == 0.0
    assert rank_auc(np.array([True, False, True, False]), np.array([0.5, 0.5, 0.5, 0.5])) == 0.5


def test_same_config_same_world(world) -> None:
    """A seed fixes the world exactly; another seed gives another world."""
    tables, truth, _ = world
    again, truth_again = simulate(SMALL)
    assert again.keys() == tables.keys()
    for name, frame in tables.items():
        pd.testing.assert_frame_equal(again[name], frame)
    pd.testing.assert_frame_equal(truth_again, truth)
    other, _ = simulate(SimConfig(n_accounts=600, weeks=104, seed=8, mc_samples=32))
    assert not other["orders"].equals(tables["orders"])
    assert not other["accounts"].equals(tables["accounts"])


def test_world_does_not_depend_on_mc_samples(world) -> None:
    """The truth has its own random stream: the realised tables ignore mc_samples (0: none)."""
    tables, _, _ = world
    cfg = SimConfig(n_accounts=600, weeks=104, seed=7, mc_samples=4, truth_every_days=28)
    other, truth = simulate(cfg)
    for name, frame in tables.items():
        pd.testing.assert_frame_equal(other[name], frame)
    assert truth["cutoff"].nunique() == (104 * 7 - 90) // 28 + 1
    none, no_truth = simulate(SimConfig(n_accounts=600, weeks=104, seed=7, mc_samples=0))
    for name, frame in tables.items():  # mc_samples=0 (benchmarks): no truth, same world
        pd.testing.assert_frame_equal(none[name], frame)
    assert list(no_truth.columns) == ["account_id", "cutoff", "p_churn"] and len(no_truth) == 0


def test_schema(world) -> None:
    """Every table has exactly the contract's columns with sensible dtypes."""
    tables, truth, _ = world
    assert set(tables) == set(COLUMNS)
    for name, cols in COLUMNS.items():
        frame = tables[name]
        assert list(frame.columns) == list(cols), name
        for col, kind in cols.items():
            assert CHECKS[kind](frame[col]), f"{name}.{col} is {frame[col].dtype}, want {kind}"
        assert frame.index.equals(pd.RangeIndex(len(frame))), name
        assert len(frame) > 0, name
    assert list(truth.columns) == ["account_id", "cutoff", "p_churn"]
    assert CHECKS["datetime"](truth["cutoff"]) and CHECKS["float"](truth["p_churn"])


def test_vocabularies(world) -> None:
    """Categorical columns use the contract's vocabularies."""
    tables, _, _ = world
    it, orders = tables["interactions"], tables["orders"]
    assert set(it["type"]) <= {
        "complaint", "service_request", "repair", "installation", "price_negotiation",
        "contract_negotiation", "dispute", "planning_meeting", "forecast_shared",
        "design_collaboration", "business_review", "site_visit", "rfq", "inspection", "other",
    }  # fmt: skip
    assert set(it["initiated_by"]) == {"customer", "supplier"}
    assert set(it["department"]) <= {
        "sales", "service", "engineering", "manufacturing", "quality", "management", "finance"
    }  # fmt: skip
    assert set(orders["channel"]) <= set(DIRECT) | {"email", "phone", "sales_rep"}
    assert set(tables["links"]["link_type"]) <= set(DIRECT) | {
        "service_contract", "maintenance_contract", "training", "co_design", "other"
    }  # fmt: skip
    assert set(tables["accounts"]["size_band"]) == {"small", "medium", "large"}
    assert tables["accounts"]["account_id"].str.fullmatch(r"A\d{6}").all()
    assert orders["order_id"].str.fullmatch(r"O\d{7}").all()
    assert it["interaction_id"].str.fullmatch(r"I\d{7}").all()
    assert (it["contact_id"].str.split("-C").str[0] == it["account_id"]).all()


def test_ids_and_references(world) -> None:
    """Ids are unique and every account_id refers to an account."""
    tables, truth, _ = world
    accounts = set(tables["accounts"]["account_id"])
    assert tables["accounts"]["account_id"].is_unique
    assert tables["orders"]["order_id"].is_unique
    assert tables["interactions"]["interaction_id"].is_unique
    assert tables["churn"]["account_id"].is_unique
    for frame in [*tables.values(), truth]:
        assert set(frame["account_id"]) <= accounts


def test_tables_sorted_by_date_then_id(world) -> None:
    """Each table is sorted by its date, then its id."""
    tables, truth, _ = world
    keys = {
        "accounts": ["customer_since", "account_id"],
        "orders": ["order_date", "order_id"],
        "interactions": ["occurred_at", "interaction_id"],
        "links": ["start_date", "account_id", "link_type"],
        "churn": ["churned_at", "account_id"],
    }
    for name, by in keys.items():
        frame = tables[name]
        pd.testing.assert_frame_equal(frame.sort_values(by, ignore_index=True), frame)
    pd.testing.assert_frame_equal(
        truth.sort_values(["cutoff", "account_id"], ignore_index=True), truth
    )


def test_events_within_relationship_and_period(world) -> None:
    """No event before customer_since, on/after churned_at, or on/after the end."""
    tables, _, _ = world
    start = pd.Timestamp(SMALL.start)
    end = start + pd.Timedelta(days=7 * SMALL.weeks)
    acc = tables["accounts"].set_index("account_id")
    since = acc["customer_since"]
    churned = tables["churn"].set_index("account_id")["churned_at"]
    assert since.max() < end
    assert since.min() >= start - pd.Timedelta(days=8 * 365 + 1)
    assert since.min() < start - pd.Timedelta(days=5 * 365)
    assert 0.2 < (since >= start).mean() < 0.35  # new customers arrive over the period
    assert ((churned >= start) & (churned < end)).all()
    assert (churned > since.reindex(churned.index)).all()
    events = [
        ("orders", "order_date"),
        ("orders", "delivered_date"),
        ("interactions", "occurred_at"),
        ("interactions", "resolved_at"),
        ("links", "start_date"),
    ]
    for name, col in events:
        frame = tables[name]
        when = frame[col]
        s = frame["account_id"].map(since)
        c = frame["account_id"].map(churned)
        present = when.notna()
        assert present.any(), (name, col)
        assert (when[present] >= s[present]).all(), (name, col)
        assert ((when < c) | c.isna())[present].all(), (name, col)
        assert (when[present] < end).all(), (name, col)
        if col != "start_date":
            assert (when[present] >= start).all(), (name, col)


def test_order_and_link_dates(world) -> None:
    """Promises and deliveries follow their orders; links end after they start, at churn latest."""
    tables, _, _ = world
    o = tables["orders"]
    lead = (o["promised_date"] - o["order_date"]).dt.days
    assert lead.between(7, 35).all()
    delivered = o["delivered_date"].notna()
    assert (o.loc[delivered, "delivered_date"] > o.loc[delivered, "order_date"]).all()
    lateness = (o["delivered_date"] - o["promised_date"]).dt.days[delivered]
    assert lateness.max() <= 40
    assert 0.03 < (lateness > 0).mean() < 0.25
    assert (o["amount"] > 0).all() and (o["amount"] == o["amount"].round(2)).all()
    assert (o["quantity"] >= 1).all()

    links = tables["links"]
    ended = links["end_date"].notna()
    assert (links.loc[ended, "end_date"] >= links.loc[ended, "start_date"]).all()
    assert not links.duplicated(["account_id", "link_type", "start_date"]).any()
    churned = tables["churn"].set_index("account_id")["churned_at"]
    c = links["account_id"].map(churned)
    assert (links.loc[c.notna(), "end_date"] <= c[c.notna()]).all()  # links end at churn
    assert links.loc[c.notna(), "end_date"].notna().all()
    assert (links["start_date"] < pd.Timestamp(SMALL.start)).any()  # old accounts' links


def test_links_of_a_type_do_not_overlap(world) -> None:
    """An account holds at most one link of each type at a time."""
    tables, _, _ = world
    links = tables["links"].sort_values(["account_id", "link_type", "start_date"])
    nxt = links.groupby(["account_id", "link_type"])["start_date"].shift(-1)
    has_next = nxt.notna()
    assert (links.loc[has_next, "end_date"] <= nxt[has_next]).all()


def test_direct_channels_need_an_active_link(world) -> None:
    """Orders via ordering_terminal, edi, portal or vmi only while that link is active."""
    tables, _, _ = world
    o = tables["orders"]
    direct = o[o["channel"].isin(DIRECT)].reset_index()
    assert len(direct) > 0
    m = direct.merge(
        tables["links"],
        left_on=["account_id", "channel"],
        right_on=["account_id", "link_type"],
        how="left",
    )
    active = (m["start_date"] <= m["order_date"]) & (
        m["end_date"].isna() | (m["end_date"] >= m["order_date"])
    )
    covered = active.groupby(m["index"]).any()
    assert covered.all(), direct.loc[~covered.to_numpy()].head()


def test_truth_rows_are_the_eligible_accounts(world) -> None:
    """Truth has one row per eligible account and cutoff, and nothing else."""
    tables, truth, _ = world
    start = pd.Timestamp(SMALL.start)
    end = start + pd.Timedelta(days=7 * SMALL.weeks)
    step = pd.Timedelta(days=SMALL.truth_every_days)
    window = pd.Timedelta(days=SMALL.lead_days + SMALL.horizon_days)
    cutoffs = [start + k * step for k in range(1000) if start + k * step + window <= end]
    assert sorted(truth["cutoff"].unique()) == cutoffs
    assert truth["p_churn"].between(0, 1).all()
    assert not truth.duplicated(["account_id", "cutoff"]).any()
    acc = tables["accounts"][["account_id", "customer_since"]]
    acc = acc.merge(tables["churn"], on="account_id", how="left")
    expected = [
        (a, c)
        for c in cutoffs
        for a in acc.loc[
            (acc["customer_since"] < c) & (acc["churned_at"].isna() | (acc["churned_at"] >= c)),
            "account_id",
        ]
    ]
    got = list(zip(truth["account_id"], truth["cutoff"], strict=True))
    assert sorted(got) == sorted(expected)


def test_truth_is_calibrated_and_informative(labelled) -> None:
    """Mean truth matches the realised churn rate; truth ranks the realised churners."""
    rate = labelled["y"].mean()
    mean_p = labelled["p_churn"].mean()
    # about 200 churn events in this world: the realised rate is known to roughly +-8%
    assert 0.04 < rate < 0.10
    assert abs(mean_p - rate) < 0.25 * rate, (mean_p, rate)
    auc = rank_auc(labelled["y"].to_numpy(), labelled["p_churn"].to_numpy())
    assert 0.75 < auc < 0.95, auc
    # and per cutoff, the truth moves with the realised rate (no drift between them)
    by_cut = labelled.groupby("cutoff")[["y", "p_churn"]].mean()
    half = len(by_cut) // 2
    for part in (by_cut.iloc[:half], by_cut.iloc[half:]):
        assert abs(part["p_churn"].mean() - part["y"].mean()) < 0.35 * part["y"].mean()


def test_truth_with_lead_and_short_period() -> None:
    """A lead shifts the window; a period shorter than the window has no truth rows."""
    cfg = SimConfig(n_accounts=150, weeks=30, seed=3, mc_samples=16, lead_days=10, horizon_days=60)
    _, truth = simulate(cfg)
    end = pd.Timestamp(cfg.start) + pd.Timedelta(days=7 * cfg.weeks)
    assert (truth["cutoff"] + pd.Timedelta(days=70) <= end).all()
    assert truth["cutoff"].max() + pd.Timedelta(days=77) > end
    assert truth["p_churn"].between(0, 1).all() and len(truth) > 0
    _, none = simulate(SimConfig(n_accounts=50, weeks=10, seed=3, mc_samples=4))
    assert list(none.columns) == ["account_id", "cutoff", "p_churn"] and len(none) == 0


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_write_round_trip(tmp_path, fmt: str) -> None:
    """write() puts one file per table and the truth on disk, byte-identical for a seed."""
    cfg = SimConfig(n_accounts=120, weeks=30, seed=5, mc_samples=4)
    counts = write(cfg, tmp_path / "raw", tmp_path / "truth.parquet", fmt)
    files = sorted(p.name for p in (tmp_path / "raw").iterdir())
    assert files == sorted(f"{n}.{fmt}" for n in COLUMNS)
    for name in COLUMNS:
        path = tmp_path / "raw" / f"{name}.{fmt}"
        back = pd.read_csv(path) if fmt == "csv" else pd.read_parquet(path)
        assert list(back.columns) == list(COLUMNS[name]) and len(back) == counts[name]
    assert len(pd.read_parquet(tmp_path / "truth.parquet")) == counts["truth"] > 0
    write(cfg, tmp_path / "again", tmp_path / "truth2.parquet", fmt)
    for name in COLUMNS:
        first = (tmp_path / "raw" / f"{name}.{fmt}").read_bytes()
        assert first == (tmp_path / "again" / f"{name}.{fmt}").read_bytes(), name
    truth_bytes = (tmp_path / "truth.parquet").read_bytes()
    assert truth_bytes == (tmp_path / "truth2.parquet").read_bytes()


def test_chunked_write_matches_whole_tables(tmp_path, monkeypatch) -> None:
    """Large tables written in chunks give the same files as one piece (ids continue)."""
    cfg = SimConfig(n_accounts=120, weeks=30, seed=5, mc_samples=4)
    write(cfg, tmp_path / "whole", tmp_path / "t1.parquet", "csv")
    monkeypatch.setattr(write_module, "_WRITE_CHUNK", 700)
    write(cfg, tmp_path / "chunked", tmp_path / "t2.parquet", "csv")
    for name in COLUMNS:
        whole = (tmp_path / "whole" / f"{name}.csv").read_bytes()
        assert whole == (tmp_path / "chunked" / f"{name}.csv").read_bytes(), name
    assert len(pd.read_csv(tmp_path / "chunked" / "orders.csv")) > 2 * 700
    counts = write(cfg, tmp_path / "pq", tmp_path / "t3.parquet", "parquet")
    tables, truth = simulate(cfg)

    def read_back(path, like: pd.DataFrame) -> pd.DataFrame:
        """A Parquet file with its datetimes in the unit of like (Parquet stores ms)."""
        return pd.read_parquet(path).astype(like.dtypes.to_dict())

    for name, frame in tables.items():
        back = read_back(tmp_path / "pq" / f"{name}.parquet", frame)
        assert len(back) == counts[name] == len(frame)
        pd.testing.assert_frame_equal(back, frame)
    pd.testing.assert_frame_equal(read_back(tmp_path / "t3.parquet", truth), truth)
    with pytest.raises(ValueError, match="csv or parquet"):
        write(cfg, tmp_path / "x", tmp_path / "x.parquet", "xlsx")


def test_config_is_validated() -> None:
    """Settings the weekly clock cannot honour fail loudly."""
    with pytest.raises(ValueError, match="truth_every_days"):
        SimConfig(truth_every_days=10)
    with pytest.raises(ValueError):
        SimConfig(n_accounts=0)
    with pytest.raises(ValueError):
        SimConfig(start="not a date")
    with pytest.raises(ValueError, match="mc_samples"):
        SimConfig(mc_samples=-1)


def test_complaints_fall_silent_before_churn(world) -> None:
    """Churners complain less in their last 90 days than earlier in the relationship."""
    tables, _, _ = world
    start = pd.Timestamp(SMALL.start)
    churn = tables["churn"].merge(tables["accounts"], on="account_id")
    churn["first"] = churn["customer_since"].clip(lower=start)
    churn = churn[(churn["churned_at"] - churn["first"]).dt.days >= 180]
    assert len(churn) > 50
    it = tables["interactions"]
    comp = it[(it["type"] == "complaint") & (it["initiated_by"] == "customer")]
    comp = comp.merge(churn[["account_id", "churned_at", "first"]], on="account_id")
    last = comp["occurred_at"] >= comp["churned_at"] - pd.Timedelta(days=90)
    rate_last = last.sum() / (90 * len(churn))
    rate_before = (~last).sum() / ((churn["churned_at"] - churn["first"]).dt.days - 90).sum()
    assert rate_last < 0.8 * rate_before, (rate_last, rate_before)


def test_low_trust_spends_meetings_on_price_and_blame(world) -> None:
    """Low-trust accounts spend about half of meeting minutes on transactional topics."""
    tables, _, latent = world
    it = tables["interactions"]
    meet = it[it["type"].isin(MEETINGS)].merge(latent[["account_id", "trust"]], on="account_id")
    assert meet["minutes"].notna().all() and (meet["minutes"] > 0).all()
    trans = meet["type"].isin(TRANSACTIONAL)

    def share(mask: pd.Series) -> float:
        """Transactional share of the meeting minutes of the masked rows."""
        return meet.loc[mask & trans, "minutes"].sum() / meet.loc[mask, "minutes"].sum()

    low, high = share(meet["trust"] < 0.35), share(meet["trust"] > 0.65)
    assert 0.38 < low < 0.6 and 0.18 < high < 0.35 and low - high > 0.1, (low, high)
    assert it.loc[it["type"] == "forecast_shared", "minutes"].isna().all()
    assert it.loc[it["type"] == "rfq", "minutes"].isna().all()


def test_trust_shapes_information_sharing_and_inspection(world) -> None:
    """Trusted accounts share forecasts more, inspect and tender (rfq) less."""
    tables, _, latent = world
    it = tables["interactions"].merge(latent[["account_id", "trust"]], on="account_id")
    high = it["trust"] > 0.5
    counts = pd.crosstab(high, it["type"])
    per = counts.div(counts.sum(axis=1), axis=0)
    assert per.loc[True, "forecast_shared"] > 1.5 * per.loc[False, "forecast_shared"]
    assert per.loc[True, "inspection"] < 0.7 * per.loc[False, "inspection"]
    assert per.loc[True, "rfq"] < per.loc[False, "rfq"]


def test_resolution_and_contacts(world) -> None:
    """Only complaints, service requests and repairs get resolved; sponsors change."""
    tables, _, _ = world
    it = tables["interactions"]
    resolvable = it["type"].isin(["complaint", "service_request", "repair"])
    assert it.loc[~resolvable, "resolved_at"].isna().all()
    res = it.loc[resolvable & it["resolved_at"].notna()]
    assert len(res) > 0 and (res["resolved_at"] > res["occurred_at"]).all()
    contacts = it.groupby("account_id")["contact_id"].nunique()
    assert (contacts > 2).mean() > 0.1  # contact persons turn over


def test_engagement_falls_with_health(world) -> None:
    """Churners order less in their last 90 days than a year before."""
    tables, _, _ = world
    o = tables["orders"].merge(tables["churn"], on="account_id")
    o = o.merge(tables["accounts"][["account_id", "customer_since"]], on="account_id")
    start = pd.Timestamp(SMALL.start)
    o = o[o["churned_at"] - pd.Timedelta(days=455) >= o["customer_since"].clip(lower=start)]
    age = (o["churned_at"] - o["order_date"]).dt.days
    assert (age <= 90).sum() < 0.85 * ((age > 365) & (age <= 455)).sum()


def test_wallet_share_below_one(world) -> None:
    """Yearly spend is typically well below the customer's category wallet."""
    tables, _, _ = world
    o = tables["orders"]
    last_year = o[o["order_date"] >= o["order_date"].max() - pd.Timedelta(days=364)]
    spend = last_year.groupby("account_id")["amount"].sum()
    wallet = tables["accounts"].set_index("account_id")["annual_wallet"]
    share = (spend / wallet.reindex(spend.index)).dropna()
    assert 0.2 < share.median() < 0.6
    assert share.quantile(0.9) < 1.0
