"""Property-based proof of the point-in-time rules and of order independence.

Random small worlds; then any event dated on or after the cutoff is added, removed or changed
(including facts about older events that became known only later, such as a delivery or a
resolution after the cutoff). No feature at the cutoff may change. Shuffling the rows of every
table changes nothing either.
"""

from __future__ import annotations

from unittest import mock

import ibis
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from features import FeatureConfig, build_features, compiled, eligible_spine, sliding_engine
from pipeline.contract import INTERACTION_TYPES, LINK_TYPES

BASE = pd.Timestamp("2023-01-01")
CUTOFF = pd.Timestamp("2023-07-01")  # day 181
ACCOUNTS = ["a", "b", "c"]
CFG = FeatureConfig(recent_days=60, long_days=150)
DAYS = st.integers(0, 300)


def day(n: int, hours: int = 0) -> pd.Timestamp:
    return BASE + pd.Timedelta(days=n, hours=hours)


@st.composite
def orders(draw, prefix: str, lo: int = 0, hi: int = 300) -> pd.DataFrame:
    rows = []
    for i in range(draw(st.integers(0, 6))):
        ordered = draw(st.integers(lo, hi))
        promised = ordered + draw(st.integers(1, 40))
        delivered = draw(st.none() | st.integers(ordered + 1, ordered + 60))
        rows.append(
            {
                "order_id": f"{prefix}{i}",
                "account_id": draw(st.sampled_from(ACCOUNTS)),
                "order_date": day(ordered),
                "amount": float(draw(st.integers(1, 500))),
                "product_line": draw(st.sampled_from(["x", "y", "z"])),
                "channel": draw(st.sampled_from(["edi", "phone", "portal"])),
                "promised_date": day(promised),
                "delivered_date": pd.NaT if delivered is None else day(delivered),
            }
        )
    return typed(pd.DataFrame(rows, columns=ORDER_COLS))


@st.composite
def interactions(draw, prefix: str, lo: int = 0, hi: int = 300) -> pd.DataFrame:
    rows = []
    for i in range(draw(st.integers(0, 8))):
        at = draw(st.integers(lo, hi))
        kind = draw(st.sampled_from(INTERACTION_TYPES))
        resolved = draw(st.none() | st.integers(at, at + 30))
        account = draw(st.sampled_from(ACCOUNTS))
        rows.append(
            {
                "interaction_id": f"{prefix}{i}",
                "account_id": account,
                "occurred_at": day(at, draw(st.integers(0, 23))),
                "type": kind,
                "initiated_by": draw(st.sampled_from(["customer", "supplier"])),
                "department": draw(st.sampled_from(["sales", "service", "engineering"])),
                "minutes": float(draw(st.integers(10, 120))),
                "contact_id": f"{account}-{draw(st.integers(1, 3))}",
                "resolved_at": pd.NaT if resolved is None else day(resolved, 12),
            }
        )
    return typed(pd.DataFrame(rows, columns=INTERACTION_COLS))


@st.composite
def links(draw, lo: int = 0, hi: int = 300) -> pd.DataFrame:
    rows = []
    for _ in range(draw(st.integers(0, 4))):
        start = draw(st.integers(lo, hi))
        end = draw(st.none() | st.integers(start, start + 200))
        rows.append(
            {
                "account_id": draw(st.sampled_from(ACCOUNTS)),
                "link_type": draw(st.sampled_from(LINK_TYPES)),
                "start_date": day(start),
                "end_date": pd.NaT if end is None else day(end),
            }
        )
    return typed(pd.DataFrame(rows, columns=LINK_COLS))


ORDER_COLS = [
    "order_id",
    "account_id",
    "order_date",
    "amount",
    "product_line",
    "channel",
    "promised_date",
    "delivered_date",
]
INTERACTION_COLS = [
    "interaction_id",
    "account_id",
    "occurred_at",
    "type",
    "initiated_by",
    "department",
    "minutes",
    "contact_id",
    "resolved_at",
]
LINK_COLS = ["account_id", "link_type", "start_date", "end_date"]


@st.composite
def worlds(draw) -> dict[str, pd.DataFrame]:
    accounts = pd.DataFrame(
        {
            "account_id": ACCOUNTS,
            "customer_since": [day(draw(st.integers(-300, 250))) for _ in ACCOUNTS],
            "annual_wallet": [1000.0, 2000.0, 3000.0],
        }
    )
    churned = draw(st.lists(st.sampled_from(ACCOUNTS), unique=True, max_size=2))
    churn = typed(
        pd.DataFrame(
            {"account_id": churned, "churned_at": [day(draw(DAYS)) for _ in churned]},
            columns=["account_id", "churned_at"],
        )
    )
    return {
        "accounts": accounts,
        "orders": draw(orders("o")),
        "interactions": draw(interactions("i")),
        "links": draw(links()),
        "churn": churn,
    }


def typed(frame: pd.DataFrame) -> pd.DataFrame:
    """Column types as the clean tables have them, even for an empty frame."""
    frame = frame.copy()
    for col in frame.columns:
        if col.endswith(("_date", "_at", "_since")):
            frame[col] = pd.to_datetime(frame[col]).astype("datetime64[us]")
        elif col in ("amount", "minutes", "annual_wallet"):
            frame[col] = frame[col].astype("float64")
        else:
            frame[col] = frame[col].astype("string")
    return frame


def _one_cutoff(tables: dict, cutoff: pd.Timestamp, cache) -> ibis.Table:
    """The join at one cutoff: it reads each table once for all its streams."""
    spine = eligible_spine(tables, [cutoff], cache=cache)
    return build_features(tables, spine, CFG, engine="join", cutoff=cutoff, cache=cache)


def features(
    world: dict[str, pd.DataFrame], engine: str = "join", cutoffs=(CUTOFF,)
) -> pd.DataFrame:
    con = ibis.duckdb.connect()
    tables = {name: con.create_table(name, typed(frame)) for name, frame in world.items()}
    if engine == "join" and len(cutoffs) == 1:
        # as features_at runs it: compiled once for every world of these schemas, moved to the
        # cutoff (features/compiled.py; tests/test_compiled.py shows it is the same query)
        result = compiled.run(tables, cutoffs[0], _one_cutoff, ("test_point_in_time", CFG))
        out = con.execute(ibis.memtable(result))
    else:  # per stream
        spine = eligible_spine(tables, list(cutoffs), engine=engine)
        out = build_features(tables, spine, CFG, engine=engine).to_pandas()
    return out.sort_values(["cutoff", "account_id"]).reset_index(drop=True)


def tag(world: dict, prefix: str) -> dict:
    """The world with every id prefixed."""
    out = {}
    for name, frame in world.items():
        frame = frame.copy()
        for col in ("account_id", "order_id", "interaction_id", "contact_id"):
            if col in frame.columns:
                frame[col] = prefix + frame[col].astype(str)
        out[name] = frame
    return out


def stacked(batch: list[dict[str, pd.DataFrame]]) -> dict[str, pd.DataFrame]:
    """The worlds of a batch as one world: each one's ids prefixed with its place in the
    batch, so no row of one can reach another."""
    tagged = [tag(world, f"{i}:") for i, world in enumerate(batch)]
    return {k: pd.concat([w[k] for w in tagged], ignore_index=True) for k in batch[0]}


def paired_features(
    left: dict, right: dict, engine: str = "join"
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Features of two worlds from one query (compiling the query is the slow part): the
    worlds are stacked with their ids prefixed, so no row of one can reach the other."""
    left, right = tag(left, "L|"), tag(right, "R|")
    both = features({k: pd.concat([left[k], right[k]], ignore_index=True) for k in left}, engine)
    parts = []
    for prefix in ("L|", "R|"):
        part = both[both.account_id.str.startswith(prefix)].reset_index(drop=True)
        parts.append(part.assign(account_id=part.account_id.str[2:]))
    return parts[0], parts[1]


def later_fact(ts: pd.Series, draw) -> pd.Series:
    """Move timestamps that are on or after the cutoff to other such values (or to unknown)."""
    later = ts.notna() & (ts >= CUTOFF)
    moved = [
        day(181 + draw(st.integers(0, 100))) if draw(st.booleans()) else pd.NaT
        for _ in range(int(later.sum()))
    ]
    ts = ts.copy()
    ts[later] = moved
    return ts


@st.composite
def with_later_changes(draw) -> tuple[dict[str, pd.DataFrame], dict[str, pd.DataFrame]]:
    world = draw(worlds())
    changed = {k: v.copy() for k, v in world.items()}
    for name, time_col in (
        ("orders", "order_date"),
        ("interactions", "occurred_at"),
        ("links", "start_date"),
    ):
        frame = changed[name]
        later = frame[time_col] >= CUTOFF
        # remove some later events, change the others' attributes
        keep = [not (flag and draw(st.booleans())) for flag in later]
        frame = frame[pd.Series(keep, index=frame.index, dtype=bool)].reset_index(drop=True)
        later = frame[time_col] >= CUTOFF
        if name == "orders":
            frame.loc[later, "amount"] = frame.loc[later, "amount"] * 3 + 1
        if name == "interactions":
            frame.loc[later, "type"] = draw(st.sampled_from(INTERACTION_TYPES))
        changed[name] = frame
    # add events on or after the cutoff
    extra = {
        "orders": draw(orders("new_o", 181, 300)),
        "interactions": draw(interactions("new_i", 181, 300)),
        "links": draw(links(181, 300)),
    }
    for name, frame in extra.items():
        changed[name] = pd.concat([changed[name], frame], ignore_index=True)
    # facts about older events that became known on or after the cutoff
    changed["orders"]["delivered_date"] = later_fact(changed["orders"]["delivered_date"], draw)
    changed["interactions"]["resolved_at"] = later_fact(
        changed["interactions"]["resolved_at"], draw
    )
    changed["links"]["end_date"] = later_fact(changed["links"]["end_date"], draw)
    changed["churn"]["churned_at"] = later_fact(changed["churn"]["churned_at"], draw).fillna(
        day(299)
    )
    return world, changed


# The number of worlds and their randomness come from the Hypothesis profile (tests/conftest.py):
# `ci` (the default) checks the same few derandomized worlds every run; `make test-long` runs
# the `long` profile, with many fresh random worlds.
SETTINGS = settings(
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
# The properties over a schedule take their worlds BATCH at a time, stacked into one (`stacked`):
# building and compiling the feature queries, not running them, is the slow part, so a batch
# costs about what one world did. The profile's example count is then a count of worlds (`ci`:
# its 8 in one batch; `long`: 200 in 25), after Hypothesis's first and simplest example (a
# batch of empty worlds). A failing batch shrinks to the world that fails, the others empty.
BATCH = 8
BATCHED = settings(
    SETTINGS,
    max_examples=1 + -(-settings.default.max_examples // BATCH),
    suppress_health_check=[*SETTINGS.suppress_health_check, HealthCheck.large_base_example],
)


def batches(strategy: st.SearchStrategy) -> st.SearchStrategy:
    return st.lists(strategy, min_size=BATCH, max_size=BATCH)


@BATCHED
@given(batches(with_later_changes()))
def test_events_on_or_after_the_cutoff_change_nothing(pairs):
    world, changed = stacked([w for w, _ in pairs]), stacked([c for _, c in pairs])
    for engine in ("join", "window", "sliding"):
        pd.testing.assert_frame_equal(*paired_features(world, changed, engine))


# Cutoffs a day apart and a window length apart, where off-by-one-day errors would show.
SCHEDULE = [day(60), day(120), day(180), CUTOFF, day(182), day(241)]


@BATCHED
@given(batches(worlds()))
def test_the_schedule_engines_equal_the_per_cutoff_join(batch):
    """Window functions and sliding windows over a whole schedule give what joining each
    cutoff gives."""
    world = stacked(batch)
    joined = features(world, "join", SCHEDULE)
    pd.testing.assert_frame_equal(features(world, "window", SCHEDULE), joined)
    pd.testing.assert_frame_equal(features(world, "sliding", SCHEDULE), joined)
    with mock.patch.object(sliding_engine, "SLIDING_ROWS", 3):  # events a few rows at a time
        pd.testing.assert_frame_equal(features(world, "sliding", SCHEDULE), joined)


@BATCHED
@given(batches(worlds()))
def test_features_at_one_cutoff_equal_the_schedule_at_that_cutoff(batch):
    """The one-cutoff engine (a pass per stream over the rows within its longest window, one
    over every row, distinct counts per value) gives what the schedule's join gives there."""
    world = stacked(batch)
    joined = features(world, "join", SCHEDULE)
    for cutoff in (CUTOFF, day(182), day(241)):
        at = joined[joined.cutoff == cutoff].reset_index(drop=True)
        pd.testing.assert_frame_equal(features(world, "join", (cutoff,)), at)


@SETTINGS
@given(worlds(), st.randoms(use_true_random=False))
def test_row_order_changes_nothing(world, rnd):
    shuffled = {}
    for name, frame in world.items():
        order = list(range(len(frame)))
        rnd.shuffle(order)
        shuffled[name] = frame.iloc[order].reset_index(drop=True)
    pd.testing.assert_frame_equal(*paired_features(world, shuffled))


def test_the_pairing_detects_a_change_before_the_cutoff():
    """The properties above would pass vacuously if a change never showed."""
    world = {
        "accounts": typed(
            pd.DataFrame({"account_id": ["a"], "customer_since": [day(0)], "annual_wallet": [1.0]})
        ),
        "orders": typed(
            pd.DataFrame(
                [
                    {
                        "order_id": "o",
                        "account_id": "a",
                        "order_date": day(100),
                        "amount": 5.0,
                        "product_line": "x",
                        "channel": "edi",
                        "promised_date": day(110),
                        "delivered_date": day(111),
                    }
                ],
                columns=ORDER_COLS,
            )
        ),
    }
    changed = {k: v.copy() for k, v in world.items()}
    changed["orders"]["amount"] = 6.0
    left, right = paired_features(world, changed)
    assert left.order_value_long.tolist() == [5.0] and right.order_value_long.tolist() == [6.0]
