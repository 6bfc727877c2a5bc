"""The report's accounts at risk are the score file's: same date, accounts, probabilities,
tiers, reasons (with the same typical values) and actions."""

from __future__ import annotations

import pandas as pd
import yaml

from pipeline.report import accounts_section, top_accounts
from tests import test_badinput_score as base

project, score = base.project, base.score  # env: conftest
SAME = ["account_id", "as_of", "p_churn", "risk_tier", "reason_1", "reason_2", "reason_3"]


def test_the_reports_accounts_equal_the_score_files(env):
    model = env / "data" / "model"
    code, output, out = base.score(env, "--all-active", "--model", str(model))
    assert code == 0, output
    scores = pd.read_csv(out, dtype={"account_id": str})
    params = yaml.safe_load((env / "params.yaml").read_text())
    top, as_of = top_accounts(model, env / "clean", params, n=5)
    assert as_of == scores["as_of"].iloc[0]  # the scoring date, named in the report
    assert (top["status"] == "scored").all()  # active accounts only
    expected = scores.head(len(top))[SAME + ["action"]].reset_index(drop=True)
    got = top[SAME + ["action"]].reset_index(drop=True).astype(expected.dtypes.to_dict())
    pd.testing.assert_frame_equal(got.fillna(""), expected.fillna(""))
    html = "".join(accounts_section((top, as_of)))
    assert f"as of {as_of}" in html and "active accounts only" in html
