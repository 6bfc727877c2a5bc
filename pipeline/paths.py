"""Where things live: one root for every default path."""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_ROOT = Path(__file__).resolve().parents[1]


def project_root() -> Path:
    """The project the command runs in: the nearest folder with dvc.yaml (or .dvc) from here."""
    here = Path.cwd().resolve()
    for folder in (here, *here.parents):
        if (folder / "dvc.yaml").is_file() or (folder / ".dvc").is_dir():
            return folder
    return PACKAGE_ROOT


def repo_root() -> Path:
    """The root of the shared MLflow store: DVC_ROOT when DVC runs a stage, else the project.

    DVC sets DVC_ROOT for stage commands, and points it at the parent repository for queued
    experiments that run in temporary folders, so every run lands in the same MLflow store.
    """
    env = os.environ.get("DVC_ROOT")
    return Path(env).resolve() if env else project_root()


def default_params_file() -> Path:
    """params.yaml of the project the command runs in: in a queued experiment, the temporary
    folder's (with the experiment's -S changes), never the parent repository's."""
    return project_root() / "params.yaml"
