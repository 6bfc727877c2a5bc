"""Check raw tables against the input contract and write clean, typed Parquet.

Each file is read once into DuckDB; every rule is then a query, so every problem is found in
one pass and reported together (docs/data-contract.md lists the rules, messages and fixes).
Under the `fail` policy any problem means nothing is written (the CLI exits with code 2); under
`drop` the rows with problems are left out of the clean tables and written, with the reasons,
to rejects.csv beside them. Problems with a whole file or column (missing, unreadable, of the
wrong type, empty) fail under both policies: no choice of rows would fix them. A row exported
twice is a problem of its own: `drop` keeps its first copy. Facts that one table states and
another contradicts are problems where the data cannot be right (unknown accounts, churn before
the relationship began, event dates far after the rest of the data) and, in a passing run,
notes where it can (events after churn, orders before customer_since, dates after today).

The validate stage (`churn validate`, the `validate` stage of dvc.yaml): `check` a folder and
`write_clean` what passes. Its parts live below the stages, because every later stage checks a
raw folder the same way (pipeline.store.load): pipeline.readers (files), pipeline.rules (row
rules), pipeline.timeline (the late tail), pipeline.notes (data notes), pipeline.checking
(`check`), pipeline.outcome (`Problem`, `Validated`) and pipeline.store (`load`, `write_clean`,
`rejects`). This module names what the stage uses; later stages import the store from
pipeline.store.
"""

from __future__ import annotations

from pipeline.checking import check, parse_vocabulary
from pipeline.outcome import Problem, Validated
from pipeline.store import REJECTS_NAME, REPORT_NAME, load, rejects, write_clean

__all__ = [
    "REJECTS_NAME",
    "REPORT_NAME",
    "Problem",
    "Validated",
    "check",
    "load",
    "parse_vocabulary",
    "rejects",
    "write_clean",
]
