"""The sliding-window kernel against a direct computation of every window at every marker."""

import numpy as np
import pytest

from features.sliding import slide

KINDS = ["count", "sum", "mean", "max", "min", "nunique"]
WINDOWS = [(0, 1), (0, 7), (3, 10), (0, None), (5, None)]


def direct(kind, lo, hi, ev_code, ev_day, mask, values, codes, code, day):
    """The aggregate over events of `code` with day in [day - hi, day - lo), or None."""
    start = -np.inf if hi is None else day - hi
    sel = (ev_code == code) & mask & (ev_day < day - lo) & (ev_day >= start)
    if kind == "count":
        return sel.sum()
    if kind == "nunique":
        return len(set(codes[sel]))
    if not sel.any():
        return None
    return {"sum": np.sum, "mean": np.mean, "max": np.max, "min": np.min}[kind](values[sel])


@pytest.mark.parametrize("seed", range(5))
def test_every_window_at_every_marker(seed):
    rng = np.random.default_rng(seed)
    accounts, n = 6, 300
    ev_code = np.sort(rng.integers(0, accounts, n))
    ev_day = np.concatenate(
        [np.sort(rng.integers(0, 40, (ev_code == a).sum())) for a in range(accounts)]
    )
    values = rng.normal(0, 10, n).round(2)
    codes = rng.integers(0, 5, n)
    mk_code = np.repeat(np.arange(accounts - 1), 8)  # the last account has no marker
    mk_day = np.concatenate([np.sort(rng.integers(0, 50, 8)) for _ in range(accounts - 1)])
    specs = []
    for kind in KINDS:
        for lo, hi in WINDOWS:
            mask = rng.random(n) < 0.6
            specs.append((kind, lo, hi, mask, values, codes))
    got = slide(ev_code, ev_day, mk_code, mk_day, accounts, specs)
    for (kind, lo, hi, mask, _, _), (out, known) in zip(specs, got, strict=True):
        for j in range(mk_day.size):
            want = direct(kind, lo, hi, ev_code, ev_day, mask, values, codes, mk_code[j], mk_day[j])
            if want is None:
                assert not known[j], (kind, lo, hi, j)
            else:
                assert known[j] and out[j] == pytest.approx(want, abs=1e-9), (kind, lo, hi, j)


def test_no_events_and_no_markers():
    empty = np.zeros(0, np.int64)
    [(out, known)] = slide(
        empty,
        empty,
        np.array([0]),
        np.array([5]),
        1,
        [("sum", 0, None, np.zeros(0, bool), np.zeros(0), None)],
    )
    assert not known[0]
    assert slide(empty, empty, empty, empty, 0, [("count", 0, 7, np.zeros(0, bool), None, None)])
