"""Windowed aggregates at many cutoffs by sliding each window along an account's time line.

DuckDB places every event in time and evaluates every condition once per row; this module
takes the rows sorted by (account, day) and, for each aggregate, slides its window from one
cutoff of the account to the next: events entering the window are added, events leaving it
are taken out. The work grows with events + cutoffs, once per aggregate, in compiled loops.
A RANGE window frame in SQL does the same work with a segment tree per aggregate, many times
slower.
"""

from __future__ import annotations

import numba
import numpy as np

# aggregate kinds, as the kernel knows them
KINDS = {"count": 0, "sum": 1, "mean": 2, "max": 3, "min": 4, "nunique": 5}
UNBOUNDED = np.iinfo(np.int64).max // 4  # a window reaching back to the start of the data


@numba.njit(cache=True, nogil=True)
def _slide_one(
    kind, lo, hi, ev_start, ev_day, mask, values, codes, counts, mk_start, mk_day, out, ok
):  # pragma: no cover - compiled
    """Aggregate `a` at every marker (cutoff): events with day in [cutoff - hi, cutoff - lo)."""
    for k in range(ev_start.size - 1):
        e1 = ev_start[k + 1]
        i_in = i_out = ev_start[k]
        n = 0
        total = 0.0
        fix = 0.0  # the rounding errors of `total` (Neumaier): events leave without residue
        distinct = 0
        best = 0.0
        for j in range(mk_start[k], mk_start[k + 1]):
            upto, start = mk_day[j] - lo, mk_day[j] - hi
            while i_in < e1 and ev_day[i_in] < upto:  # events entering the window
                if mask[i_in]:
                    n += 1
                    if kind == 1 or kind == 2:
                        v = values[i_in]
                        t = total + v
                        fix += (total - t) + v if abs(total) >= abs(v) else (v - t) + total
                        total = t
                    elif kind == 5:
                        counts[codes[i_in]] += 1
                        if counts[codes[i_in]] == 1:
                            distinct += 1
                    elif kind == 3 or kind == 4:
                        v = values[i_in]
                        if n == 1 or (v > best if kind == 3 else v < best):
                            best = v
                i_in += 1
            left = False
            while i_out < i_in and ev_day[i_out] < start:  # events leaving it
                if mask[i_out]:
                    n -= 1
                    left = True
                    if kind == 1 or kind == 2:
                        v = -values[i_out]
                        t = total + v
                        fix += (total - t) + v if abs(total) >= abs(v) else (v - t) + total
                        total = t
                    elif kind == 5:
                        counts[codes[i_out]] -= 1
                        if counts[codes[i_out]] == 0:
                            distinct -= 1
                i_out += 1
            if n == 0:
                total = fix = 0.0  # no rounding residue carries over an empty window
            if left and (kind == 3 or kind == 4) and n > 0:  # rare: a bounded max or min
                first = True
                for i in range(i_out, i_in):
                    if mask[i] and (
                        first
                        or (kind == 3 and values[i] > best)
                        or (kind == 4 and values[i] < best)
                    ):
                        best, first = values[i], False
            if kind == 0:
                out[j], ok[j] = n, True
            elif kind == 5:
                out[j], ok[j] = distinct, True
            elif kind == 1:
                out[j], ok[j] = total + fix, n > 0
            elif kind == 2:
                out[j], ok[j] = (total + fix) / n if n > 0 else 0.0, n > 0
            else:
                out[j], ok[j] = best, n > 0
        if kind == 5:  # empty the counts for the next account
            for i in range(i_out, i_in):
                if mask[i]:
                    counts[codes[i]] = 0


def slide(
    ev_code: np.ndarray,
    ev_day: np.ndarray,
    mk_code: np.ndarray,
    mk_day: np.ndarray,
    accounts: int,
    specs: list[tuple[str, int, int | None, np.ndarray, np.ndarray | None, np.ndarray | None]],
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Every aggregate at every marker: a list of (values, known) arrays, one per spec.

    Events are sorted by (code, day) and markers by (code, day); codes are 0..accounts-1.
    A spec is (kind, lo, hi, mask, values, codes): events count when `mask` holds and their
    day lies in [marker day - hi, marker day - lo) (hi None: from the start); `values` for
    sum, mean, max and min, `codes` (0..n-1) for nunique.
    """
    bounds = np.arange(accounts + 1)
    ev_start = np.searchsorted(ev_code, bounds)
    mk_start = np.searchsorted(mk_code, bounds)
    ev_day = np.ascontiguousarray(ev_day, dtype=np.int64)
    mk_day = np.ascontiguousarray(mk_day, dtype=np.int64)
    empty_f, empty_i = np.zeros(0), np.zeros(0, np.int64)
    results = []
    for kind, lo, hi, mask, values, codes in specs:
        out = np.zeros(mk_day.size)
        ok = np.zeros(mk_day.size, np.bool_)
        counts = np.zeros(int(codes.max()) + 1 if codes is not None and codes.size else 0, np.int32)
        _slide_one(
            KINDS[kind],
            lo,
            UNBOUNDED if hi is None else hi,
            ev_start,
            ev_day,
            np.ascontiguousarray(mask, dtype=np.bool_),
            empty_f if values is None else np.ascontiguousarray(values, dtype=np.float64),
            empty_i if codes is None else np.ascontiguousarray(codes, dtype=np.int64),
            counts,
            mk_start,
            mk_day,
            out,
            ok,
        )
        results.append((out, ok))
    return results
