"""params.yaml against its schema (pipeline/config.py, issue 17 item 4; DRAFT: not wired in)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from pipeline.config import Params, check
from pipeline.errors import UserError

SHIPPED = yaml.safe_load((Path(__file__).resolve().parents[1] / "params.yaml").read_text())


def test_the_shipped_params_pass():
    assert isinstance(check(SHIPPED), Params)


def test_the_shipped_values_are_the_schema_defaults():
    shipped = dict(SHIPPED, score={k: v for k, v in SHIPPED["score"].items() if k != "playbook"})
    defaults = Params().model_dump(by_alias=True)
    defaults["score"].pop("playbook")
    assert shipped == defaults


@pytest.mark.parametrize(
    ("raw", "said"),
    [
        (
            {"train": {"num_leave": 15}},
            "train.num_leave: unknown key; did you mean train.num_leaves?",
        ),
        ({"trian": {}}, "trian: unknown key; did you mean train?"),
        ({"score": {"drift": {"psi": 1}}}, "did you mean score.drift.psi_threshold?"),
        ({"train": {"num_leaves": "seven"}}, "train.num_leaves: "),
        ({"label": {"mode": "churned"}}, "label.mode: "),
        ({"features": {"threads": 0}}, "features.threads: "),
    ],
)
def test_a_wrong_key_or_value_is_named(raw, said):
    with pytest.raises(UserError) as caught:
        check(raw)
    assert said in str(caught.value)
    assert caught.value.exit_code == 2
