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
`rejects`). This module is the stage's run; later stages open the store from pipeline.store.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from features.catalog import left_out
from pipeline.checking import check
from pipeline.io import write_json
from pipeline.progress import step
from pipeline.store import REJECTS_NAME, write_clean

# what this stage reads of params.yaml, and all it is given (pipeline.config.only): the same
# list as its `params:` in dvc.yaml (tests/test_architecture.py)
PARAMS = ("validate",)


def run(
    data: Path,
    out: Path,
    policy: str | None,
    end_date: str | None,
    report: Path | None,
    params: dict[str, Any],
) -> None:
    """`churn validate`: check the tables in `data` against the contract and write the clean
    tables to `out`; `policy` and `end_date` (text) override params.yaml's `validate` section,
    and `report` also gets the JSON report, even when the check fails. Raises UserError (exit
    2), writing nothing to `out`, when the data breaks the contract."""
    settings = params["validate"]
    with step(f"checking the tables in {data}"):
        result = check(
            data,
            policy=policy or settings["policy"],
            end_date=end_date if end_date is not None else settings["end_date"],
            vocabulary=settings["vocabulary"],
            gap_days=settings["gap_days"],
        )
    if report is not None:
        write_json(result.report(), report)
    result.raise_if_failed()
    result.notes.extend(
        f"{group}: left out {', '.join(names)}" for group, names in left_out(result.columns).items()
    )
    with step(f"writing the clean tables to {out}"):
        write_clean(result, out)
    for note in result.notes:
        typer.echo(f"note: {note}")
    if result.dropped:
        typer.echo(
            f"dropped {sum(result.dropped.values())} rows with problems "
            f"({', '.join(f'{t} {n}' for t, n in result.dropped.items())}), listed in "
            f"{out / REJECTS_NAME}:\n{result.summary()}",
            err=True,
        )
    typer.echo(
        f"valid: {', '.join(f'{t} {n} rows' for t, n in result.kept.items())}; "
        f"data from {result.data_start} to {result.data_end}; clean tables in {out}"
    )
