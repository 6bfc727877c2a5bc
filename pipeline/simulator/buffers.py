"""The compact weekly event buffers the world fills, and how they are joined into columns.

Each week's orders, interactions, ended links and churns are kept as a dict of numpy arrays
in the narrowest dtype that holds them (the schemas below), not as frames: a large world's
events fit in memory until the tables are built (`pipeline.simulator.tables`).
"""

from __future__ import annotations

import numpy as np

# compact dtypes of the event buffers (dates that may be missing hold NEVER, so int64)
ORDERS = {
    "acc": np.int32, "day": np.int32, "amount": np.float64, "line": np.int8,
    "channel": np.int8, "qty": np.int32, "promised": np.int32, "delivered": np.int64,
}  # fmt: skip
INTERACTIONS = {
    "acc": np.int32, "sec": np.int32, "type": np.int8, "customer": np.bool_, "dept": np.int8,
    "minutes": np.float32, "contact": np.int32, "resolved": np.int64,
}  # fmt: skip
LINKS = {"acc": np.int32, "type": np.int8, "start": np.int64, "end": np.int64}
CHURN = {"acc": np.int32, "day": np.int64, "reason": np.int8}


def concat(parts: list[dict[str, np.ndarray]], schema: dict[str, type]) -> dict[str, np.ndarray]:
    """Concatenate weekly buffers column by column, emptying them as it goes (bounds memory)."""
    return {
        k: np.concatenate([p.pop(k) for p in parts]) if parts else np.zeros(0, dt)
        for k, dt in schema.items()
    }


def compact(
    cols: dict[str, np.ndarray], schema: dict[str, type], key: np.ndarray | None = None
) -> dict[str, np.ndarray]:
    """Cast one week's buffer to the compact dtypes of its schema (sorted by key, if given).

    A week's events are dated within that week, so buffers sorted week by week (stable: ties
    keep the order of emission) concatenate to tables sorted by date, with no global sort.
    """
    order = None if key is None else np.argsort(key, kind="stable")
    return {
        k: (np.asarray(cols[k]) if order is None else np.asarray(cols[k])[order]).astype(
            dt, copy=False
        )
        for k, dt in schema.items()
    }
