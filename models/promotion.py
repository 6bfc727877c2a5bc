"""Champion and challenger: promote the new model only when it beats the champion by a margin."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from models.lineage import lineage_alias
from models.tracking import CHAMPION

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Decision:
    """The outcome of comparing a challenger with the champion on the same test rows."""

    promote: bool
    reason: str
    metric: str
    margin: float
    challenger_version: str
    challenger_score: float
    champion_version: str | None = None
    champion_score: float | None = None
    lineage: str | None = None  # the data both were trained on (None: the registry's champion)

    @property
    def first(self) -> bool:
        """The first model of its lineage (or registry): champion since training, uncompared."""
        return self.champion_version == self.challenger_version

    def as_dict(self) -> dict:
        return asdict(self)

    def message(self) -> str:
        """One line for the terminal and the log."""
        data = f", data '{self.lineage}'" if self.lineage else ""
        if self.first:
            return (
                f"model v{self.challenger_version} {self.metric} {self.challenger_score:.4f} "
                f"(margin {self.margin:g}{data}): champion; {self.reason}"
            )
        champ = (
            f"champion v{self.champion_version} {self.metric} {self.champion_score:.4f}"
            if self.champion_score is not None
            else f"champion v{self.champion_version or '-'}"
        )
        verb = "promoted to champion" if self.promote else "not promoted"
        return (
            f"challenger v{self.challenger_version} {self.metric} {self.challenger_score:.4f} vs "
            f"{champ} (margin {self.margin:g}{data}): {verb}; {self.reason}"
        )


def decide(
    challenger: float, champion: float | None, margin: float, higher_is_better: bool = True
) -> tuple[bool, str]:
    """Promote when the challenger beats the champion by at least `margin` (None: no champion)."""
    if champion is None or not np.isfinite(champion):
        return True, "there is no comparable champion"
    if not np.isfinite(challenger):
        return False, "the challenger's score is not a number"
    gain = challenger - champion if higher_is_better else champion - challenger
    if gain >= margin:
        return True, f"it beats the champion by {gain:.4f} >= {margin:g}"
    return False, f"it beats the champion by {gain:.4f} < {margin:g}"


def champion_alias(lineage: str | None) -> str:
    """The champion alias of a lineage (models/lineage.py); the plain one without a lineage."""
    return CHAMPION if lineage is None else lineage_alias(CHAMPION, lineage)


def champion_version(client: MlflowClient, name: str, lineage: str | None = None) -> str | None:
    """The version that holds the champion alias (of `lineage`, when given), or None."""
    try:
        return str(client.get_model_version_by_alias(name, champion_alias(lineage)).version)
    except MlflowException:
        return None


def compare_and_promote(
    client: MlflowClient,
    name: str,
    version: str,
    metric: str,
    margin: float,
    challenger_score: float,
    score_champion: Callable[[str], float],
    higher_is_better: bool = True,
    lineage: str | None = None,
) -> Decision:
    """Compare the challenger `version` with the registry's champion and move the alias.

    With a `lineage` (the key of the data the challenger was trained on) the champion is that
    lineage's (`champion-<slug>`): models of other data are neither compared nor replaced; a
    promotion also moves the plain `champion` alias (the newest champion of any lineage).
    `score_champion(uri)` loads the champion from a models:/ URI and returns its score on the
    same test rows; it raises KeyError when the champion needs features these rows lack.
    """
    current = champion_version(client, name, lineage)
    base = {
        "metric": metric,
        "margin": float(margin),
        "challenger_version": str(version),
        "challenger_score": float(challenger_score),
        "champion_version": current,
        "lineage": lineage,
    }
    if current == str(version):
        # The train stage made the first model of the registry (of the lineage) its champion.
        first = "trained on this data" if lineage is not None else "of the registry"
        return Decision(True, f"the first model {first}: nothing to compare it with", **base)
    champion_score = None
    if current is not None:
        try:
            champion_score = float(score_champion(f"models:/{name}/{current}"))
        except KeyError as exc:
            return Decision(
                False,
                f"the champion needs features these test rows lack ({exc.args[0]}): "
                "not comparable, the champion stays",
                **base,
            )
    promote, reason = decide(challenger_score, champion_score, margin, higher_is_better)
    if promote:
        client.set_registered_model_alias(name, champion_alias(lineage), str(version))
        if lineage is not None:
            client.set_registered_model_alias(name, CHAMPION, str(version))
    decision = Decision(promote, reason, champion_score=champion_score, **base)
    log.debug("%s", decision.message())  # the caller prints it, once
    return decision


def missing_features(features: list[str], frame: pd.DataFrame) -> list[str]:
    """The model features `frame` does not have."""
    return [f for f in features if f not in frame.columns]
