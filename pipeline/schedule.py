"""The snapshot schedule: the training cutoffs, from params.yaml or derived from the data's span."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import pandas as pd

from pipeline.config import defaults, with_defaults
from pipeline.errors import UserError
from pipeline.labels import LabelSpec
from pipeline.store import Validated, data_end

log = logging.getLogger(__name__)


# Tried in this order when schedule.every_days / schedule.warmup_days are null: the first
# pair that leaves schedule.min_train_cutoffs training cutoffs wins (multiples of a week, so
# that cutoffs stay on Mondays).
EVERY_DAYS = (28, 14, 7)


WARMUP_DAYS = (182, 91)


def snapshot_schedule(
    data_start: pd.Timestamp,
    data_stop: pd.Timestamp,
    label: LabelSpec,
    every_days: int = EVERY_DAYS[0],
    warmup_days: int = WARMUP_DAYS[0],
    start: str | None = None,
    end: str | None = None,
) -> list[pd.Timestamp]:
    """Training cutoffs every `every_days`, each with a complete label window before `data_stop`.

    A derived first cutoff is rounded up to a Monday, so that schedules line up week by week.
    """
    first = (
        pd.Timestamp(start) if start else data_start.normalize() + pd.Timedelta(days=warmup_days)
    )
    if not start:
        first += pd.Timedelta(days=(7 - first.weekday()) % 7)
    last_possible = data_stop - pd.Timedelta(days=label.window_days)
    last = min(pd.Timestamp(end), last_possible) if end else last_possible
    cutoffs = list(pd.date_range(first, last, freq=f"{every_days}D"))
    if not cutoffs:
        raise UserError(
            f"no training cutoff fits between {first.date()} and {last.date()}: the data "
            f"({data_start.date()} to {data_stop.date()}) is too short for a {warmup_days}-day "
            f"warm-up plus a {label.window_days}-day label window; lower schedule.warmup_days "
            "or label.horizon_days, or provide more history"
        )
    return cutoffs


@dataclass(frozen=True)
class Schedule:
    """The training cutoffs and the settings that made them (`derived`: chosen from the data)."""

    cutoffs: list[pd.Timestamp]
    every_days: int
    warmup_days: int
    train_cutoffs: int
    derived: bool

    def describe(self) -> str:
        how = "derived from the data's span" if self.derived else "from params.yaml"
        return (
            f"{len(self.cutoffs)} cutoffs every {self.every_days} days after a "
            f"{self.warmup_days}-day warm-up, {self.train_cutoffs} of them in the training fold "
            f"({how})"
        )


def schedule_for(
    data_start: pd.Timestamp,
    data_stop: pd.Timestamp,
    label: LabelSpec,
    schedule: dict,
    split: dict,
) -> Schedule:
    """The snapshot schedule for data from `data_start` to `data_stop` (exclusive).

    `schedule` and `split` are params.yaml's sections. A null `every_days` or `warmup_days`
    is chosen from the data: the first of EVERY_DAYS x WARMUP_DAYS whose schedule leaves
    `split.test_cutoffs` test and `split.valid_cutoffs` validation cutoffs, purge gaps as
    long as the label window, and at least `schedule.min_train_cutoffs` (6) training cutoffs;
    else the one with the most training cutoffs. Raises UserError when no schedule leaves a
    training fold, saying how long the history must be.
    """
    from pipeline.split import split_cutoffs

    schedule, split = with_defaults("schedule", schedule), with_defaults("split", split)
    every, warmup = schedule["every_days"], schedule["warmup_days"]
    for name, value in (("every_days", every), ("warmup_days", warmup)):
        if value is not None and (not isinstance(value, int) or value < (name == "every_days")):
            raise UserError(
                f"schedule.{name} must be a whole number of days or null; got {value!r}"
            )
    min_train = int(schedule["min_train_cutoffs"] or defaults("schedule")["min_train_cutoffs"])
    n_test, n_valid = int(split["test_cutoffs"]), int(split["valid_cutoffs"])
    best, error = None, None
    for step in (every,) if every else EVERY_DAYS:
        for warm in (warmup,) if warmup is not None else WARMUP_DAYS:
            try:
                cutoffs = snapshot_schedule(
                    data_start,
                    data_stop,
                    label,
                    step,
                    warm,
                    schedule["start"],
                    schedule["end"],
                )
                folds = split_cutoffs(cutoffs, n_test, n_valid, label.window_days)
            except UserError as exc:
                error = error or exc
                continue
            derived = every is None or warmup is None
            found = Schedule(cutoffs, step, warm, len(folds.train), derived)
            if found.train_cutoffs >= min_train:
                return found
            if best is None or found.train_cutoffs > best.train_cutoffs:
                best = found
    if best is not None:
        log.warning(
            "the history leaves only %d training cutoffs (schedule.min_train_cutoffs is %d)",
            best.train_cutoffs,
            min_train,
        )
        return best
    step, warm = every or min(EVERY_DAYS), warmup if warmup is not None else min(WARMUP_DAYS)
    # the first cutoff waits up to 6 days for a Monday; purge gaps are whole steps
    gap = -(-label.window_days // step) * step
    need = warm + 6 + 2 * gap + step * (n_test + n_valid - 2) + label.window_days
    span = (data_stop - data_start.normalize()).days
    raise UserError(
        f"the data spans {span} days ({data_start.date()} to {data_stop.date()}): too short "
        f"for {n_test} test and {n_valid} validation cutoffs and a training fold, with purge "
        f"gaps of {label.window_days} days (the label window) and a {warm}-day warm-up. It "
        f"must span at least {need} days with cutoffs every {step} days; or lower "
        "label.horizon_days, schedule.warmup_days or split.test_cutoffs/valid_cutoffs"
    ) from error


def schedule_step(validated: Validated, params: dict[str, Any]) -> int:
    """schedule.every_days, or the step the training schedule derives from this data."""
    step = (params.get("schedule") or {}).get("every_days")
    if step:
        return int(step)
    try:
        label = LabelSpec.from_params(params.get("label", {}))
        return schedule_for(
            pd.Timestamp(validated.data_start),
            data_end(validated),
            label,
            params.get("schedule") or {},
            params.get("split") or {},
        ).every_days
    except UserError:  # too short to train on: the longest step
        return EVERY_DAYS[0]
