"""`churn explain`: one account's risk over its recent cutoffs with the reasons at each, a
verdict (improving, deteriorating or stable, and why), a terminal table and a PNG chart."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from pipeline.explain import _kept_bounds, history, verdict
from pipeline.lineage import fingerprint
from pipeline.registry import load_model
from pipeline.store import load
from pipeline.tiers import Settings
from tests import test_badinput_score as base
from tests.test_badinput_validate import run_cli
from tests.test_score_output import ALL_HIGH, params_file

project = base.project  # env: conftest


def explain(root, *args):
    code, out, err = run_cli("explain", *args, "--data", str(root / "clean"))
    return code, out + err


def test_table_and_chart_for_an_account(env, tmp_path):
    chart = tmp_path / "a.png"
    code, output = explain(env, "a", "--cutoffs", "3", "--every", "28", "--out", str(chart))
    assert code == 0, output
    lines = output.splitlines()
    assert lines[0].startswith('a =HYPERLINK("http://x","click"), model dvc:')
    rows = [line for line in lines if line[:4] == "2023"]
    assert [r.split()[0] for r in rows] == ["2023-01-24", "2023-02-21", "2023-03-21"]
    assert any(line.startswith(("deteriorating:", "improving:", "stable:")) for line in lines)
    assert f"chart -> {chart}" in output
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and chart.stat().st_size > 10_000


def test_the_last_cutoff_matches_the_score_file(env, tmp_path):
    params = params_file(tmp_path, **ALL_HIGH)
    code, output, out = base.score(env, "--all-active", "--params", str(params))
    assert code == 0, output
    scores = pd.read_csv(out).set_index("account_id")
    model = load_model(env, "churn-risk", str(env / "data" / "model"), env / "data" / "model")
    table, groups = history(
        load(env / "clean"), model, "a", pd.Timestamp("2023-03-21"),
        Settings.from_params(ALL_HIGH), None, count=3,
    )  # fmt: skip
    last = table.iloc[-1]
    assert last["p_churn"] == pytest.approx(scores.loc["a", "p_churn"])
    for column in ("reason_1", "reason_groups", "action"):  # equal, or both empty
        assert str(last[column]) == str(scores.loc["a", column]), column
    assert table["p_churn_change"].iloc[1:].round(6).tolist() == (
        table["p_churn"].diff().iloc[1:].round(6).tolist()
    )
    assert list(groups.index) == table["as_of"].tolist()


def test_a_churned_account_shows_its_history_up_to_churn(env, tmp_path):
    code, output = explain(env, "b", "--cutoffs", "4", "--out", str(tmp_path / "b.png"))
    assert code == 0, output
    dates = [line.split()[0] for line in output.splitlines() if line[:4] == "2023"]
    assert dates and all(d < "2023-03-20" for d in dates)  # b churned on 2023-03-20


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nobody"], "account 'nobody' is not in the accounts table"),
        (["c", "--as-of", "2023-03-01"], "its status at 2023-03-01 is not_yet_customer"),
        (["a", "--out", "chart.svg"], "the chart is a PNG; name it *.png"),
        (["a", "--as-of", "2030-01-01"], "--as-of 2030-01-01 is outside the data"),
        (["a", "--cutoffs", "0"], "--cutoffs must be at least 1"),
    ],
)
def test_clear_errors(env, tmp_path, args, message):
    code, output = explain(env, *args)
    assert code == 2, output
    assert message in output and "Traceback" not in output


def test_verdict_names_the_groups_that_moved_the_risk():
    table = pd.DataFrame(
        {"as_of": ["2025-01-01", "2025-02-01", "2025-03-01"], "p_churn": [0.05, 0.1, 0.3]}
    )
    groups = pd.DataFrame(
        {"silence": [-0.5, 0.2, 1.0], "trust": [0.1, 0.1, 0.4], "promises": [0.3, 0.2, 0.1]},
        index=table["as_of"],
    )
    text = verdict(table, groups)
    assert text == (
        "deteriorating: p_churn 0.05 -> 0.30 since 2025-01-01, mostly from silence "
        "(+1.50 log-odds), trust (+0.30 log-odds)"
    )
    better = verdict(table.assign(p_churn=[0.3, 0.2, 0.1]), -groups)
    assert better.startswith("improving: p_churn 0.30 -> 0.10") and "silence (-1.50" in better
    assert verdict(table.assign(p_churn=[0.1, 0.1, 0.11]), groups).startswith("stable:")


def test_tier_bounds_are_read_from_the_score_run_of_that_date(env):
    """By share, the bounds come from the history's run of this model at the as-of date (the
    ones the score file was cut by), and they are the ones computed again from every account."""
    code, output, out = base.score(env, "--all-active", "--as-of", "2023-03-21")
    assert code == 0, output
    meta = json.loads(out.with_name("scores.meta.json").read_text())
    model = load_model(env, "churn-risk", str(env / "data" / "model"), env / "data" / "model")
    validated = load(env / "clean")
    lineage = fingerprint(validated)["lineage"]
    as_of, settings = pd.Timestamp("2023-03-21"), Settings.from_params({})
    assert _kept_bounds(model, as_of, settings, lineage) == meta["tier_bounds"]
    assert _kept_bounds(model, as_of, settings, "other data") is None
    other_tiers = Settings.from_params({"tiers": {"high": 0.5, "medium": 0.6, "low": 1.0}})
    assert _kept_bounds(model, as_of, other_tiers, lineage) is None
    kept, _ = history(validated, model, "a", as_of, settings, None, count=2, lineage=lineage)
    again, _ = history(validated, model, "a", as_of, settings, None, count=2)
    assert kept.attrs["tier_bounds"] == again.attrs["tier_bounds"] == meta["tier_bounds"]
    pd.testing.assert_frame_equal(kept, again)
