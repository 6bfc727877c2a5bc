"""The score file an account manager reads: schema, statuses, tiers, change since the previous
score, reasons and actions (the playbook keyed by the leading reason group), determinism."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from pipeline.scoring import COLUMNS, REASON_COLUMNS, score_features
from pipeline.tiers import DEFAULT_PLAYBOOK, Settings
from tests import test_badinput_score as base
from tests.test_reasons import FEATURES, PROMISES, SILENCE, fit, world

PARAMS, score = base.PARAMS, base.score
project = base.project  # the tiny world's project and its DVC-tracked model (env: conftest)


def params_file(folder: Path, **score_params) -> Path:
    """params.yaml with the `score` section updated."""
    params = yaml.safe_load(PARAMS.read_text())
    params["score"] = {**params["score"], **score_params}
    path = folder / "params-test.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


ALL_HIGH = {"tiers_by": "probability", "tiers": {"high": 0.0, "medium": 0.0, "low": 0.0}}


def test_schema_and_statuses_of_a_customer_list(env, tmp_path):
    listed = tmp_path / "list.csv"
    listed.write_text("account_id,owner\na,ann\nzz,bob\nb,cy\na,dee\nc,eve\n")
    params = params_file(tmp_path, **ALL_HIGH)
    code, output, out = score(env, "--accounts", str(listed), "--params", str(params))
    assert code == 0, output
    scores = pd.read_csv(out)
    assert list(scores.columns) == [*COLUMNS, "owner"]
    assert COLUMNS[:6] == ["account_id", "as_of", "p_churn", "risk_tier", "model_version", "status"]
    assert scores["status"].tolist() == [
        "scored",
        "unknown_account",
        "churned",
        "duplicate",
        "scored",
    ]
    assert scores["owner"].tolist() == ["ann", "bob", "cy", "dee", "eve"]
    scored = scores["status"] == "scored"
    assert scores.loc[scored, "p_churn"].between(0, 1).all()
    for column in ["p_churn", "risk_tier", "p_churn_change", *REASON_COLUMNS, "action"]:
        assert scores.loc[~scored, column].isna().all(), column
    assert scores.loc[scored, "risk_tier"].eq("high").all()
    meta = json.loads(out.with_name("scores.meta.json").read_text())
    assert meta["status_counts"] == {
        "scored": 2, "unknown_account": 1, "churned": 1, "duplicate": 1,
    }  # fmt: skip
    assert meta["rows_with_reasons"] == 2 and meta["reasons_for_tiers"] == ["high", "medium"]
    assert set(meta["drift"]) >= {"checked", "drifted", "threshold", "rows"}


def test_action_follows_the_leading_reason_group(env, tmp_path):
    playbook = {g: f"do the {g} thing" for g in DEFAULT_PLAYBOOK}
    params = params_file(tmp_path, playbook=playbook, **ALL_HIGH)
    code, output, out = score(env, "--all-active", "--params", str(params))
    assert code == 0, output
    scores = pd.read_csv(out)
    explained = scores["reason_groups"].notna()
    assert explained.any()
    for row in scores[explained].itertuples():
        lead = row.reason_groups.split("; ")[0]
        assert row.action == playbook[lead]
        assert isinstance(row.reason_1, str) and "typical" in row.reason_1


def test_an_action_keyed_by_the_reasons_feature_wins_over_its_group():
    """The playbook names the lever the reason points at: by feature first, else by group."""
    from pipeline.tiers import actions

    reasons_ = pd.DataFrame(
        {
            "lead_group": ["trust", "trust", "silence", None],
            "lead_feature": ["rfqs_recent", "disputes_long", "days_since_last_contact", None],
        }
    )
    playbook = {**DEFAULT_PLAYBOOK, "rfqs_recent": "make an offer before it orders elsewhere"}
    got = actions(reasons_, playbook)
    assert got[:3].tolist() == [
        "make an offer before it orders elsewhere",
        DEFAULT_PLAYBOOK["trust"],
        DEFAULT_PLAYBOOK["silence"],
    ]
    assert pd.isna(got.iloc[3])


def test_actions_come_from_the_params_playbook(env, tmp_path):
    """Every action is one of the project's playbook (keyed by group or feature)."""
    params = yaml.safe_load(PARAMS.read_text())["score"]
    code, output, out = score(
        env, "--all-active", "--params", str(params_file(tmp_path, **ALL_HIGH))
    )
    assert code == 0, output
    scores = pd.read_csv(out)
    acted = scores["action"].dropna()
    assert len(acted) and set(acted) <= set(params["playbook"].values())


def test_playbook_maps_each_group_to_its_action():
    """A model driven by silence asks for a call; one driven by promises, a delivery review."""
    x, y = world(seed=7, nan_share=0.0)
    settings = Settings.from_params(ALL_HIGH)
    for driver, group in ((SILENCE, "silence"), (PROMISES, "promises")):
        xx = x.copy()
        for other in FEATURES:
            if other != driver:
                xx[other] = np.random.default_rng(1).permutation(xx[other].to_numpy())
        model = fit(xx, y)
        frame = world(n=200, seed=8, nan_share=0.0)[0].assign(account_id=lambda f: f.index)
        extreme = frame.index < 80  # beyond the typical value (the median of all 200 rows)
        worst = frame[driver].max() if driver == SILENCE else frame[driver].min()
        frame.loc[extreme, driver] = worst
        out, facts = score_features(model, frame, settings, None, progress=False)
        assert (out.loc[extreme, "action"] == DEFAULT_PLAYBOOK[group]).mean() > 0.9, driver
        assert facts["rows_with_reasons"] == len(frame)
    assert DEFAULT_PLAYBOOK["silence"].startswith("call the account now")
    assert "deliveries" in DEFAULT_PLAYBOOK["promises"]
    assert "ordering terminal, EDI or a service contract" in DEFAULT_PLAYBOOK["dependency"]
    assert "executive meeting" in DEFAULT_PLAYBOOK["trust"]
    assert "business review" in DEFAULT_PLAYBOOK["engagement"]


def test_reasons_only_for_the_tiers_acted_on(env, tmp_path):
    params = params_file(
        tmp_path, tiers_by="probability", tiers={"high": 0.999, "medium": 0.998, "low": 0.0}
    )
    code, output, out = score(env, "--all-active", "--params", str(params))
    assert code == 0, output
    scores = pd.read_csv(out)
    assert scores["risk_tier"].eq("low").all()
    assert scores[[*REASON_COLUMNS, "reason_groups", "action"]].isna().all().all()
    assert json.loads(out.with_name("scores.meta.json").read_text())["rows_with_reasons"] == 0


def test_tiers_by_share_of_active_accounts(env, tmp_path):
    params = params_file(
        tmp_path, tiers_by="share", tiers={"high": 0.5, "low": 1.0}, reasons={"tiers": ["high"]}
    )
    code, output, out = score(env, "--all-active", "--params", str(params))
    assert code == 0, output
    scores = pd.read_csv(out)
    assert len(scores) == 2 and scores["risk_tier"].tolist() == ["high", "low"]
    assert scores["p_churn"].is_monotonic_decreasing


def test_change_against_a_previous_score_file(env, tmp_path):
    previous = tmp_path / "previous.csv"
    previous.write_text("account_id,p_churn,status\na,0.1,scored\nc,,unknown_account\n")
    code, output, out = score(env, "--all-active", "--previous", str(previous))
    assert code == 0, output
    scores = pd.read_csv(out).set_index("account_id")
    assert scores.loc["a", "p_churn_change"] == pytest.approx(scores.loc["a", "p_churn"] - 0.1)
    assert np.isnan(scores.loc["c", "p_churn_change"])
    meta = json.loads(out.with_name("scores.meta.json").read_text())
    assert meta["previous"] == {"source": str(previous), "rows": 1}  # its scored rows


def test_change_against_the_same_model_four_weeks_earlier(env, tmp_path):
    code, output, before = score(env, "--all-active", "--as-of", "2023-02-21")
    assert code == 0, output
    code, output, now = score(env, "--all-active", "--as-of", "2023-03-21")
    assert code == 0, output
    now_, before_ = (pd.read_csv(p).set_index("account_id") for p in (now, before))
    assert set(before_.index) == {"a", "b"}  # c became a customer on 2023-03-15
    expected = now_.loc["a", "p_churn"] - before_.loc["a", "p_churn"]
    assert now_.loc["a", "p_churn_change"] == pytest.approx(expected, abs=1e-6)
    assert np.isnan(now_.loc["c", "p_churn_change"])  # no earlier score
    meta = json.loads(now.with_name("scores.meta.json").read_text())
    # this model scored every active account on 2023-02-21: that run is read, not recomputed
    assert meta["previous"]["source"].startswith("history:2023-02-21_")
    assert meta["previous"]["as_of"] == "2023-02-21"
    # without the history the earlier score is computed, and it is the same
    params = params_file(tmp_path, history=None)
    code, output, again = score(
        env, "--all-active", "--as-of", "2023-03-21", "--params", str(params)
    )
    assert code == 0, output
    meta = json.loads(again.with_name("scores.meta.json").read_text())
    assert meta["previous"] == {"source": "model", "as_of": "2023-02-21"}
    pd.testing.assert_frame_equal(pd.read_csv(again).set_index("account_id"), now_)


def test_a_customer_list_run_is_not_read_as_the_earlier_scores(env, tmp_path):
    listed = tmp_path / "list.csv"
    listed.write_text("account_id\na\n")
    code, output, _ = score(env, "--accounts", str(listed), "--as-of", "2023-02-20")
    assert code == 0, output
    code, output, now = score(env, "--all-active", "--as-of", "2023-03-20")
    assert code == 0, output
    meta = json.loads(now.with_name("scores.meta.json").read_text())
    assert meta["previous"] == {"source": "model", "as_of": "2023-02-20"}  # b was not listed
    assert pd.read_csv(now).set_index("account_id")["p_churn_change"].notna().sum() == 2


def test_a_list_scores_the_same_bytes_twice_in_parquet_and_csv(env, tmp_path):
    listed = tmp_path / "list.csv"
    listed.write_text("account_id\nc\na\nzz\n")
    params = params_file(tmp_path, **ALL_HIGH)
    for name in ("s.csv", "s.parquet"):
        runs = [score(env, "--accounts", str(listed), "--params", str(params), out=name)]
        runs.append(score(env, "--accounts", str(listed), "--params", str(params), out=name))
        assert all(code == 0 for code, _, _ in runs)
        assert runs[0][2].read_bytes() == runs[1][2].read_bytes()
    frame = pd.read_parquet(runs[0][2])
    assert frame["account_id"].tolist() == ["c", "a", "zz"]
    assert frame["reason_1"].iloc[:2].notna().any()
    assert (frame["reason_1"].isna() == frame["action"].isna()).all()


def test_previous_file_without_scores_is_a_clear_error(env, tmp_path):
    previous = tmp_path / "previous.csv"
    previous.write_text("account_id,score\na,0.1\n")
    code, output, out = score(env, "--all-active", "--previous", str(previous))
    assert code == 2 and "Traceback" not in output
    assert "a previous score file needs account_id and p_churn columns; it lacks p_churn" in output
    assert not out.exists()


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"tiers_by": "rank"}, "score.tiers_by must be probability or share; got 'rank'"),
        ({"reasons": {"tiers": ["urgent"]}}, "score.reasons.tiers names tiers that score.tiers"),
        ({"tiers": {"high": 2}}, "score.tiers needs a value between 0 and 1"),
        ({"playbook": {"silense": "x"}}, "score.playbook keys are feature groups or feature"),
    ],
)
def test_bad_score_params_are_clear_errors(env, tmp_path, section, message):
    code, output, out = score(
        env, "--all-active", "--params", str(params_file(tmp_path, **section))
    )
    assert code == 2 and message in output and "Traceback" not in output
    assert not out.exists()
