"""The paired cluster bootstrap of an AUC difference (models/bootstrap.py)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from models.bootstrap import auc_difference


def _rows(n_accounts=400, per=3, seed=1):
    rng = np.random.default_rng(seed)
    clusters = np.repeat(np.arange(n_accounts), per)
    risk = np.repeat(rng.normal(size=n_accounts), per)
    y = (risk + rng.normal(scale=1.0, size=len(risk)) > 0.5).astype(int)
    good = risk + rng.normal(scale=0.5, size=len(risk))
    weak = risk + rng.normal(scale=2.0, size=len(risk))
    return y, good, weak, clusters


def test_point_difference_equals_sklearn_with_ties():
    y, good, weak, clusters = _rows()
    ties = np.round(weak, 0)  # a score with many ties, like a rule
    d = auc_difference(y, good, ties, clusters, resamples=20)
    assert d.diff == pytest.approx(roc_auc_score(y, good) - roc_auc_score(y, ties), abs=1e-12)


def test_interval_covers_the_difference_and_excludes_zero_when_clear():
    y, good, weak, clusters = _rows()
    d = auc_difference(y, good, weak, clusters, resamples=400)
    assert d.lo < d.diff < d.hi and d.lo > 0 and d.resamples == 400 and d.clusters == 400
    same = auc_difference(y, good, good + 1.0, clusters, resamples=50)  # same ranking
    assert same.diff == same.lo == same.hi == 0.0


def test_resamples_whole_accounts():
    """Each account's row repeated 6 times: resampling accounts, the interval is as wide as
    with one row each (about sqrt(6) times the row-wise one, which counts copies as news)."""
    y1, good1, weak1, _ = _rows(per=1)
    y, good, weak, clusters = (np.repeat(v, 6) for v in (y1, good1, weak1, np.arange(400)))
    once = auc_difference(y1, good1, weak1, np.arange(400), resamples=400)
    by_account = auc_difference(y, good, weak, clusters, resamples=400)
    by_row = auc_difference(y, good, weak, np.arange(len(y)), resamples=400)
    width = {k: d.hi - d.lo for k, d in (("acc", by_account), ("row", by_row), ("one", once))}
    assert width["acc"] > 1.8 * width["row"]
    assert width["acc"] == pytest.approx(width["one"], rel=0.25)


def test_one_class_and_bad_lengths():
    d = auc_difference(np.zeros(5), np.arange(5), np.arange(5), np.arange(5))
    assert np.isnan(d.diff) and np.isnan(d.lo)
    with pytest.raises(ValueError, match="same length"):
        auc_difference(np.zeros(5), np.arange(4), np.arange(5), np.arange(5))
