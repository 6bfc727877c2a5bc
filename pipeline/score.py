"""Batch scores for a customer list (or every active account) as of a date."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from features import FeatureConfig
from models.tracking import LoadedModel
from pipeline.errors import UserError
from pipeline.featurize import LabelSpec, data_end, features_at
from pipeline.io import atomic_files, check_table_suffix, neutralise, read_table
from pipeline.validate import Validated

log = logging.getLogger(__name__)

SCORED = "scored"
COLUMNS = ["account_id", "as_of", "p_churn", "risk_tier", "model_version", "status"]


def risk_tier(p: pd.Series, tiers: Mapping[str, float]) -> pd.Series:
    """The first tier (highest threshold first) whose lower bound the probability reaches."""
    ordered = sorted(tiers.items(), key=lambda kv: kv[1], reverse=True)
    out = pd.Series(pd.NA, index=p.index, dtype="object")
    for name, lower in reversed(ordered):
        out[p >= lower] = name
    out[p.isna()] = pd.NA
    return out


def read_account_list(path: Path) -> pd.DataFrame:
    """A customer list file with an account_id column (other columns pass through)."""
    frame = read_table(path)
    frame.columns = [str(c).replace("\ufeff", "").strip() for c in frame.columns]
    if "account_id" not in frame.columns:
        raise UserError(
            f"{path}: the account list needs an account_id column; "
            f"it has: {', '.join(map(str, frame.columns))}"
        )
    if frame.columns.duplicated().any():
        dup = sorted(set(frame.columns[frame.columns.duplicated()]))
        raise UserError(f"{path}: columns named more than once: {', '.join(dup)}; rename them")
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
    ids = frame["account_id"]
    frame["account_id"] = ids.where(ids.isna(), ids.astype(str).str.strip())
    return frame


def _status_of_unscored(validated: Validated, ids: pd.Series, as_of: pd.Timestamp) -> pd.Series:
    """Why known accounts that are not eligible at `as_of` got no score."""
    con = validated.con
    known = set(con.execute("SELECT account_id FROM clean_accounts").df()["account_id"])
    status = pd.Series("inactive", index=ids.index, dtype="object")
    if "churn" in validated.columns:
        churned = con.execute(
            "SELECT account_id FROM clean_churn WHERE churned_at < ?", [as_of.to_pydatetime()]
        ).df()["account_id"]
        status[ids.isin(set(churned))] = "churned"
    start = "customer_since" if "customer_since" in validated.columns["accounts"] else "NULL"
    not_yet = con.execute(
        f"SELECT a.account_id FROM clean_accounts a LEFT JOIN (SELECT account_id, "
        f"min(order_date) AS f FROM clean_orders GROUP BY 1) o USING (account_id) "
        f"WHERE coalesce(a.{start}, o.f) IS NULL OR coalesce(a.{start}, o.f) >= ?",
        [as_of.to_pydatetime()],
    ).df()["account_id"]
    status[ids.isin(set(not_yet))] = "not_yet_customer"
    status[~ids.isin(known)] = "unknown_account"
    return status


def _account_details(validated: Validated) -> pd.DataFrame:
    """Name, segment and region of every account, where the data has them (for readers)."""
    present = validated.columns["accounts"]
    cols = ["account_id"] + [c for c in ("name", "segment", "region") if c in present]
    return validated.con.execute(f"SELECT {', '.join(cols)} FROM clean_accounts").df()


def _needs(validated: Validated, names: list[str]) -> list[str]:
    """Each feature name with what it needs, where the catalog says (e.g. 'x (needs links)')."""
    from features.catalog import left_out

    described = {d.split(" ")[0]: d for ds in left_out(validated.columns).values() for d in ds}
    return [described.get(n, n) for n in names]


def check_as_of(validated: Validated, as_of: pd.Timestamp) -> None:
    """The as-of date must fall within the data (after its start, at most a day after its end)."""
    start, stop = pd.Timestamp(validated.data_start), data_end(validated)
    if not start < as_of <= stop:
        raise UserError(
            f"--as-of {as_of.date()} is outside the data, which runs from "
            f"{start.date()} to {validated.data_end}; pick a date after "
            f"{start.date()} and no later than {stop.date()}"
        )


def score(
    validated: Validated,
    model: LoadedModel,
    as_of: pd.Timestamp,
    accounts: pd.DataFrame | None,
    tiers: Mapping[str, float],
) -> pd.DataFrame:
    """Score the listed accounts (or all eligible ones when `accounts` is None) as of a date."""
    check_as_of(validated, as_of)
    cm = model.churn_model
    cfg = FeatureConfig.from_params(cm.feature_config)
    label = LabelSpec.from_params(cm.label)
    feats = features_at(validated, as_of, cfg, label)
    missing = [f for f in cm.features if f not in feats.columns]
    if missing:
        raise UserError(
            f"the model ({model.version}) needs {len(missing)} feature(s) this data cannot "
            f"provide: {', '.join(_needs(validated, missing))}; add the tables and columns "
            "they need, or retrain on this data (dvc repro) and score with that model"
        )
    feats = feats.copy()
    x = feats[cm.features].astype("float64")
    feats["p_churn"] = model.pyfunc.predict(x).to_numpy() if len(feats) else []
    feats["p_churn"] = feats["p_churn"].astype(float).round(6)
    if accounts is None:
        out = feats[["account_id", "p_churn"]].merge(_account_details(validated), on="account_id")
        out["status"] = SCORED
        out = out.sort_values(["p_churn", "account_id"], ascending=[False, True], kind="stable")
    else:
        out = accounts.copy()
        dup = out["account_id"].duplicated()
        out = out.merge(feats[["account_id", "p_churn"]], on="account_id", how="left")
        out["status"] = np.where(out["p_churn"].notna(), SCORED, None)
        unscored = out["status"].isna()
        out.loc[unscored, "status"] = _status_of_unscored(
            validated, out.loc[unscored, "account_id"], as_of
        )
        out.loc[dup.to_numpy(), ["status", "p_churn"]] = ["duplicate", np.nan]
    out["as_of"] = as_of.date().isoformat()
    out["risk_tier"] = risk_tier(out["p_churn"], tiers)
    out["model_version"] = model.version
    extra = [c for c in out.columns if c not in COLUMNS]
    return out[COLUMNS + extra].reset_index(drop=True)


def run(
    validated: Validated,
    model: LoadedModel,
    as_of: pd.Timestamp | None,
    accounts: pd.DataFrame | None,
    tiers: Mapping[str, float],
    out: Path,
) -> dict[str, Any]:
    """Score and write the file plus its metadata (model, data range, counts by status)."""
    as_of = as_of or data_end(validated)
    suffix = check_table_suffix(out)
    scores = score(validated, model, as_of, accounts, tiers)
    meta = {
        "as_of": as_of.date().isoformat(),
        "model_version": model.version,
        "model_note": model.note,
        "data_start": validated.data_start,
        "data_end": validated.data_end,
        "rows": len(scores),
        "status_counts": scores["status"].value_counts().to_dict(),
        "tier_counts": scores["risk_tier"].value_counts().to_dict(),
    }
    meta_path = out.with_name(out.stem + ".meta.json")
    with atomic_files([out, meta_path]) as (tmp, tmp_meta):
        if suffix == ".csv":
            neutralise(scores).to_csv(tmp, index=False)
        else:
            scores.to_parquet(tmp, index=False)
        meta["scores_sha256"] = hashlib.sha256(tmp.read_bytes()).hexdigest()
        tmp_meta.write_text(json.dumps(meta, indent=2, sort_keys=True, default=str) + "\n")
    return meta
