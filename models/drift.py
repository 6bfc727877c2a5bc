"""Reference distributions of the training frame, and drift of a scored population against them.

The reference is written beside the model by the train stage (`data/model/reference.json`, and
`reference.json` in the MLflow run): for each feature, the median over the training fold (the
"typical" value that reasons quote) and decile bins with the share of rows in each, missing
values counted in a bin of their own (missing means unknown, which is a signal of its own).
Scoring puts the features of every active account at the as-of date into the same bins and
computes the population stability index per feature:

    PSI = sum over bins of (actual - expected) * ln(actual / expected)

Below 0.1 is stable, 0.1 to 0.25 a moderate shift, above 0.25 (the default threshold,
`score.drift.psi_threshold`) a shift worth retraining for.

Some features grow with the length of the data's history whatever the customers do (days
since the first order, complaints before the recent window, tenure, ...: `grows_with_history`
in the catalog). Scoring as of the end of the data, after training on earlier cutoffs, they
always shift. Their PSI is computed like any other, but past the threshold they are listed
apart (`grows_with_history` in the report, with their PSI) rather than in `drifted`: they are
expected to shift, never make the warning on their own, and are no reason to retrain.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from features.catalog import CATALOG

log = logging.getLogger(__name__)

REFERENCE_NAME = "reference.json"
QUANTILES = np.linspace(0.1, 0.9, 9)
EPS = 1e-4  # floor for empty bins, so that ln(actual / expected) stays finite
# Features expected to shift as the data's history lengthens (see the module docstring).
GROWS_WITH_HISTORY = frozenset(f.name for f in CATALOG if f.grows_with_history)


def _edges(values: np.ndarray) -> list[float]:
    """Decile edges of the non-missing values, duplicates removed (counts have few values)."""
    present = values[~np.isnan(values)]
    if not len(present):
        return []
    return [float(e) for e in np.unique(np.quantile(present, QUANTILES))]


def _shares(values: np.ndarray, edges: Sequence[float]) -> np.ndarray:
    """Share of rows missing, then in each bin (-inf, e0], (e0, e1], ..., (e_last, inf)."""
    missing = np.isnan(values)
    bins = np.searchsorted(np.asarray(edges, dtype="float64"), values[~missing], side="left")
    counts = np.bincount(bins, minlength=len(edges) + 1).astype("float64")
    counts = np.concatenate([[missing.sum()], counts])
    return counts / max(len(values), 1)


def reference_profile(frame: pd.DataFrame, features: Sequence[str]) -> dict[str, Any]:
    """The reference of `features` over `frame` (the training fold): medians, bins, shares."""
    out: dict[str, Any] = {"rows": len(frame), "features": {}}
    if "cutoff" in frame.columns and len(frame):
        out["cutoffs"] = [
            str(pd.Timestamp(frame["cutoff"].min()).date()),
            str(pd.Timestamp(frame["cutoff"].max()).date()),
        ]
    for name in features:
        values = frame[name].to_numpy(dtype="float64", na_value=np.nan)
        present = values[~np.isnan(values)]
        edges = _edges(values)
        out["features"][name] = {
            "typical": float(np.median(present)) if len(present) else None,
            "edges": edges,
            "expected": [round(float(s), 8) for s in _shares(values, edges)],
        }
    return out


@dataclass(frozen=True)
class Reference:
    """A reference profile and where it came from."""

    profile: dict[str, Any]
    source: str

    @property
    def typical(self) -> dict[str, float]:
        """Median over the training fold of each feature (missing when always missing)."""
        return {
            name: spec["typical"]
            for name, spec in self.profile["features"].items()
            if spec["typical"] is not None
        }

    @classmethod
    def read(cls, path: Path) -> Reference:
        return cls(json.loads(Path(path).read_text()), str(path))


def psi(frame: pd.DataFrame, reference: Mapping[str, Any]) -> dict[str, float]:
    """Population stability index of each reference feature present in `frame`."""
    out = {}
    for name, spec in reference["features"].items():
        if name not in frame.columns:
            continue
        actual = _shares(frame[name].to_numpy(dtype="float64", na_value=np.nan), spec["edges"])
        expected = np.asarray(spec["expected"], dtype="float64")
        a, e = np.clip(actual, EPS, None), np.clip(expected, EPS, None)
        out[name] = round(float(np.sum((a - e) * np.log(a / e))), 4)
    return out


def drift_report(
    frame: pd.DataFrame,
    reference: Reference | None,
    threshold: float = 0.25,
    min_rows: int = 200,
    grows_with_history: Collection[str] = GROWS_WITH_HISTORY,
) -> dict[str, Any]:
    """PSI per feature of `frame` against the reference, the drifted ones listed worst first.

    `drifted` names the features at or past the threshold, except those in
    `grows_with_history` (by default the catalog's): these go to `grows_with_history`, a list
    of {"feature", "psi"}, worst first, since they shift whenever the data's history is longer
    than at training. `psi` has every feature. `checked` is False (with the reason in `note`)
    when there is no reference or fewer than `min_rows` rows: PSI over a handful of accounts
    measures noise, not drift.
    """
    report: dict[str, Any] = {
        "threshold": threshold,
        "rows": len(frame),
        "drifted": [],
        "grows_with_history": [],
    }
    if reference is None:
        return report | {"checked": False, "note": "no reference distribution for this model"}
    report["reference"] = reference.source
    report["reference_cutoffs"] = reference.profile.get("cutoffs")
    if len(frame) < min_rows:
        return report | {
            "checked": False,
            "note": f"{len(frame)} active accounts, fewer than {min_rows}: too few to measure",
        }
    values = psi(frame, reference.profile)
    shifted = sorted((k for k, v in values.items() if v >= threshold), key=lambda k: -values[k])
    return report | {
        "checked": True,
        "psi": values,
        "drifted": [k for k in shifted if k not in grows_with_history],
        "grows_with_history": [
            {"feature": k, "psi": values[k]} for k in shifted if k in grows_with_history
        ],
    }


def drift_warning(report: Mapping[str, Any], most: int = 8) -> str | None:
    """One line naming the drifted features (worst first), or None when nothing drifted.

    Features that grow with the data's history never make a warning on their own; when others
    drifted, one sentence names those that shifted too, as expected.
    """
    drifted = report.get("drifted") or []
    if not drifted:
        return None
    listed = ", ".join(f"{n} (PSI {report['psi'][n]:.2f})" for n in drifted[:most])
    more = f" and {len(drifted) - most} more" if len(drifted) > most else ""
    expected = [e["feature"] for e in report.get("grows_with_history") or []]
    also = (
        f". {len(expected)} feature(s) that grow with the length of the data's history shifted "
        f"too, as expected and no reason to retrain: {', '.join(expected)}"
        if expected
        else ""
    )
    return (
        f"{len(drifted)} feature(s) drifted from the training data (PSI >= "
        f"{report['threshold']}): {listed}{more}; scores for these accounts may be less "
        f"reliable: check the data, or retrain on recent data (dvc repro){also}"
    )


def find_reference(folder: Path | None, run_id: str | None) -> Reference | None:
    """The reference of a model: beside its folder (data/model), else in its MLflow run."""
    if folder is not None:
        folder = Path(folder)
        for candidate in (folder / REFERENCE_NAME, folder.parent / REFERENCE_NAME):
            if candidate.is_file():
                return Reference.read(candidate)
    if run_id:
        import mlflow.artifacts

        quiet = "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR" not in os.environ
        if quiet:  # no download bar on the terminal for a small JSON file
            os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "false"
        try:
            local = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=REFERENCE_NAME)
            return Reference(
                json.loads(Path(local).read_text()), f"runs:/{run_id}/{REFERENCE_NAME}"
            )
        except Exception as exc:  # an older run without one, or an unreachable store
            log.debug("no reference in run %s: %s", run_id, exc)
        finally:
            if quiet:
                os.environ.pop("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", None)
    return None
