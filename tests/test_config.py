"""params.yaml against its schema (pipeline/config.py), read by every command that reads params."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from pipeline.config import Params, check
from pipeline.errors import UserError

SHIPPED = yaml.safe_load((Path(__file__).resolve().parents[1] / "params.yaml").read_text())


def test_the_shipped_params_pass():
    assert isinstance(check(SHIPPED), Params)


def _within(given: dict, defaults: dict, where: str = "") -> list[str]:
    """The dotted keys whose given value differs from the schema's default."""
    differ = []
    for key, value in given.items():
        name = f"{where}{key}"
        if isinstance(value, dict) and isinstance(defaults[key], dict) and key != "tiers":
            differ += _within(value, defaults[key], name + ".")
        elif value != defaults[key]:
            differ.append(name)
    return differ


def test_the_shipped_values_are_the_schema_defaults():
    """params.yaml shows the schema's defaults (and the playbook's feature-keyed actions, added
    to its group actions), but for the simulator's truth file: a user reads there what runs."""
    shipped = dict(SHIPPED, score={k: v for k, v in SHIPPED["score"].items() if k != "playbook"})
    # data.truth: the simulator's ground truth, shipped for the simulated world; own data has none
    assert _within(shipped, Params().model_dump(by_alias=True)) == ["data.truth"]


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
        ({"label": {"horizon_days": "ninety"}}, "label.horizon_days: "),
        ({"features": {"threads": "all"}}, "features.threads: "),
        ({"score": {"tiers": ["high"]}}, "score.tiers: "),
    ],
)
def test_a_wrong_key_or_value_is_named(raw, said):
    with pytest.raises(UserError) as caught:
        check(raw)
    assert said in str(caught.value)
    assert caught.value.exit_code == 2


def test_every_command_that_reads_params_refuses_an_unknown_key(tmp_path):
    """Through the CLI: `train.num_leave: 15` was silently ignored; now it is an exit 2 that
    names it, with the nearest valid key, before any work."""
    import os
    import subprocess
    import sys

    bad = dict(SHIPPED, train=dict(SHIPPED["train"], num_leave=15))
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(bad))
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "train", "--params", str(path)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(root)},  # this checkout's code
    )
    assert done.returncode == 2, done.stderr
    assert "train.num_leave: unknown key; did you mean train.num_leaves?" in done.stderr
    assert "Traceback" not in done.stderr


def test_the_schema_and_the_libraries_agree_on_their_defaults():
    """The feature library keeps its own defaults (usable without the application); the schema
    repeats them so that reading params imports no features/ (DVC would rerun the simulator on a
    feature's edit). The simulator's trust types are the features' too."""
    from features.catalog import GROUPS
    from features.language import FeatureConfig
    from pipeline.config import defaults
    from pipeline.simulator.constants import COLLABORATIVE, TRANSACTIONAL

    library, schema = FeatureConfig(), defaults("features")
    for name in library.__dataclass_fields__:
        assert (
            tuple(schema[name]) == getattr(library, name)
            if isinstance(getattr(library, name), tuple)
            else schema[name] == getattr(library, name)
        ), name
    assert tuple(schema["groups"]) == tuple(GROUPS)
    assert (
        library.transactional_types,
        library.collaborative_types,
    ) == (TRANSACTIONAL, COLLABORATIVE)


def test_a_stage_sees_only_what_it_declares():
    from pipeline.config import complete, only

    view = only(complete(SHIPPED), ("score", "data.lineage"), "score")
    assert view["score"]["tiers_by"] == "share" and view["data"]["lineage"] is None
    assert set(view) == {"score", "data"} and set(view["data"]) == {"lineage"}
    for read in (lambda: view["train"], lambda: view.get("validate"), lambda: view["data"]["raw"]):
        with pytest.raises(AssertionError, match="the score stage reads params"):
            read()
