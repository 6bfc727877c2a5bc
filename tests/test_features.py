"""Features on a hand-made world: values worked out by hand, and point-in-time exactness."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from features import FeatureConfig
from features.catalog import CATALOG, GROUPS
from pipeline.engine import EngineSpec, features_at
from pipeline.frame import training_frame
from pipeline.labels import LabelSpec
from pipeline.store import load
from tests.conftest import T, write_world

CFG = FeatureConfig()
LABEL = LabelSpec()


def feats(folder, as_of: str, **kw) -> pd.DataFrame:
    return features_at(load(folder), T(as_of), CFG, LABEL, **kw).set_index("account_id")


def test_every_group_has_at_least_two_features():
    for group in GROUPS:
        assert sum(f.group == group for f in CATALOG) >= 2, group


@pytest.fixture
def at_april(world_dir) -> pd.DataFrame:
    """Features on 2023-04-01: a (history), c (new customer); b churned on 2023-03-20."""
    f = feats(world_dir, "2023-04-01")
    assert list(f.index) == ["a", "c"]
    return f


def test_silence_by_hand(at_april):
    a, c = at_april.loc["a"], at_april.loc["c"]
    # complaints on 2022-11-05 09:00 (146.625 days before) and 2023-01-05 (86 days before)
    assert a.days_since_last_complaint == 86
    assert a.days_since_last_customer_contact == 86
    assert a.days_since_last_contact == pytest.approx(58.5)  # price talk 2023-02-01 12:00
    assert a.complaints_recent == 1 and a.complaints_before_recent == 1
    assert a.has_complaint_history == 1 and a.went_quiet == 0
    # 1 complaint in 90 days against 1 in the 56.625 days of history before them
    assert a.complaint_rate_ratio == pytest.approx((1 / 90) / (1 / 56.625))
    assert a.complaint_resolution_days_long == pytest.approx(2.0)  # the old one took 2 days
    assert a.open_complaints == 1  # the recent one is unresolved
    assert a.customer_contacts_recent == 1 and a.customer_contacts_prior == 1
    assert a.customer_contact_trend == pytest.approx(0.0)
    # zero and unknown kept apart: c never complained (unknown), has 0 complaints (a count)
    assert pd.isna(c.days_since_last_complaint) and c.complaints_recent == 0
    assert c.has_complaint_history == 0 and pd.isna(c.complaint_rate_ratio)
    assert pd.isna(c.days_since_last_contact) and pd.isna(c.complaint_resolution_days_long)


def test_dependency_by_hand(at_april):
    a, c = at_april.loc["a"], at_april.loc["c"]
    # edi active since 2022-05-01 (335 days), vmi ended 2023-02-01 (59 days before)
    assert a.active_links == 1 and a.active_link_types == 1 and a.ordering_links_active == 1
    assert a.contract_links_active == 0 and a.links_started_recent == 0
    assert a.links_ended_recent == 1 and a.oldest_active_link_days == 335
    assert a.direct_channel_share == 0.5 and a.product_lines_long == 2  # edi + phone; x, y
    assert a.tenure_days == 455  # since 2022-01-01
    assert c.active_links == 0 and pd.isna(c.oldest_active_link_days)
    assert c.direct_channel_share == 0.0 and c.tenure_days == 17


def test_trust_by_hand(at_april):
    a, c = at_april.loc["a"], at_april.loc["c"]
    # the only meeting minutes are a 60-minute price negotiation
    assert a.transactional_minutes_share == 1.0 and a.collaborative_minutes_long == 0
    assert a.price_negotiations_long == 1 and a.disputes_long == 0
    assert a.info_sharing_long == 0 and a.forecasts_shared_long == 0
    assert a.rfqs_recent == 0 and a.inspections_long == 0
    assert pd.isna(c.transactional_minutes_share)  # no meetings: unknown, not 0


def test_promises_by_hand(at_april):
    a, c = at_april.loc["a"], at_april.loc["c"]
    # o1 due 2023-01-20, delivered 5 days late; o2 due 2023-03-10, undelivered: 22 days late
    assert a.on_time_rate_long == 0.0
    assert a.mean_lateness_days_long == pytest.approx((5 + 22) / 2)
    assert a.worst_lateness_days_long == 22
    assert a.broken_promises_recent == 2 and a.broken_promises_long == 2
    assert a.open_overdue_orders == 1
    assert pd.isna(a.lateness_trend_days)  # nothing was due in the window before
    assert pd.isna(c.on_time_rate_long)  # nothing due yet: unknown, not 0 or 1
    assert c.open_overdue_orders == 0 and c.broken_promises_long == 0


def test_engagement_by_hand(at_april):
    a, c = at_april.loc["a"], at_april.loc["c"]
    assert a.days_since_last_order == 31 and a.days_since_first_order == 81
    assert a.orders_recent == 2 and a.orders_prior == 0
    assert a.order_trend == pytest.approx(math.log(3))
    assert a.order_value_long == 300 and a.avg_order_value_long == 150
    assert a.order_value_trend == pytest.approx(math.log(301))
    assert a.annual_wallet == 1000 and a.share_of_wallet == pytest.approx(0.3)
    assert a.supplier_touches_recent == 1 and a.touches_sales_recent == 1
    assert a.touches_engineering_recent == 0 and a.touches_service_recent == 0
    assert a.interactions_trend == pytest.approx(math.log(3 / 2))  # 2 recent, 1 prior
    assert a.supplier_departments_long == 2
    # contacts: a-1 last seen 146.6 days before (lost), a-2 first seen 86 days before (new)
    assert a.contacts_active_recent == 1 and a.contacts_new_recent == 1
    assert a.contacts_lost_recent == 1
    assert c.orders_recent == 1 and c.contacts_active_recent == 0


def _with_health_signals(world: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """The tiny world plus an older order and service history for a (cutoff 2023-04-01)."""
    w = {k: v.copy() for k, v in world.items()}
    older = {
        "order_id": "o6", "account_id": "a", "order_date": T("2022-10-01"), "amount": 400.0,
        "product_line": "x", "channel": "phone", "promised_date": T("2022-10-10"),
        "delivered_date": T("2022-10-09"),
    }  # fmt: skip
    w["orders"] = pd.concat([w["orders"], pd.DataFrame([older])], ignore_index=True)
    rows = [  # id, occurred at, type, initiated by, department, contact, resolved at
        ("i5", "2023-03-01 08:00", "service_request", "customer", "service", "a-2",
         "2023-03-01 20:00"),
        ("i6", "2023-03-11 10:00", "repair", "supplier", "engineering", "a-2", "2023-03-12 10:00"),
        ("i7", "2023-03-21 00:00", "planning_meeting", "customer", "sales", "a-3", None),
        ("i8", "2022-06-01 00:00", "rfq", "customer", "sales", "a-1", None),
        ("i9", "2022-08-01 00:00", "other", "customer", "sales", "a-1", None),
    ]  # fmt: skip
    extra = pd.DataFrame(
        [
            {
                "interaction_id": i, "account_id": "a", "occurred_at": T(at), "type": kind,
                "initiated_by": by, "department": dept, "minutes": None, "contact_id": contact,
                "resolved_at": T(done) if done else pd.NaT,
            }
            for i, at, kind, by, dept, contact, done in rows
        ]
    )  # fmt: skip
    w["interactions"] = pd.concat([w["interactions"], extra], ignore_index=True)
    return w


def test_health_signals_by_hand(tmp_path, world):
    a = feats(write_world(_with_health_signals(world), tmp_path / "w"), "2023-04-01").loc["a"]
    # resolved in the recent window: i5 after 12 hours, i6 after 24; i1 (48 hours) before it
    assert a.resolution_log_hours_recent == pytest.approx((math.log(12) + math.log(24)) / 2)
    assert a.resolution_log_hours_long == pytest.approx(math.log(12 * 24 * 48) / 3)
    # complaints, service requests and repairs of the year: i1, i2, i5, i6; i2 still open
    assert a.unresolved_share_long == pytest.approx(1 / 4)
    assert a.rfqs_long == 1 and a.rfqs_recent == 0
    # orders: o1, o2 (300) in the recent window; o6 (400) 182 days before, 92 days of history
    assert a.order_rate_ratio == pytest.approx((2 / 90) / (1 / 92))
    assert a.order_value_rate_ratio == pytest.approx((300 / 90) / (400 / 92))
    assert a.order_log_value_shift == pytest.approx(
        (math.log(100) + math.log(200)) / 2 - math.log(400)
    )
    # engaged: i5, i7 recent (both in the last 60 days), i9 243 days before; history from
    # the rfq i8 304 days before, so 214 days before the recent window
    assert a.engaged_contacts_recent == 2
    assert a.engaged_contact_rate_ratio == pytest.approx((2 / 90) / (1 / 214))
    assert a.engaged_contact_trend == pytest.approx(math.log(2 * 90 / 60 + 1))
    # supplier touches in the last quarter: i6 by engineering (1), i3 by sales (0.25)
    assert a.weighted_touches_year == pytest.approx(0.98 ** (45 / 7) * 1.25)
    assert a.days_since_new_contact == 11  # a-3 first seen 2023-03-21
    c = feats(write_world(world, tmp_path / "plain"), "2023-04-01").loc["c"]
    # c: no history before the recent window, no interactions: unknown, or 0 for counts
    assert pd.isna(c.order_rate_ratio) and pd.isna(c.resolution_log_hours_long)
    assert pd.isna(c.unresolved_share_long) and pd.isna(c.days_since_new_contact)
    assert c.engaged_contacts_recent == 0 and c.weighted_touches_year == 0


def test_sources_lag_the_cutoff_test_for_a_churned_account(world_dir):
    """b is scored before it churned; its planning meeting counts as collaboration."""
    b = feats(world_dir, "2023-03-01").loc["b"]
    assert b.transactional_minutes_share == 0.0 and b.collaborative_minutes_long == 30
    assert b.touches_engineering_recent == 1 and b.info_sharing_long == 1


def test_went_quiet_once_complaints_stop(world_dir):
    a = feats(world_dir, "2023-06-01").loc["a"]
    assert a.complaints_recent == 0 and a.complaints_before_recent == 2 and a.went_quiet == 1


def _later_events(world: dict[str, pd.DataFrame], cutoff: pd.Timestamp) -> dict[str, pd.DataFrame]:
    """The world plus events dated on or after `cutoff`, and later facts about older events."""
    w = {k: v.copy() for k, v in world.items()}
    w["orders"] = pd.concat(
        [
            w["orders"],
            pd.DataFrame(
                {
                    "order_id": ["late1", "late2"],
                    "account_id": ["a", "c"],
                    "order_date": [cutoff, cutoff + pd.Timedelta(days=3)],
                    "amount": [999.0, 5.0],
                    "product_line": ["q", "q"],
                    "channel": ["vmi", "edi"],
                    "promised_date": [cutoff + pd.Timedelta(days=9)] * 2,
                    "delivered_date": [pd.NaT] * 2,
                }
            ),
        ],
        ignore_index=True,
    )
    # o2 (due before the cutoff, undelivered at it) gets delivered after the cutoff
    w["orders"].loc[w["orders"].order_id == "o2", "delivered_date"] = cutoff + pd.Timedelta(days=4)
    w["interactions"] = pd.concat(
        [
            w["interactions"],
            pd.DataFrame(
                {
                    "interaction_id": ["late3", "late4"],
                    "account_id": ["a", "c"],
                    "occurred_at": [cutoff, cutoff + pd.Timedelta(hours=1)],
                    "type": ["complaint", "rfq"],
                    "initiated_by": ["customer", "customer"],
                    "department": ["quality", "sales"],
                    "minutes": [15.0, None],
                }
            ),
        ],
        ignore_index=True,
    )
    w["links"] = pd.concat(
        [
            w["links"],
            pd.DataFrame(
                {
                    "account_id": ["c"],
                    "link_type": ["edi"],
                    "start_date": [cutoff],
                    "end_date": [pd.NaT],
                }
            ),
        ],
        ignore_index=True,
    )
    # the edi link of a ends on the cutoff: still active at it
    w["links"].loc[(w["links"].account_id == "a") & (w["links"].link_type == "edi"), "end_date"] = (
        cutoff
    )
    return w


def test_nothing_on_or_after_the_cutoff_changes_features(tmp_path, world):
    cutoff = T("2023-04-01")
    before = feats(write_world(world, tmp_path / "before"), "2023-04-01")
    after = feats(write_world(_later_events(world, cutoff), tmp_path / "after"), "2023-04-01")
    pd.testing.assert_frame_equal(before, after)


def test_an_event_before_the_cutoff_does_change_features(tmp_path, world):
    """The point-in-time test above would pass vacuously if events never mattered."""
    w = _later_events(world, T("2023-04-01"))
    w["interactions"].loc[w["interactions"].interaction_id == "late3", "occurred_at"] = T(
        "2023-03-31"
    )
    changed = feats(write_world(w, tmp_path / "w"), "2023-04-01")
    assert changed.loc["a"].complaints_recent == 2
    assert changed.loc["a"].days_since_last_complaint == 1


@pytest.mark.parametrize("engine", ["window", "sliding"])
def test_schedule_equals_one_cutoff_at_a_time(world_dir, engine):
    """The whole schedule in one pass (window functions, or sliding windows) equals each
    cutoff on its own (join)."""
    validated = load(world_dir)
    cutoffs = [T("2023-02-01"), T("2023-03-01"), T("2023-03-02"), T("2023-04-01")]
    frame, mode = training_frame(validated, cutoffs, CFG, LABEL, spec=EngineSpec(engine))
    assert mode == "explicit"
    for cutoff in cutoffs:
        one = features_at(validated, cutoff, CFG, LABEL, spec=EngineSpec("join"))
        part = frame[frame.cutoff == cutoff].drop(columns="label").reset_index(drop=True)
        pd.testing.assert_frame_equal(part, one)


def test_labels_follow_the_churn_table(world_dir):
    frame, _ = training_frame(
        load(world_dir), [T("2023-02-01"), T("2023-03-01")], CFG, LabelSpec(horizon_days=30)
    )
    labels = frame.set_index(["account_id", frame.cutoff.dt.date.astype(str)])["label"]
    assert labels[("b", "2023-03-01")] == 1  # churned 2023-03-20, inside [03-01, 03-31)
    assert labels[("b", "2023-02-01")] == 0  # outside [02-01, 03-03)
    assert labels[("a", "2023-03-01")] == 0


def test_inactivity_labels_without_a_churn_table(tmp_path, world):
    del world["churn"]
    folder = write_world(world, tmp_path / "nochurn")
    frame, mode = training_frame(load(folder), [T("2023-02-01")], CFG, LabelSpec(horizon_days=20))
    assert mode == "inactivity"
    labels = frame.set_index("account_id")["label"]
    assert labels["b"] == 0  # ordered 2023-02-20, inside [02-01, 02-21)
    assert labels["a"] == 1  # next order only on 2023-03-01


def test_accounts_and_orders_alone_are_enough(tmp_path, world):
    folder = write_world({k: world[k] for k in ("accounts", "orders")}, tmp_path / "min")
    f = feats(folder, "2023-04-01")
    assert "days_since_last_order" in f.columns and "on_time_rate_long" in f.columns
    assert "days_since_last_complaint" not in f.columns and "active_links" not in f.columns
    assert "b" in f.index  # no churn table: b is not known to have churned


def test_feature_groups_can_be_chosen(world_dir):
    f = feats(world_dir, "2023-04-01", groups=["silence"])
    assert set(f.columns) - {"cutoff"} == {x.name for x in CATALOG if x.group == "silence"}
    f = feats(world_dir, "2023-04-01", groups=["trust", "promises"])
    assert {x.name for x in CATALOG if x.group in ("trust", "promises")} == set(f.columns) - {
        "cutoff"
    }


def test_feature_docs_are_up_to_date():
    from pathlib import Path

    from features.docs import render_markdown

    page = Path(__file__).resolve().parents[1] / "docs" / "features.md"
    assert page.read_text() == render_markdown(), "docs/features.md is stale: run `churn docs`"
    for feature in CATALOG:
        assert f"`{feature.name}`" in page.read_text()


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"engine": "turbo"}, "features.engine must be one of auto, join, window, sliding"),
        ({"threads": 0}, "features.threads must be a whole number"),
    ],
)
def test_engine_settings_are_checked(settings, message):
    from pipeline.errors import UserError

    with pytest.raises(UserError, match=message):
        EngineSpec.from_params(settings)


def test_unknown_feature_groups_are_a_clear_error():
    from pipeline.engine import check_groups
    from pipeline.errors import UserError

    assert check_groups(["trust"]) == ["trust"]
    with pytest.raises(UserError, match="unknown group.*'silnce'"):
        check_groups(["silnce", "trust"])


def _rhythm_world(world):
    """Account a orders on days 0, 10, 30 (twice), 60 from 2023-01-01; c once; b never."""
    start = T("2023-01-01")
    days = [0, 10, 30, 30, 60]
    orders = pd.DataFrame(
        {
            "order_id": [f"o{i}" for i in range(len(days))] + ["c1"],
            "account_id": ["a"] * len(days) + ["c"],
            "order_date": [start + pd.Timedelta(days=d) for d in days] + [T("2023-03-20")],
            "amount": [10.0, 20.0, 10.0, 10.0, 10.0, 5.0],
        }
    )
    accounts = world["accounts"][["account_id", "customer_since"]]
    return {"accounts": accounts, "orders": orders}


@pytest.mark.parametrize("engine", ["join", "window", "sliding"])
def test_purchase_rhythm_by_hand(tmp_path, world, engine):
    folder = write_world(_rhythm_world(world), tmp_path / "raw")
    # 2023-04-01 is day 90: a's order days 0, 10, 30, 60 give gaps 10, 20, 30
    cutoffs = [T("2023-03-15"), T("2023-04-01")]
    frame, _ = (
        training_frame(
            load(folder), cutoffs, CFG, LabelSpec(mode="inactivity"), spec=EngineSpec(engine)
        )
        if engine != "join"
        else (None, None)
    )
    f = (
        feats(folder, "2023-04-01", spec=EngineSpec(engine))
        if engine == "join"
        else frame[frame.cutoff == cutoffs[1]].set_index("account_id")
    )
    a = f.loc["a"]
    assert a.orders_total == 5 and a.order_days_total == 4
    assert a.days_since_first_order == 90 and a.days_since_last_order == 30
    assert a.mean_order_gap_days == pytest.approx(20.0)
    assert a.order_gap_ratio == pytest.approx(30 / 20)
    assert a.order_gap_cv == pytest.approx(math.sqrt(200 / 3) / 20)
    c = f.loc["c"]  # one order: frequency 0, no rhythm yet (unknown, not 0)
    assert c.orders_total == 1 and c.order_days_total == 1
    assert pd.isna(c.mean_order_gap_days) and pd.isna(c.order_gap_ratio)
    assert pd.isna(c.order_gap_cv)
    if engine != "join":  # on 2023-03-15 (day 73) the day-60 order is known, nothing after
        early = frame[frame.cutoff == cutoffs[0]].set_index("account_id").loc["a"]
        assert early.order_days_total == 4 and early.order_gap_ratio == pytest.approx(13 / 20)
