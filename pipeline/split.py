"""Split by cutoff date: train, then validation, then out-of-time test, with purge gaps."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from pipeline.errors import UserError
from pipeline.labels import LabelSpec


@dataclass(frozen=True)
class Folds:
    """Cutoffs of each fold; no label window of an earlier fold reaches a later fold's cutoffs."""

    train: list[pd.Timestamp]
    valid: list[pd.Timestamp]
    test: list[pd.Timestamp]

    def fold_of(self, cutoffs: pd.Series) -> pd.Series:
        """'train', 'valid', 'test' or None (purged) for each cutoff."""
        names = {c: "train" for c in self.train} | {c: "valid" for c in self.valid}
        names |= {c: "test" for c in self.test}
        return cutoffs.map(names)

    def as_dict(self) -> dict[str, list[str]]:
        return {k: [str(c.date()) for c in getattr(self, k)] for k in ("train", "valid", "test")}


def split_cutoffs(
    cutoffs: Sequence[pd.Timestamp], test_cutoffs: int, valid_cutoffs: int, window_days: int
) -> Folds:
    """The last `test_cutoffs` are test; the last `valid_cutoffs` whose label windows end by the
    first test cutoff are validation; training cutoffs' windows end by the first validation one."""
    ordered = sorted(pd.Timestamp(c) for c in set(cutoffs))
    gap = pd.Timedelta(days=window_days)
    if test_cutoffs < 1 or valid_cutoffs < 1:
        raise UserError("split.test_cutoffs and split.valid_cutoffs must be at least 1")
    test = ordered[-test_cutoffs:]
    before_test = [c for c in ordered if c + gap <= test[0]]
    valid = before_test[-valid_cutoffs:]
    train = [c for c in ordered if valid and c + gap <= valid[0]]
    if len(test) < test_cutoffs or len(valid) < valid_cutoffs or not train:
        raise UserError(
            f"{len(ordered)} cutoffs are too few for {test_cutoffs} test and {valid_cutoffs} "
            f"validation cutoffs with {window_days}-day purge gaps and a training fold; use a "
            "longer history, a smaller schedule.every_days or fewer split cutoffs"
        )
    return Folds(train, valid, test)


def folds_for(frame: pd.DataFrame, params: dict[str, Any]) -> Folds:
    """The train/validation/test cutoffs of `frame` under the split and label params."""
    label = LabelSpec.from_params(params["label"])
    split = params["split"]
    return split_cutoffs(
        frame["cutoff"].unique(), split["test_cutoffs"], split["valid_cutoffs"], label.window_days
    )
