"""String columns built from integer codes: sequential ids and category labels.

Straight from Arrow buffers, with no Python string objects, so a table of millions of rows
gets its ids and labels in a fraction of a second.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

_DIGITS4 = np.array([list(f"{k:04d}".encode()) for k in range(10_000)], np.uint8)


def id_chars(prefix: str, numbers: np.ndarray, width: int) -> np.ndarray:
    """ASCII rows like b"A000001": prefix, then each number zero-padded to width digits."""
    p = len(prefix)
    out = np.empty((numbers.size, p + width), np.uint8)
    out[:, :p] = np.frombuffer(prefix.encode(), np.uint8)
    rest, col = np.asarray(numbers, np.int64), p + width
    while col > p:  # up to four digits at a time, from the right
        k = min(4, col - p)
        rest, low = np.divmod(rest, 10**k)
        out[:, col - k : col] = _DIGITS4[low][:, 4 - k :]
        col -= k
    return out


def strings(chars: np.ndarray) -> pd.Series:
    """String column from an (m, w) matrix of ASCII rows (arrow buffers, no Python objects)."""
    m, w = chars.shape
    offsets = np.arange(0, (m + 1) * w, w, dtype=np.int64)
    data = np.ascontiguousarray(chars).ravel()
    arr = pa.LargeStringArray.from_buffers(m, pa.py_buffer(offsets), pa.py_buffer(data))
    return pd.Series(arr, dtype="str")


def ids(prefix: str, first: int, stop: int, width: int) -> pd.Series:
    """Sequential ids like A000001 for the numbers first..stop-1 (zero-padded to width)."""
    return strings(id_chars(prefix, np.arange(first, stop, dtype=np.int64), width))


def labels(codes: np.ndarray, names: tuple[str, ...] | np.ndarray | pd.Series) -> pd.Series:
    """Strings from integer codes."""
    dictionary = pa.array(np.asarray(names, dtype=object), type=pa.large_string())
    return pd.Series(dictionary.take(pa.array(codes, type=pa.int32())), dtype="str")
