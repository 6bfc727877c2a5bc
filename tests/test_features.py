"""Features on a hand-made world: values worked out by hand, and point-in-time exactness."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from features import FeatureConfig
from features.catalog import CATALOG, GROUPS
from pipeline.featurize import LabelSpec, features_at, training_frame
from pipeline.validate import load
from tests.conftest import T, write_world

CFG = FeatureConfig()
LABEL = LabelSpec()


def feats(folder, as_of: str, **kw) -> pd.DataFrame:
    return features_at(load(folder), T(as_of), CFG, LABEL, **kw).set_index("account_id")


def test_every_group_has_at_least_two_features():
    for group in GROUPS:
        assert sum(f.group == group for f in CATALOG) >= 2, group


def test_values_worked_out_by_hand(world_dir):
    f = feats(world_dir, "2023-04-01")
    assert list(f.index) == ["a", "c"]  # b churned on 2023-03-20, before the cutoff
    a = f.loc["a"]
    # silence: last complaint 2023-01-05 -> 86 days; the older one is outside the 90 days
    assert a.days_since_last_complaint == 86
    assert a.complaints_recent == 1 and a.complaints_before_recent == 1
    assert a.went_quiet == 0
    assert a.days_since_last_contact == pytest.approx(58.5)  # 2023-02-01 12:00
    # dependency: edi active, vmi ended 2023-02-01 (59 days ago), oldest active since 2022-05-01
    assert a.active_links == 1 and a.active_link_types == 1 and a.links_ended_recent == 1
    assert a.oldest_active_link_days == 335
    assert a.direct_channel_share == 0.5 and a.product_lines_long == 2
    assert a.tenure_days == 455
    # trust: the only meeting minutes are a price negotiation
    assert a.transactional_minutes_share == 1.0 and a.info_sharing_long == 0
    # promises: o1 5 days late; o2 due 2023-03-10, still undelivered -> 22 days late by the cutoff
    assert a.on_time_rate_long == 0.0
    assert a.mean_lateness_days_long == pytest.approx((5 + 22) / 2)
    assert a.broken_promises_recent == 2 and a.open_overdue_orders == 1
    # engagement
    assert a.days_since_last_order == 31 and a.orders_recent == 2 and a.orders_prior == 0
    assert a.order_trend == pytest.approx(math.log(3))
    assert a.order_value_long == 300 and a.share_of_wallet == pytest.approx(0.3)
    assert a.supplier_touches_recent == 1 and a.supplier_departments_long == 2
    c = f.loc["c"]
    # zero and unknown kept apart: c never complained (unknown), has 0 complaints (a count)
    assert pd.isna(c.days_since_last_complaint) and c.complaints_recent == 0
    assert pd.isna(c.days_since_last_contact)
    assert pd.isna(c.on_time_rate_long)  # nothing due yet: unknown, not 0 or 1
    assert c.open_overdue_orders == 0


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


def test_schedule_equals_one_cutoff_at_a_time(world_dir):
    validated = load(world_dir)
    cutoffs = [T("2023-02-01"), T("2023-03-01"), T("2023-04-01")]
    frame, mode = training_frame(validated, cutoffs, CFG, LABEL)
    assert mode == "explicit"
    for cutoff in cutoffs:
        one = features_at(validated, cutoff, CFG, LABEL)
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
