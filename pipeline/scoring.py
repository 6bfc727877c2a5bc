"""Batch scores for a customer list (or every active account) as of a date.

Per account: the calibrated churn probability, a risk tier, the change since the account's
previous score, the top reasons in words (TreeSHAP contributions of the model summed by
feature group, models/reasons.py), the suggested action for the leading reason (a playbook in
params.yaml), and a status saying why an account has no score. Drift of every feature
against the training data (models/drift.py) is measured on all active accounts at the as-of
date and recorded in the metadata written beside the score file.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from features import FeatureConfig
from models.drift import Reference, drift_report
from models.reasons import contributions, reasons
from models.tracking import LoadedModel
from pipeline.engine import check_as_of, features_at
from pipeline.errors import UserError
from pipeline.history import ALL_ACTIVE, record, scores_of
from pipeline.history import folder as history_folder
from pipeline.io import atomic_files, check_table_suffix, neutralise
from pipeline.labels import LabelSpec
from pipeline.lineage import fingerprint
from pipeline.progress import counter, step
from pipeline.store import Validated, data_end
from pipeline.tiers import Settings, actions, risk_tier, tier_bounds

log = logging.getLogger(__name__)

SCORED = "scored"
TOP = 3
REASON_COLUMNS = [f"reason_{k}" for k in range(1, TOP + 1)]
COLUMNS = [
    "account_id",
    "as_of",
    "p_churn",
    "risk_tier",
    "model_version",
    "status",
    "p_churn_change",
    *REASON_COLUMNS,
    "reason_groups",
    "action",
]


def status_of_unscored(validated: Validated, ids: pd.Series, as_of: pd.Timestamp) -> pd.Series:
    """Why known accounts that are not eligible at `as_of` got no score."""
    con = validated.con
    known = set(con.execute("SELECT account_id FROM clean_accounts").df()["account_id"])
    status = pd.Series("inactive", index=ids.index, dtype="object")
    if "churn" in validated.columns:
        churned = con.execute(
            "SELECT account_id FROM clean_churn WHERE churned_at < ?", [as_of.to_pydatetime()]
        ).df()["account_id"]
        status[ids.isin(set(churned))] = "churned"
    present = "customer_since" in validated.columns["accounts"]
    start = "a.customer_since" if present else "NULL"  # not a.NULL: no such column
    not_yet = con.execute(
        f"SELECT a.account_id FROM clean_accounts a LEFT JOIN (SELECT account_id, "
        f"min(order_date) AS f FROM clean_orders GROUP BY 1) o USING (account_id) "
        f"WHERE coalesce({start}, o.f) IS NULL OR coalesce({start}, o.f) >= ?",
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


def model_features(
    validated: Validated, model: LoadedModel, as_of: pd.Timestamp, engine: str = "duckdb"
) -> pd.DataFrame:
    """Features of every account eligible at `as_of`, as the model was trained on them."""
    cm = model.churn_model
    cfg = FeatureConfig.from_params(cm.feature_config)
    label = LabelSpec.from_params(cm.label)
    with step(f"features of every account as of {as_of.date()}"):
        if engine == "spark":
            from pipeline import spark

            feats = spark.features_at(validated, as_of, cfg, label)
        else:
            feats = features_at(validated, as_of, cfg, label)
    missing = [f for f in cm.features if f not in feats.columns]
    if missing:
        raise UserError(
            f"the model ({model.version}) needs {len(missing)} feature(s) this data cannot "
            f"provide: {', '.join(_needs(validated, missing))}; add the tables and columns "
            "they need, or retrain on this data (dvc repro) and score with that model"
        )
    return feats


def predict(model: Any, feats: pd.DataFrame, engine: str = "duckdb") -> np.ndarray:
    """Calibrated churn probabilities (rounded to 6 places) for a feature frame (`spark`: by
    the MLflow model inside Spark, through mlflow.pyfunc.spark_udf)."""
    cm = model.churn_model if hasattr(model, "churn_model") else model
    if not len(feats):
        return np.empty(0)
    if engine == "spark":
        from pipeline import spark

        return spark.predict(model, feats)
    return np.round(np.asarray(cm.predict_proba(feats), dtype="float64"), 6)


def explain_rows(
    model: Any,
    feats: pd.DataFrame,
    settings: Settings,
    typical: Mapping[str, float] | None,
    progress: bool = True,
) -> pd.DataFrame:
    """reason_1..3, reason_groups and action for every row of `feats` (a feature frame)."""
    with step(f"reasons for {len(feats):,} accounts"):
        done = counter(len(feats), "reasons") if progress else None
        contrib = contributions(model, feats, progress=done)
    out = reasons(
        model,
        feats,
        top=TOP,
        typical=typical,
        contrib=contrib,
        min_contribution=settings.min_contribution,
    )
    out["action"] = actions(out, settings.playbook)
    return out.drop(columns=["lead_group", "lead_feature"])


def score_features(
    model: Any,
    feats: pd.DataFrame,
    settings: Settings,
    reference: Reference | None,
    progress: bool = True,
    only: pd.Series | None = None,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Probabilities, tiers, reasons and actions for a feature frame of active accounts.

    Reasons are computed only for the tiers in `settings.reason_tiers` (the ones acted on),
    and only for rows where `only` is True when given (a customer list): exact TreeSHAP costs
    about 0.2 ms an account (compiled; LightGBM's own takes 2 to 4), the probability a few
    microseconds. Tier bounds by share and drift use every row. Returns the scores (index of
    `feats`) and facts for the metadata.
    """
    started = time.perf_counter()
    out = pd.DataFrame({"account_id": feats["account_id"].to_numpy()}, index=feats.index)
    out["p_churn"] = predict(model, feats, settings.engine)
    bounds = tier_bounds(out["p_churn"], settings)
    out["risk_tier"] = risk_tier(out["p_churn"], bounds)
    predicted = time.perf_counter()
    wanted = out["risk_tier"].isin(settings.reason_tiers).to_numpy()
    if only is not None:
        wanted = wanted & np.asarray(only, dtype=bool)
    explained = explain_rows(model, feats[wanted], settings, _typical(reference, feats), progress)
    out = out.join(explained)
    explained_at = time.perf_counter()
    with step("drift of every feature against the training fold"):
        drift = drift_report(feats, reference, settings.psi_threshold, settings.drift_min_rows)
    facts = {
        "tiers_by": settings.tiers_by,
        "tiers": {k: float(v) for k, v in settings.tiers.items()},
        "tier_bounds": bounds,
        "reasons_for_tiers": list(settings.reason_tiers),
        "rows_with_reasons": int(wanted.sum()),
        "typical_values": "training fold medians"
        if reference is not None
        else ("medians of the active accounts at the as-of date (no reference with the model)"),
        "drift": drift,
        "seconds": {
            "predict": round(predicted - started, 3),
            "reasons": round(explained_at - predicted, 3),
            "drift": round(time.perf_counter() - explained_at, 3),
        },
    }
    return out, facts


def previous_scores(
    validated: Validated,
    model: LoadedModel,
    as_of: pd.Timestamp,
    settings: Settings,
    previous: Previous | None,
    lineage: str | None = None,
) -> tuple[pd.Series | None, dict[str, Any]]:
    """The account's previous p_churn: from a score file read by `read_previous`; else the same
    model's `change_days` earlier, read from the history (`settings.history`) when this model
    scored every active account of the data's lineage (key `lineage`) on that date, else
    computed (features at that date, then the model).

    Raises UserError when the file's as_of is not before `as_of` (a change needs an earlier
    score).
    """
    if previous is not None:
        if previous.as_of is not None and previous.as_of >= as_of:
            raise UserError(
                f"{previous.path}: the previous score file is as of {previous.as_of.date()}, "
                f"not before --as-of {as_of.date()}; give an earlier score file"
            )
        facts = {"source": str(previous.path), "rows": len(previous.p_churn)}
        if previous.as_of is not None:
            facts["as_of"] = previous.as_of.date().isoformat()
        return previous.p_churn, facts
    before = as_of - pd.Timedelta(days=settings.change_days)
    if settings.change_days <= 0 or before <= pd.Timestamp(validated.data_start):
        return None, {"source": None, "note": "no earlier date within the data"}
    folder = history_folder(settings.history)
    kept = None if folder is None else scores_of(folder, before, model.uuid, lineage)
    if kept is not None:  # this model scored every active account then: read, not recomputed
        rows = kept.scores[kept.scores["status"].eq(SCORED)]
        p = pd.Series(rows["p_churn"].to_numpy(), index=rows["account_id"].to_numpy())
        log.info("the scores as of %s are read from the history run %s", before.date(), kept.name)
        return p, {"source": f"history:{kept.name}", "as_of": before.date().isoformat()}
    feats = model_features(validated, model, before, settings.engine)
    p = pd.Series(predict(model, feats, settings.engine), index=feats["account_id"].to_numpy())
    return p, {"source": "model", "as_of": before.date().isoformat()}


def score(
    validated: Validated,
    model: LoadedModel,
    as_of: pd.Timestamp,
    accounts: pd.DataFrame | None,
    settings: Settings,
    reference: Reference | None = None,
    previous: Previous | None = None,
    lineage: str | None = None,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Score the listed accounts (or all eligible ones when `accounts` is None) as of a date.

    `lineage` is the data's lineage key (pipeline/lineage.py), by which an earlier run in the
    history is found for the change in p_churn.

    Every listed row comes back, with a status saying why it has no score where it has none.
    Raises UserError when `accounts` is None and no account is active at `as_of`.
    """
    check_as_of(validated, as_of)
    feats = model_features(validated, model, as_of, settings.engine)
    if accounts is None and not len(feats):
        raise UserError(
            f"no account is active as of {as_of.date()} (every account has churned, stopped "
            "ordering or not begun by then), so there is nothing to score; pick another "
            "--as-of within the data"
        )
    only = None if accounts is None else feats["account_id"].isin(set(accounts["account_id"]))
    scored, facts = score_features(model, feats, settings, reference, only=only)
    earlier, facts["previous"] = previous_scores(
        validated, model, as_of, settings, previous, lineage
    )
    scored["p_churn_change"] = (
        (scored["p_churn"] - scored["account_id"].map(earlier)).round(6)
        if earlier is not None
        else np.nan
    )
    scored = scored.drop(columns="risk_tier")
    if accounts is None:
        out = scored.merge(_account_details(validated), on="account_id")
        out["status"] = SCORED
        out = out.sort_values(["p_churn", "account_id"], ascending=[False, True], kind="stable")
    else:
        out = accounts.copy()
        missing = out["account_id"].isna().to_numpy()
        dup = out["account_id"].duplicated().to_numpy() & ~missing
        out = out.merge(scored, on="account_id", how="left")
        out["status"] = np.where(out["p_churn"].notna(), SCORED, None)
        unscored = out["status"].isna() & ~missing
        out.loc[unscored, "status"] = status_of_unscored(
            validated, out.loc[unscored, "account_id"], as_of
        )
        cleared = ["p_churn", "p_churn_change", *REASON_COLUMNS, "reason_groups", "action"]
        out.loc[dup, cleared] = np.nan
        out.loc[dup, "status"] = "duplicate"
        out.loc[missing, "status"] = "no_account_id"
    out["as_of"] = as_of.date().isoformat()
    out["risk_tier"] = risk_tier(out["p_churn"], facts["tier_bounds"])
    out["model_version"] = model.version
    extra = [c for c in out.columns if c not in COLUMNS]
    return out[COLUMNS + extra].reset_index(drop=True), facts


def _typical(reference: Reference | None, feats: pd.DataFrame) -> dict[str, float]:
    if reference is not None:
        return reference.typical
    return feats.median(numeric_only=True).dropna().to_dict()


def write_scores(
    validated: Validated,
    model: LoadedModel,
    as_of: pd.Timestamp | None,
    accounts: pd.DataFrame | None,
    settings: Settings | Mapping[str, float],
    out: Path,
    reference: Reference | None = None,
    previous: Previous | None = None,
    lineage: str | None = None,
) -> dict[str, Any]:
    """Score and write the file plus its metadata (model, data range and fingerprint, counts,
    drift); keep the run in the history (`settings.history`).

    `settings` may also be just the tiers (the `score.tiers` mapping), other settings default.
    `lineage`: the data's lineage key (`data.lineage`), recorded in the fingerprint.
    """
    if not isinstance(settings, Settings):
        settings = Settings.from_params({"tiers": dict(settings)})
    as_of = as_of or data_end(validated)
    suffix = check_table_suffix(out)
    started = time.perf_counter()
    data = fingerprint(validated, lineage)
    scores, facts = score(
        validated, model, as_of, accounts, settings, reference, previous, data["lineage"]
    )
    meta = {
        "as_of": as_of.date().isoformat(),
        "accounts": ALL_ACTIVE if accounts is None else "list",
        "model_version": model.version,
        "model_note": model.note,
        "model_data": getattr(model, "fingerprint", None),
        "model_run_id": model.run_id,
        "model_uuid": model.uuid,
        "model_envelope": getattr(model.churn_model, "envelope", None),
        "label": dataclasses.asdict(LabelSpec.from_params(model.churn_model.label)),
        "data_start": validated.data_start,
        "data_end": validated.data_end,
        "data": data,
        "rows": len(scores),
        "status_counts": scores["status"].value_counts().to_dict(),
        "tier_counts": scores["risk_tier"].value_counts().to_dict(),
        "action_counts": scores["action"].value_counts().to_dict(),
        **facts,
    }
    meta["seconds"]["total"] = round(time.perf_counter() - started, 3)
    meta_path = out.with_name(out.stem + ".meta.json")
    with atomic_files([out, meta_path]) as (tmp, tmp_meta):
        if suffix == ".csv":
            neutralise(scores).to_csv(tmp, index=False)
        else:
            scores.to_parquet(tmp, index=False)
        meta["scores_sha256"] = hashlib.sha256(tmp.read_bytes()).hexdigest()
        tmp_meta.write_text(json.dumps(meta, indent=2, sort_keys=True, default=str) + "\n")
    history = history_folder(settings.history)
    if history is not None:  # after the score file is in place: a run that failed is no run
        meta["history"] = str(record(scores, meta, history))
    return meta


@dataclass(frozen=True)
class Previous:
    """An earlier score file: p_churn by account_id (its scored rows) and its as-of date."""

    path: Path
    p_churn: pd.Series
    as_of: pd.Timestamp | None
