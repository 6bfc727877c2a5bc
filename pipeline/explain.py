"""One account's churn risk over its recent cutoffs, with the reasons at each: improving or
deteriorating, and why (`churn explain`)."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import typer

from models.drift import Reference
from models.reasons import contributions, group_contributions, reasons
from models.tracking import LoadedModel
from pipeline.contract import as_day
from pipeline.engine import check_as_of
from pipeline.errors import UserError
from pipeline.history import folder as history_folder
from pipeline.history import scores_of
from pipeline.io import atomic_file
from pipeline.lineage import data_lineage, fingerprint
from pipeline.progress import step
from pipeline.registry import load_scoring_model
from pipeline.schedule import EVERY_DAYS, schedule_step
from pipeline.scoring import SCORED, TOP, model_features, predict, status_of_unscored
from pipeline.store import Validated, data_end, load
from pipeline.tiers import Settings, actions, risk_tier, tier_bounds

STABLE = 0.02  # a change in p_churn smaller than this over the window reads as stable


class _OneAccount(Validated):
    """The clean tables restricted to one account (features are per-account aggregates)."""

    def view(self, table: str) -> str:
        return f"one_account_{table}"


def _one_account(validated: Validated, account_id: str) -> Validated:
    quoted = "'" + account_id.replace("'", "''") + "'"
    for table in validated.columns:
        validated.con.execute(
            f"CREATE OR REPLACE TEMP VIEW one_account_{table} AS "
            f"SELECT * FROM {validated.view(table)} WHERE account_id = {quoted}"
        )
    fields = {f.name: getattr(validated, f.name) for f in dataclasses.fields(validated)}
    return _OneAccount(**fields)


def cutoffs_before(
    validated: Validated, as_of: pd.Timestamp, count: int, every_days: int
) -> list[pd.Timestamp]:
    """`count` cutoffs `every_days` apart ending at `as_of`, those after the data's start."""
    start = pd.Timestamp(validated.data_start)
    dates = [as_of - pd.Timedelta(days=every_days * i) for i in range(count)]
    return sorted(d for d in dates if d > start)


def history(
    validated: Validated,
    model: LoadedModel,
    account_id: str,
    as_of: pd.Timestamp,
    settings: Settings,
    reference: Reference | None,
    count: int = 6,
    every_days: int = EVERY_DAYS[0],
    lineage: str | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per cutoff: p_churn, tier, change, reasons; and the group contributions (log-odds).

    Tiers by share (score.tiers_by) take their bounds from every active account at `as_of`,
    as `churn score` does, and apply them at every cutoff; the bounds are in
    `table.attrs["tier_bounds"]`. When this model scored every active account of the data's
    lineage (key `lineage`) at `as_of` with the same tiers, the bounds are read from that run
    in the history (`settings.history`) instead of scoring every account again."""
    check_as_of(validated, as_of)
    status = status_of_unscored(validated, pd.Series([account_id]), as_of).iloc[0]
    if status == "unknown_account":
        raise UserError(f"account {account_id!r} is not in the accounts table")
    one = _one_account(validated, account_id)
    frames = []
    for cutoff in cutoffs_before(validated, as_of, count, every_days):
        feats = model_features(one, model, cutoff)
        frames.append(feats[feats["account_id"] == account_id])
    feats = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    if feats.empty:
        raise UserError(
            f"account {account_id!r} has no score in the {count} cutoffs up to {as_of.date()}: "
            f"its status at {as_of.date()} is {status}"
        )
    p = pd.Series(predict(model, feats), index=feats.index)
    contrib = contributions(model, feats)
    population = None  # every active account at the as-of date, read only where needed
    if reference is not None:
        typical = reference.typical
    else:  # medians of every active account at the as-of date, as `churn score` quotes them
        population = model_features(validated, model, as_of)
        typical = population.median(numeric_only=True).to_dict()
    kept = _kept_bounds(model, as_of, settings, lineage)
    if settings.tiers_by == "probability":
        bounds = {k: float(v) for k, v in settings.tiers.items()}
    elif kept is not None:  # as `churn score` drew them for this model at this date
        bounds = kept
    else:  # shares of the active accounts at the as-of date, as `churn score` draws them
        population = model_features(validated, model, as_of) if population is None else population
        scores = predict(model, population) if len(population) else []
        bounds = tier_bounds(pd.Series(scores, dtype="float64"), settings)
    words = reasons(
        model, feats, top=TOP, typical=typical, contrib=contrib,
        min_contribution=settings.min_contribution,
    )  # fmt: skip
    table = pd.DataFrame(
        {
            "as_of": pd.to_datetime(feats["cutoff"]).dt.date.astype(str),
            "p_churn": p,
            "risk_tier": risk_tier(p, bounds),
            "p_churn_change": p.diff().round(6),
        }
    ).join(words)
    table["action"] = actions(table, settings.playbook)
    table["status"] = SCORED
    groups = group_contributions(contrib)
    groups.index = table["as_of"]
    table = table.reset_index(drop=True)
    table.attrs["tier_bounds"] = bounds  # lowest p_churn of each tier, at the as-of date
    return table, groups


def _kept_bounds(
    model: LoadedModel, as_of: pd.Timestamp, settings: Settings, lineage: str | None
) -> dict[str, float] | None:
    """The tier bounds of the history's run of this model at `as_of`, drawn with the same
    tiers; None when there is no such run."""
    folder = history_folder(settings.history)
    kept = None if folder is None else scores_of(folder, as_of, model.uuid, lineage)
    if kept is None or kept.meta.get("tiers_by") != settings.tiers_by:
        return None
    if kept.meta.get("tiers") != {k: float(v) for k, v in settings.tiers.items()}:
        return None
    return {k: float(v) for k, v in kept.meta["tier_bounds"].items()}


def verdict(table: pd.DataFrame, groups: pd.DataFrame) -> str:
    """Improving, deteriorating or stable over the window, and the groups that moved it."""
    first, last = table.iloc[0], table.iloc[-1]
    change = last["p_churn"] - first["p_churn"]
    if len(table) < 2:
        return f"one cutoff only ({last['as_of']}): p_churn {last['p_churn']:.2f}"
    span = f"{first['p_churn']:.2f} -> {last['p_churn']:.2f} since {first['as_of']}"
    moved = groups.iloc[-1] - groups.iloc[0]
    if abs(change) < STABLE:
        return f"stable: p_churn {span}"
    trend = "deteriorating" if change > 0 else "improving"
    drivers = moved.sort_values(ascending=change < 0)
    drivers = drivers[np.sign(drivers) == np.sign(change)].head(2)
    why = ", ".join(f"{g} ({v:+.2f} log-odds)" for g, v in drivers.items())
    return f"{trend}: p_churn {span}" + (f", mostly from {why}" if why else "")


def _text(value: Any) -> str:
    """A reason cell as text: empty for a missing one (None, NaN or NA)."""
    return value if isinstance(value, str) else ""


def render(account: str, title: str, table: pd.DataFrame, summary: str) -> str:
    """The terminal table: one line per cutoff with its leading reason, then the latest reasons."""
    lines = [title, ""]
    header = f"{'as of':<11} {'p_churn':>7} {'tier':<7} {'change':>7}  reasons (groups)"
    lines.append(header)
    for row in table.itertuples():
        change = "" if pd.isna(row.p_churn_change) else f"{row.p_churn_change:+.3f}"
        tier = "" if pd.isna(row.risk_tier) else row.risk_tier
        lines.append(
            f"{row.as_of:<11} {row.p_churn:>7.3f} {tier:<7} {change:>7}  "
            f"{_text(row.reason_groups) or '(nothing raises the risk)'}"
        )
    last = table.iloc[-1]
    lines += ["", summary, f"reasons at {last['as_of']}:"]
    said = [_text(last[f"reason_{i}"]) for i in range(1, TOP + 1)]
    lines += [f"  {i}. {text}" for i, text in enumerate(said, 1) if text]
    if isinstance(last["action"], str):
        lines.append(f"action: {last['action']}")
    return "\n".join(lines)


def chart(
    title: str,
    table: pd.DataFrame,
    groups: pd.DataFrame,
    summary: str,
    tiers: dict[str, float] | None,
    out: Path,
) -> None:
    """PNG: p_churn over the cutoffs (tier bounds dashed) above each group's contribution."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    dates = pd.to_datetime(table["as_of"])
    fig, (top, bottom) = plt.subplots(
        2, 1, figsize=(9, 7), sharex=True, gridspec_kw={"height_ratios": [1, 1.2]}
    )
    top.plot(dates, table["p_churn"], marker="o", color="black", label="p_churn")
    for name, lower in (tiers or {}).items():
        if lower > 0:
            top.axhline(lower, ls="--", lw=0.8, color="grey")
            top.text(dates.iloc[0], lower, f" {name}", va="bottom", fontsize=8, color="grey")
    high = max(0.05, float(table["p_churn"].max()) * 1.25, *(tiers or {0: 0}).values())
    top.set_ylim(0, min(high, 1.02))
    top.set_ylabel("probability of churn", fontsize=9)
    top.set_title(f"{title}\n{summary}", fontsize=9, loc="left")
    for group in groups.columns:
        bottom.plot(dates, groups[group].to_numpy(), marker="o", label=group)
    bottom.axhline(0, color="black", lw=0.8)
    bottom.set_ylabel("contribution (log-odds):\nabove 0 raises the risk", fontsize=9)
    bottom.set_xticks(dates, table["as_of"], rotation=30, ha="right", fontsize=8)
    bottom.legend(fontsize=8, ncol=3, loc="best")
    fig.tight_layout()
    with atomic_file(out) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)


def safe_name(account_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", account_id)[:80] or "account"


def account_title(validated: Validated, account_id: str, model: LoadedModel) -> str:
    """'A004517 Apex Components 21 (food, north), model churn-risk/1'."""
    present = validated.columns["accounts"]
    cols = [c for c in ("name", "segment", "region") if c in present]
    parts: dict[str, Any] = {}
    if cols:
        row = validated.con.execute(
            f"SELECT {', '.join(cols)} FROM {validated.view('accounts')} WHERE account_id = ?",
            [account_id],
        ).fetchone()
        parts = dict(zip(cols, row, strict=True)) if row else {}
    where = ", ".join(str(parts[c]) for c in ("segment", "region") if parts.get(c))
    name = f" {parts['name']}" if parts.get("name") else ""
    return f"{account_id}{name}" + (f" ({where})" if where else "") + f", model {model.version}"


def run(
    account_id: str,
    data: Path,
    as_of: str | None,
    model: str | None,
    out: Path,
    cutoffs: int,
    every: int | None,
    params: dict[str, Any],
) -> None:
    """`churn explain`: the account's risk at `cutoffs` cutoffs `every` days apart (None: the
    training schedule's step) up to the day `as_of` (text; None: the day after the data ends),
    printed as a table and drawn as the PNG chart `out`.
    Raises UserError (exit 2) on bad options or data."""
    settings = Settings.from_params(params.get("score") or {})
    if every is not None and every < 1:
        raise UserError("--every must be at least 1 day")
    asked = as_day(as_of, "--as-of")
    with step(f"reading {data}"):
        validated = load(data, params.get("validate"))
    every_days = every or schedule_step(validated, params)
    with step("loading the model"):
        loaded, reference = load_scoring_model(params, model, validated)
    when = asked or data_end(validated)
    with step(f"{account_id} at {cutoffs} cutoffs"):
        lineage = fingerprint(validated, data_lineage(params))["lineage"]
        table, groups = history(
            validated, loaded, account_id, when, settings, reference, cutoffs, every_days, lineage
        )
    title = account_title(validated, account_id, loaded)
    summary = verdict(table, groups)
    with step("drawing the chart"):
        chart(title, table, groups, summary, table.attrs.get("tier_bounds"), out)
    typer.echo(render(account_id, title, table, summary))
    typer.echo(f"chart -> {out}")
