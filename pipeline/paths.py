"""Where things live: one root for every default path."""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_ROOT = Path(__file__).resolve().parents[1]


def repo_root() -> Path:
    """The project root: DVC_ROOT when DVC runs a stage, else the nearest folder with dvc.yaml.

    DVC sets DVC_ROOT for stage commands, and points it at the parent repository for queued
    experiments that run in temporary folders, so every run lands in the same MLflow store.
    """
    env = os.environ.get("DVC_ROOT")
    if env:
        return Path(env).resolve()
    here = Path.cwd().resolve()
    for folder in (here, *here.parents):
        if (folder / "dvc.yaml").is_file() or (folder / ".dvc").is_dir():
            return folder
    return PACKAGE_ROOT


def default_params_file() -> Path:
    """params.yaml at the project root."""
    return repo_root() / "params.yaml"
