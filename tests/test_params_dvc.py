"""params.yaml is kept in the form DVC writes back: `dvc exp run -S key=value` rewrites it with
DVC's own writer (dvc.utils.hydra.apply_overrides: ruamel round trip), and the diff must be the
one line that changed, not the whole file restyled."""

from __future__ import annotations

import difflib
import shutil
from pathlib import Path

import pytest
import yaml
from dvc.utils.hydra import apply_overrides

from features.catalog import CATALOG, GROUPS
from pipeline.paths import PACKAGE_ROOT

PARAMS = PACKAGE_ROOT / "params.yaml"


@pytest.mark.parametrize(
    ("override", "line"),
    [
        ("train.num_leaves=15", "  num_leaves: 15"),
        ("campaign.contact_cost=200", "  contact_cost: 200"),
        ("score.playbook.trust=x", "    trust: x"),
    ],
)
def test_a_set_param_changes_one_line(tmp_path: Path, override: str, line: str) -> None:
    copy = tmp_path / "params.yaml"
    shutil.copy(PARAMS, copy)
    apply_overrides(str(copy), [override])
    before, after = PARAMS.read_text().splitlines(), copy.read_text().splitlines()
    changed = [d for d in difflib.unified_diff(before, after, lineterm="", n=0)]
    removed = [d for d in changed[2:] if d.startswith("-")]
    added = [d for d in changed[2:] if d.startswith("+")]
    assert len(removed) == len(added) == 1, "\n".join(changed)
    assert added[0][1:].split("#")[0].rstrip() == line


def test_the_writer_leaves_params_as_they_are(tmp_path: Path) -> None:
    copy = tmp_path / "params.yaml"
    shutil.copy(PARAMS, copy)
    value = yaml.safe_load(PARAMS.read_text())["train"]["num_leaves"]
    apply_overrides(str(copy), [f"train.num_leaves={value}"])
    assert copy.read_text() == PARAMS.read_text()


def test_the_playbook_is_keyed_by_group_or_feature() -> None:
    playbook = yaml.safe_load(PARAMS.read_text())["score"]["playbook"]
    features = {f.name for f in CATALOG}
    assert set(GROUPS) <= set(playbook) <= set(GROUPS) | features
    assert len(set(playbook) & features) >= 10  # levers, not only groups
