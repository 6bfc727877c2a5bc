"""The score stage (`churn score`): read a customer list (or take every active account) and an
optional earlier score file, score them (pipeline/scoring.py) and write the score file."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any

import pandas as pd
import typer

from models.drift import drift_warning
from pipeline.contract import as_day, parse_date
from pipeline.engine import check_engine
from pipeline.errors import UserError
from pipeline.io import numbers, read_table
from pipeline.lineage import data_lineage
from pipeline.progress import step
from pipeline.registry import load_scoring_model
from pipeline.scoring import COLUMNS, SCORED, Previous, write_scores
from pipeline.store import load
from pipeline.tiers import Settings

# what this stage reads of params.yaml, and all it is given (pipeline.config.only): the same
# list as its `params:` in dvc.yaml (tests/test_architecture.py)
PARAMS = ("score", "validate", "mlflow", "data.lineage")

log = logging.getLogger(__name__)


def _id_text(ids: pd.Series) -> pd.Series:
    """Account ids as validate keeps them: text, trimmed; blank is missing (a Parquet list's
    whole-number ids as integers, 7.0 as "7")."""
    if pd.api.types.is_float_dtype(ids) and ids.dropna().eq(ids.dropna().round()).all():
        ids = ids.astype("Int64")
    text = ids.astype("string").str.strip(" \t\r\n").fillna("")
    return text.astype(object).where(text.ne(""), None)


def read_account_list(path: Path) -> pd.DataFrame:
    """A customer list file with an account_id column (other columns pass through), read by
    the product's one CSV reader (pipeline.io.read_table). Raises UserError (exit 2) when it
    cannot be read, lacks account_id, names a column twice or has no rows."""
    frame = read_table(path, "account list")
    frame.columns = [str(c).replace("\ufeff", "").strip() for c in frame.columns]
    if "account_id" not in frame.columns:
        raise UserError(
            f"{path}: the account list needs an account_id column; "
            f"it has: {', '.join(map(str, frame.columns))}"
        )
    if frame.columns.duplicated().any():
        dup = sorted(set(frame.columns[frame.columns.duplicated()]))
        raise UserError(f"{path}: columns named more than once: {', '.join(dup)}; rename them")
    if not len(frame):
        raise UserError(
            f"{path}: the account list has no rows, so there is nothing to score; list one "
            "account_id per row (or score every active account with --all-active)"
        )
    renames = {}
    for column in frame.columns:
        if column in COLUMNS and column != "account_id":
            new = f"{column}_input"
            while new in frame.columns or new in renames.values():
                new += "_"
            renames[column] = new
    if renames:
        log.warning(
            "the account list has columns the score file writes; kept as %s",
            ", ".join(f"{a} -> {b}" for a, b in renames.items()),
        )
        frame = frame.rename(columns=renames)
    frame["account_id"] = _id_text(frame["account_id"])
    return frame


def read_previous(path: Path) -> Previous:
    """p_churn by account_id from an earlier score file (its scored rows), read by the one
    CSV reader; p_churn read as validate reads numbers, as_of as a date (parse_date).

    Raises UserError (exit 2) naming the file and column when a column is missing, a p_churn
    is not a number or outside 0..1, or an as_of is not an ISO date.
    """
    what = "previous score file"
    frame = read_table(path, what)
    missing = [c for c in ("account_id", "p_churn") if c not in frame.columns]
    if missing:
        raise UserError(
            f"{path}: a previous score file needs account_id and p_churn columns; "
            f"it lacks {', '.join(missing)}"
        )
    p = numbers(frame, "p_churn", path, what)
    outside = p.notna() & ~p.between(0, 1)
    if outside.any():
        rows = ", ".join(f"row {i + 1}: {v}" for i, v in p[outside].head(5).items())
        raise UserError(
            f"{path}: column p_churn of the {what} has {int(outside.sum())} value(s) outside "
            f"0..1 ({rows}); give the probabilities a score file wrote"
        )
    ids = _id_text(frame["account_id"])
    keep = p.notna() & ids.notna()
    if "status" in frame.columns:
        keep &= frame["status"].astype("string").str.strip().eq(SCORED).fillna(False)
    as_of = None
    if "as_of" in frame.columns:
        dates = {d for d in frame.loc[keep, "as_of"].dropna().astype(str).str.strip() if d}
        parsed = [parse_date(d, f"{path}: as_of") for d in sorted(dates)]
        as_of = max(parsed).normalize() if parsed else None
    series = pd.Series(p[keep].to_numpy(), index=ids[keep].to_numpy())
    return Previous(Path(path), series.groupby(level=0).first(), as_of)


def run(
    data: Path,
    out: Path,
    accounts: Path | None,
    as_of: str | None,
    model: str | None,
    previous: Path | None,
    engine: str | None,
    params: dict[str, Any],
) -> None:
    """Score the customer list `accounts` (None: every active account) in the data folder
    `data` as of the day `as_of` (text; None: the day after the data ends) with `model` (None:
    the registry champion of the data's lineage), and write the score file `out` with its
    metadata. `engine`: duckdb or spark (None: params score.engine). Raises UserError (exit 2)
    on bad input."""
    settings = Settings.from_params(params.get("score") or {})
    if engine is not None:
        settings = dataclasses.replace(settings, engine=check_engine(engine))
    when = as_day(as_of, "--as-of")
    listed = read_account_list(accounts) if accounts is not None else None
    earlier = read_previous(previous) if previous is not None else None
    with step(f"reading {data}"):
        validated = load(data, params.get("validate"))
    with step("loading the model"):
        loaded, reference = load_scoring_model(params, model, validated)
    with step("scoring"):
        meta = write_scores(
            validated, loaded, when, listed, settings, out, reference, earlier,
            data_lineage(params),
        )  # fmt: skip
    if loaded.note:
        typer.echo(f"note: {loaded.note}", err=True)
    warning = drift_warning(meta["drift"])
    if warning:
        typer.echo(f"warning: {warning}", err=True)
    typer.echo(
        f"scored as of {meta['as_of']} with {meta['model_version']}: "
        + ", ".join(f"{k} {v}" for k, v in meta["status_counts"].items())
        + "; tiers: "
        + (", ".join(f"{k} {v}" for k, v in meta["tier_counts"].items()) or "none")
        + f"; reasons for {meta['rows_with_reasons']} accounts -> {out}"
    )
