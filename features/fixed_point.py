"""Fixed point: sums and means of real values add whole millionths, so they are exact.

A sum of doubles depends on the order its rows are added in, which changes with the number of
threads; a sum of whole numbers does not. Every engine adds real values this way, and the
features come out byte-identical whatever the threads (tests/test_threads.py).
"""

from __future__ import annotations

import ibis
import ibis.expr.types as ir

UNIT = 1_000_000  # sums and means add real values in whole millionths (fixed_point)
LIMIT = 9e12  # and no larger than this: a value in millionths still fits 64 bits


def fixed_point(value: ir.Value) -> ir.Value:
    """A real value as the sums and means of features add it: a whole number of millionths
    (UNIT; values beyond +-LIMIT count as +-LIMIT). Sums of whole numbers are exact, so they
    do not depend on the order rows are added in, and features come out byte-identical
    whatever the number of threads that aggregate them (a sum of doubles differs in its last
    bits from run to run). Other values are returned as they are (integers add up exactly)."""
    if not value.type().is_floating():
        return value
    # not least/greatest: DuckDB's skip NULLs, and an unknown value must stay unknown
    clamped = ibis.ifelse(value > LIMIT, LIMIT, ibis.ifelse(value < -LIMIT, -LIMIT, value))
    return _round(clamped * UNIT).cast("int64")  # Spark's cast would truncate: round first


@ibis.udf.scalar.builtin(name="round")
def _round(x: float) -> float:
    """The nearest whole number (halves away from zero): SQL's one-argument ROUND, which DuckDB
    computes several times faster than Ibis's ROUND(x, 0)."""
