"""The feature query of one cutoff is compiled once and moved to every cutoff: the frames are
exactly those of a query built at each cutoff, and only the cutoff's literals move."""

from __future__ import annotations

from pathlib import Path

import ibis
import pandas as pd
import pytest

from features import FeatureConfig, build_features, compiled, eligible_spine
from pipeline.checking import check
from pipeline.engine import features_at, ibis_tables
from pipeline.explain import _one_account
from pipeline.labels import LabelSpec
from pipeline.simulate import SimConfig
from pipeline.simulate import write as simulate
from pipeline.store import load, write_clean
from tests.conftest import T

CUTOFFS = [T("2024-06-03"), T("2024-09-15"), T("2024-03-04 10:30"), T("2023-11-27")]
CFG = FeatureConfig(recent_days=60, long_days=200)


@pytest.fixture(scope="module")
def clean(tmp_path_factory) -> Path:
    """A small simulated world, validated."""
    root = tmp_path_factory.mktemp("compiled")
    config = SimConfig(n_accounts=150, seed=5, weeks=90, mc_samples=0)
    simulate(config, root / "raw", root / "truth.parquet")
    write_clean(check(root / "raw"), root / "clean")
    return root / "clean"


def direct(monkeypatch, *args, **kw) -> pd.DataFrame:
    """features_at with the query built and compiled at the cutoff itself (no plan kept)."""
    with monkeypatch.context() as m:
        m.setattr(compiled, "_PLANS", compiled.OrderedDict())
        m.setattr(compiled, "_record", lambda *a: None)
        m.setenv("AFTERSALE_CACHE_DIR", "off")  # nor read from disk
        return features_at(*args, **kw)


@pytest.mark.parametrize("mode", ["explicit", "inactivity"])
def test_the_plan_gives_exactly_the_frame_built_at_each_cutoff(clean, monkeypatch, mode, tmp_path):
    monkeypatch.setenv("AFTERSALE_CACHE_DIR", str(tmp_path))  # no plan on disk yet
    validated = load(clean)
    records = []
    record = compiled._record
    monkeypatch.setattr(compiled, "_PLANS", compiled.OrderedDict())
    monkeypatch.setattr(compiled, "_record", lambda *a: records.append(1) or record(*a))
    label = LabelSpec(mode=mode)
    one = _one_account(validated, load(clean).con.execute(
        "SELECT min(account_id) FROM clean_accounts").fetchone()[0])  # fmt: skip
    for data, cutoffs in ((validated, CUTOFFS[:3]), (one, CUTOFFS[2:])):
        for cutoff in cutoffs:
            got = features_at(data, cutoff, CFG, label)
            assert len(got) > 0
            want = direct(monkeypatch, data, cutoff, CFG, label)
            pd.testing.assert_frame_equal(got, want, check_exact=True)
    # one plan for midnight cutoffs and one for 10:30, shared by the one-account views
    assert len(records) == 2
    assert len(list((tmp_path / "plans").glob("*.json"))) == 2  # kept for the next process


def test_the_next_process_reads_the_plan_from_disk(clean, monkeypatch, tmp_path):
    """A new process (no plan in memory) reads the kept plan, compiles nothing, and gets the
    same frame; a damaged file is compiled again and rewritten; another schema is another
    plan."""
    monkeypatch.setenv("AFTERSALE_CACHE_DIR", str(tmp_path))
    records = []
    record = compiled._record
    monkeypatch.setattr(compiled, "_record", lambda *a: records.append(1) or record(*a))
    label = LabelSpec(mode="explicit")
    frames = []
    for _ in range(2):
        monkeypatch.setattr(compiled, "_PLANS", compiled.OrderedDict())  # a new process
        frames.append(features_at(load(clean), CUTOFFS[0], CFG, label))
    assert len(records) == 1  # compiled by the first only
    pd.testing.assert_frame_equal(frames[0], frames[1], check_exact=True)
    (kept,) = (tmp_path / "plans").glob("*.json")
    kept.write_text("{not json")
    monkeypatch.setattr(compiled, "_PLANS", compiled.OrderedDict())
    again = features_at(load(clean), CUTOFFS[1], CFG, label)
    assert len(records) == 2 and kept.read_text().startswith('{"prefix"')
    pd.testing.assert_frame_equal(again, direct(monkeypatch, load(clean), CUTOFFS[1], CFG, label))
    monkeypatch.setattr(compiled, "_PLANS", compiled.OrderedDict())
    features_at(load(clean), CUTOFFS[0], FeatureConfig(recent_days=30), label)
    assert len(records) == 3 and len(list((tmp_path / "plans").glob("*.json"))) == 2


def test_moving_the_literals_gives_the_sql_compiled_at_the_cutoff(clean):
    """The SQL written at the stand-in cutoff, moved, is the SQL Ibis writes at the cutoff."""
    tables = ibis_tables(load(clean))
    backend = ibis.get_backend(tables["orders"])
    stand_ins = {n: ibis.table(t.schema(), name=f"__aftersale_{n}__") for n, t in tables.items()}

    def sql_at(cutoff: pd.Timestamp) -> list[str]:
        rec = compiled._Recorder(backend)
        spine = eligible_spine(stand_ins, [cutoff], active_days=300, cache=rec)
        result = build_features(stand_ins, spine, CFG, cutoff=cutoff, cache=rec)
        return [s.replace(rec.prefix, "_step_") for s in [*rec.steps, backend.compile(result)]]

    stand_in = sql_at(compiled._stand_in(CUTOFFS[2]))
    assert all(compiled._movable(s) for s in stand_in)
    assert sum(s.count("MAKE_TIMESTAMP(2200, 1, 1, 10, 30, 0.0)") for s in stand_in) > 0
    for cutoff in (CUTOFFS[2], CUTOFFS[2] - pd.Timedelta(days=100)):  # the same time of day
        at = sql_at(cutoff)
        assert [compiled.at_cutoff(s, cutoff, backend) for s in stand_in] == at
        assert at != stand_in


def test_a_query_with_other_timestamps_is_built_each_time(clean):
    """A literal that is not the cutoff's is not moved: the query is not kept."""
    tables = ibis_tables(load(clean))
    fixed = ibis.literal(T("2024-01-01").to_pydatetime(), type="timestamp")

    def build(tables, cutoff, cache):
        orders = tables["orders"]
        cut = ibis.literal(cutoff.to_pydatetime(), type="timestamp")
        kept = cache(orders.filter(orders.order_date < cut, orders.order_date >= fixed))
        return kept.aggregate(n=kept.count())

    key = ("a test", id(build))
    counts = [compiled.run(tables, c, build, key)["n"][0].as_py() for c in CUTOFFS[:2]]
    assert compiled._PLANS[(key, *list(compiled._PLANS)[-1][1:])] is None
    orders = load(clean).con.execute("SELECT order_date FROM clean_orders").df()["order_date"]
    want = [int(((orders < c) & (orders >= T("2024-01-01"))).sum()) for c in CUTOFFS[:2]]
    assert counts == want and counts[0] != counts[1]


def test_literals_are_recognised_only_near_the_stand_in_day():
    assert compiled._movable("SELECT MAKE_TIMESTAMP(2199, 12, 2, 0, 0, 0.0)")
    assert not compiled._movable("SELECT MAKE_TIMESTAMP(2024, 1, 1, 0, 0, 0.0)")
    assert not compiled._movable("SELECT MAKE_TIMESTAMPTZ(2200, 1, 1, 0, 0, 0.0, 'UTC')")
    assert not compiled._movable("SELECT MAKE_TIMESTAMP(9999, 1, 1, 0, 0, 0.0)")
