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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from features import FeatureConfig
from models.drift import Reference, drift_report
from models.reasons import contributions, reasons
from models.tracking import LoadedModel
from pipeline.contract import parse_date
from pipeline.errors import UserError
from pipeline.featurize import LabelSpec, data_end, features_at
from pipeline.history import ALL_ACTIVE, record, scores_of
from pipeline.history import DEFAULT as DEFAULT_HISTORY
from pipeline.history import folder as history_folder
from pipeline.io import atomic_files, check_table_suffix, neutralise, numbers, read_table
from pipeline.lineage import fingerprint
from pipeline.progress import counter, step
from pipeline.validate import Validated

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
DEFAULT_TIERS = {"high": 0.05, "medium": 0.20, "low": 1.0}  # shares of the active accounts
# The action for the leading reason, by its group; params.yaml `score.playbook` replaces these
# key by key and adds actions keyed by feature (the lever the reason points at), which win.
DEFAULT_PLAYBOOK = {
    "silence": "call the account now: it has gone quiet",
    "promises": "review its deliveries with operations",
    "dependency": "offer an ordering terminal, EDI or a service contract",
    "trust": "an executive meeting to reset the relationship",
    "engagement": "a business review",
}


def actions(reasons_: pd.DataFrame, playbook: Mapping[str, str]) -> pd.Series:
    """The playbook's action for each row's leading reason: by its feature, else its group."""
    by_feature = reasons_["lead_feature"].map(playbook)
    return by_feature.where(by_feature.notna(), reasons_["lead_group"].map(playbook))


@dataclass(frozen=True)
class Settings:
    """The `score` section of params.yaml."""

    tiers: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_TIERS))
    tiers_by: str = "share"  # top shares of the active accounts; or "probability": lowest p
    reason_tiers: tuple[str, ...] = ("high", "medium")
    min_contribution: float = 0.01
    playbook: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_PLAYBOOK))
    change_days: int = 28
    psi_threshold: float = 0.25
    drift_min_rows: int = 200
    engine: str = "duckdb"  # or spark: features by Spark, probabilities by mlflow's spark_udf
    history: str | None = DEFAULT_HISTORY  # every run kept here (pipeline/history.py); None: not

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> Settings:
        reasons_ = params.get("reasons") or {}
        drift = params.get("drift") or {}
        settings = cls(
            tiers=dict(params.get("tiers") or DEFAULT_TIERS),
            tiers_by=params.get("tiers_by", "share"),
            reason_tiers=tuple(reasons_.get("tiers", ("high", "medium"))),
            min_contribution=float(reasons_.get("min_contribution", 0.01)),
            playbook={**DEFAULT_PLAYBOOK, **(params.get("playbook") or {})},
            change_days=int(params.get("change_days", 28)),
            psi_threshold=float(drift.get("psi_threshold", 0.25)),
            drift_min_rows=int(drift.get("min_rows", 200)),
            engine=str(params.get("engine", "duckdb")),
            history=params.get("history", DEFAULT_HISTORY) or None,
        )
        if settings.engine not in ("duckdb", "spark"):
            raise UserError(f"the scoring engine must be duckdb or spark; got {settings.engine!r}")
        if settings.tiers_by not in ("probability", "share"):
            raise UserError(
                f"score.tiers_by must be probability or share; got {settings.tiers_by!r}"
            )
        bad = [k for k, v in settings.tiers.items() if not 0 <= float(v) <= 1]
        if bad or not settings.tiers:
            raise UserError(
                f"score.tiers needs a value between 0 and 1 for each tier; check {bad or 'it'}"
            )
        from features.catalog import CATALOG, GROUPS

        stray = sorted(set(settings.playbook) - {*GROUPS, *(f.name for f in CATALOG)})
        if stray:
            raise UserError(
                "score.playbook keys are feature groups or feature names (docs/features.md); "
                f"unknown: {', '.join(stray)}"
            )
        unknown = sorted(set(settings.reason_tiers) - set(settings.tiers))
        if unknown:
            raise UserError(
                f"score.reasons.tiers names tiers that score.tiers lacks: {', '.join(unknown)}"
            )
        return settings


def risk_tier(p: pd.Series, tiers: Mapping[str, float]) -> pd.Series:
    """The first tier (highest threshold first) whose lower bound the probability reaches."""
    ordered = sorted(tiers.items(), key=lambda kv: kv[1], reverse=True)
    out = pd.Series(pd.NA, index=p.index, dtype="object")
    for name, lower in reversed(ordered):
        out[p >= lower] = name
    out[p.isna()] = pd.NA
    return out


def tier_bounds(population: pd.Series, settings: Settings) -> dict[str, float]:
    """Lowest probability of each tier: from params, or from top shares of the population.

    By share, `high: 0.05` means the 5% of active accounts most at risk; shares are
    cumulative (medium: 0.20 is the next 15%), and the tier with the largest share (1.0)
    takes the rest.
    """
    if settings.tiers_by == "probability":
        return {k: float(v) for k, v in settings.tiers.items()}
    p = np.sort(population.dropna().to_numpy())[::-1]
    bounds = {}
    for name, share in sorted(settings.tiers.items(), key=lambda kv: kv[1]):
        if share >= 1 or not len(p):
            bounds[name] = 0.0
        else:
            bounds[name] = float(p[max(int(np.ceil(share * len(p))) - 1, 0)])
    return bounds


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


@dataclass(frozen=True)
class Previous:
    """An earlier score file: p_churn by account_id (its scored rows) and its as-of date."""

    path: Path
    p_churn: pd.Series
    as_of: pd.Timestamp | None


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


def check_as_of(validated: Validated, as_of: pd.Timestamp) -> None:
    """The as-of date must fall within the data (after its start, at most a day after its end)."""
    start, stop = pd.Timestamp(validated.data_start), data_end(validated)
    if not start < as_of <= stop:
        raise UserError(
            f"--as-of {as_of.date()} is outside the data, which runs from "
            f"{start.date()} to {validated.data_end}; pick a date after "
            f"{start.date()} and no later than {stop.date()}"
        )


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
        out.loc[unscored, "status"] = _status_of_unscored(
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


def run(
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


def load_scoring_model(
    params: Mapping[str, Any], model_arg: str | None, validated: Validated | None = None
) -> tuple[LoadedModel, Reference | None]:
    """The model to score with (see models.tracking.load_model) and its reference profile.

    With the `validated` data to score, the default model is one trained on that data's
    lineage (`data.lineage`, else its source folder): never another data set's champion.
    """
    from models.drift import REFERENCE_NAME, find_reference
    from models.tracking import load_model
    from pipeline.lineage import data_lineage, fingerprint
    from pipeline.paths import repo_root
    from pipeline.train import MODEL_SUBDIR

    root = repo_root()
    fallback = root / "data" / "model" / MODEL_SUBDIR
    data = None if validated is None else fingerprint(validated, data_lineage(params))
    loaded = load_model(root, params["mlflow"]["registered_model"], model_arg, fallback, data)
    folder = None
    if model_arg and "://" not in model_arg and ":/" not in model_arg:
        folder = Path(model_arg).resolve()
    elif loaded.version.startswith("dvc:"):
        folder = fallback
    reference = find_reference(folder, loaded.pyfunc.metadata.run_id)
    if reference is None:
        log.warning(
            "no %s with the model %s: drift is not checked and typical values are the medians "
            "of the active accounts at the as-of date; retrain (dvc repro) to write one",
            REFERENCE_NAME,
            loaded.version,
        )
    return loaded, reference
