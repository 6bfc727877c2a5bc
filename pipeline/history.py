"""The history of score runs: every `churn score` run appended to a folder a later run can read.

One folder per run, `<as_of>_<UTC time the run ended>`, holding the scores as Parquet and the
run's metadata (the model version and its label rules, the as-of date, the data range, tier
bounds, drift): what `churn monitor` reads. A folder rather than the MLflow store: score runs
are batch jobs that must not need a tracking server, and the history is the exact scores handed
to account managers, readable by any tool. The default folder is `outputs/history` under the
project root (`score.history` in params.yaml; null keeps no history).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from pipeline.io import atomic_dir
from pipeline.paths import repo_root

SCORES = "scores.parquet"
META = "scores.meta.json"
DEFAULT = "outputs/history"
ALL_ACTIVE = "all active"  # meta["accounts"] of a run that scored every active account


def folder(setting: str | None = DEFAULT) -> Path | None:
    """The history folder of `score.history`: relative paths from the project root."""
    if not setting:
        return None
    path = Path(setting)
    return path if path.is_absolute() else repo_root() / path


def record(scores: pd.DataFrame, meta: dict[str, Any], history: Path) -> Path:
    """Append a score run to `history`: a new folder `<as_of>_<UTC time>` (a suffix when two
    runs share a second) with the scores as Parquet and the metadata. Never overwrites."""
    history = Path(history)
    history.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
    name, k = f"{meta['as_of']}_{stamp}", 1
    while (history / name).exists():
        k += 1
        name = f"{meta['as_of']}_{stamp}-{k}"
    with atomic_dir(history / name) as tmp:
        scores.to_parquet(tmp / SCORES, index=False)
        (tmp / META).write_text(json.dumps(meta, indent=2, sort_keys=True, default=str) + "\n")
    return history / name


@dataclass(frozen=True)
class Run:
    """One past score run from the history."""

    name: str
    meta: dict[str, Any]
    scores: pd.DataFrame

    @property
    def as_of(self) -> pd.Timestamp:
        return pd.Timestamp(self.meta["as_of"])


def runs(history: Path) -> list[Run]:
    """Every complete run in `history`, oldest as-of date first (then by when it ran)."""
    history = Path(history)
    found = []
    for path in sorted(history.iterdir()) if history.is_dir() else []:
        if (
            path.name.startswith(".")
            or not (path / META).is_file()
            or not (path / SCORES).is_file()
        ):
            continue  # a run still being written (a hidden temporary), or not a run
        meta = json.loads((path / META).read_text())
        found.append(Run(path.name, meta, pd.read_parquet(path / SCORES)))
    return sorted(found, key=lambda r: (r.meta["as_of"], r.name))


def scores_of(
    history: Path, as_of: pd.Timestamp, model_uuid: str | None, lineage: str | None
) -> Run | None:
    """The latest run in `history` as of `as_of` that scored every active account of the data
    lineage `lineage` with the saved model `model_uuid` (MLmodel's id); None when there is none
    (or either key is unknown). Only the metadata of runs of that date are read, then one run's
    scores."""
    history = Path(history)
    if not model_uuid or not lineage or not history.is_dir():
        return None
    day = pd.Timestamp(as_of).date().isoformat()
    found = None
    for path in sorted(history.glob(f"{day}_*")):
        if not (path / META).is_file() or not (path / SCORES).is_file():
            continue
        meta = json.loads((path / META).read_text())
        if (
            meta.get("as_of") == day
            and meta.get("accounts") == ALL_ACTIVE
            and meta.get("model_uuid") == model_uuid
            and (meta.get("data") or {}).get("lineage") == lineage
        ):
            found = (path, meta)
    if found is None:
        return None
    path, meta = found
    return Run(path.name, meta, pd.read_parquet(path / SCORES))
