"""The snapshot schedule follows the data's span (pipeline/schedule.py schedule_for)."""

from __future__ import annotations

import pandas as pd
import pytest

from pipeline.errors import UserError
from pipeline.labels import LabelSpec
from pipeline.schedule import schedule_for
from pipeline.split import split_cutoffs

T = pd.Timestamp
SPLIT = {"test_cutoffs": 3, "valid_cutoffs": 3}
AUTO = {"every_days": None, "warmup_days": None, "min_train_cutoffs": 6}


def test_three_years_keep_four_weekly_steps_after_half_a_year():
    """The simulated world: 156 weeks from a Monday."""
    s = schedule_for(T("2023-01-02"), T("2025-12-29"), LabelSpec(), AUTO, SPLIT)
    assert (s.every_days, s.warmup_days, s.derived) == (28, 182, True)
    assert s.cutoffs[0] == T("2023-07-03") and s.train_cutoffs >= 6
    assert s.cutoffs[-1] + pd.Timedelta(days=90) <= T("2025-12-29")


def test_cdnow_78_weeks_get_two_weekly_steps_after_a_quarter():
    s = schedule_for(T("1997-01-01"), T("1998-07-01"), LabelSpec(), AUTO, SPLIT)
    assert (s.every_days, s.warmup_days) == (14, 91)
    folds = split_cutoffs(s.cutoffs, 3, 3, 90)
    assert len(folds.train) == s.train_cutoffs >= 6
    assert folds.train[-1] + pd.Timedelta(days=90) <= folds.valid[0]
    assert folds.valid[-1] + pd.Timedelta(days=90) <= folds.test[0]
    assert folds.test[-1] + pd.Timedelta(days=90) <= T("1998-07-01")
    assert "14 days after a 91-day warm-up" in s.describe()


def test_params_set_by_hand_are_kept():
    every = {**AUTO, "every_days": 7, "warmup_days": 182}
    s = schedule_for(T("1997-01-01"), T("1998-07-01"), LabelSpec(), every, SPLIT)
    assert (s.every_days, s.warmup_days, s.derived) == (7, 182, False)
    assert all(
        b - a == pd.Timedelta(days=7) for a, b in zip(s.cutoffs[:-1], s.cutoffs[1:], strict=True)
    )


def test_a_short_history_takes_the_most_training_cutoffs_it_can():
    # 420 days: no pair leaves 6 training cutoffs; the one with the most is taken
    s = schedule_for(T("2024-01-01"), T("2025-02-24"), LabelSpec(), AUTO, SPLIT)
    assert 1 <= s.train_cutoffs < 6 and s.every_days == 7


def test_too_short_a_history_says_how_long_it_must_be():
    with pytest.raises(UserError, match=r"spans 200 days .* must span at least (\d+) days") as e:
        schedule_for(T("2024-01-01"), T("2024-07-19"), LabelSpec(), AUTO, SPLIT)
    need = int(e.value.args[0].split("at least ")[1].split(" ")[0])
    for start in pd.date_range("2024-01-01", periods=7):  # every weekday: it is enough
        s = schedule_for(start, start + pd.Timedelta(days=need), LabelSpec(), AUTO, SPLIT)
        assert s.train_cutoffs >= 1


def test_a_bad_step_is_a_clear_error():
    with pytest.raises(UserError, match="schedule.every_days must be a whole number"):
        schedule_for(T("2024-01-01"), T("2026-01-01"), LabelSpec(), {"every_days": 0}, SPLIT)
