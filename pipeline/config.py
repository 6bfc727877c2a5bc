"""params.yaml described once: one pydantic model per section, every default here, unknown keys
refused. pipeline/params.py reads the file through `complete`, so every command sees every key.

`check(raw)` returns the typed `Params` or raises UserError (exit 2) naming each wrong key
with the nearest valid one (`train.num_leave: unknown key; did you mean train.num_leaves?`)
and each wrong type with what was given. Types are as permissive as the code that reads them
(a date may be a YAML date or text; the stage parses it). The checks of a value (a mode among
its choices, a count of at least 1) stay with the code that uses it, whose messages say how to
fix it; the choices are in the comments here.
"""

from __future__ import annotations

import copy
import datetime as dt
import difflib
from functools import cache
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from pipeline.contract import LATE_GAP_DAYS
from pipeline.errors import UserError

Day = dt.date | str | None


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Data(Section):
    raw: str = "data/raw"
    truth: str | None = None  # the simulator's ground truth (params.yaml: data/truth.parquet)
    lineage: str | None = None


class Validate(Section):
    policy: str = "fail"  # fail, drop
    end_date: Day = None
    gap_days: int | None = LATE_GAP_DAYS
    vocabulary: dict[str, dict[str, str] | None] = Field(
        default_factory=lambda: {"interactions.type": {}, "links.link_type": {}}
    )


class Simulate(Section):
    accounts: int = 5000
    seed: int = 42
    start: Day = "2023-01-02"
    weeks: int = 156
    format: str = "csv"  # csv, parquet
    mc_samples: int = 64
    shift_week: int | None = None
    shift_offers: float = 3.0
    shift_health: float = 0.45


class Label(Section):
    mode: str = "auto"  # auto, explicit, inactivity
    lead_days: int = 0
    horizon_days: int = 90
    active_days: int = 365  # inactivity labels: eligible if it ordered this recently


class Schedule(Section):
    start: Day = None
    end: Day = None
    every_days: int | None = None
    warmup_days: int | None = None
    min_train_cutoffs: int = 6


class Features(Section):
    groups: list[str] = ["silence", "dependency", "trust", "promises", "engagement"]
    engine: str = "auto"  # auto, join, window, sliding
    threads: int | None = None
    memory_limit: str | None = None
    recent_days: int = 90
    long_days: int = 365
    # the feature library's defaults (features/language.py FeatureConfig, features/catalog.py
    # GROUPS), repeated so that reading params does not import features/ (tests/test_config.py
    # checks they agree)
    direct_channels: list[str] = ["ordering_terminal", "edi", "portal", "vmi"]
    transactional_types: list[str] = ["price_negotiation", "contract_negotiation", "dispute"]
    collaborative_types: list[str] = ["planning_meeting", "design_collaboration", "business_review"]
    sharing_types: list[str] = ["forecast_shared", "planning_meeting", "design_collaboration"]
    # not in the shipped params.yaml: the contract's vocabulary fixes them (docs/data-contract.md)
    contract_link_types: list[str] = ["service_contract", "maintenance_contract"]
    engineering_departments: list[str] = ["engineering", "manufacturing"]
    sales_departments: list[str] = ["sales", "management"]
    service_departments: list[str] = ["service", "quality"]


class Split(Section):
    test_cutoffs: int = 3
    valid_cutoffs: int = 3


class Train(Section):
    seed: int = 7
    n_estimators: int = 3000
    learning_rate: float = 0.02
    num_leaves: int = 7
    min_child_samples: int = 400
    subsample: float = 0.8
    colsample_bytree: float = 0.3
    reg_lambda: float = 1.0
    early_stopping_rounds: int = 200
    calibration: str = "platt"  # platt, isotonic
    blend: bool = True


class Campaign(Section):
    contact_cost: float | None = None
    account_value: float | None = None
    success_rate: float | None = None


class Promote(Section):
    metric: str = "auc"  # auc, pr_auc, brier, log_loss, ece
    margin: float = 0.002


class Mlflow(Section):
    experiment: str = "churn"
    registered_model: str = "churn-risk"


class Reasons(Section):
    tiers: list[str] = ["high", "medium"]
    min_contribution: float = 0.01


class Drift(Section):
    psi_threshold: float = 0.25
    min_rows: int = 200


class Score(Section):
    tiers_by: str = "share"  # share, probability
    tiers: dict[str, float] = {"high": 0.05, "medium": 0.20, "low": 1.0}
    reasons: Reasons = Reasons()
    # added to the group actions of pipeline/tiers.py DEFAULT_PLAYBOOK, key by key
    playbook: dict[str, str] = {}
    change_days: int = 28
    history: str | None = "outputs/history"
    drift: Drift = Drift()
    engine: str = "duckdb"  # duckdb, spark


class Monitor(Section):
    level: float = 0.99


class Params(Section):
    data: Data = Data()
    validate_: Validate = Field(Validate(), alias="validate")
    simulate: Simulate = Simulate()
    label: Label = Label()
    schedule: Schedule = Schedule()
    features: Features = Features()
    split: Split = Split()
    train: Train = Train()
    campaign: Campaign = Campaign()
    promote: Promote = Promote()
    mlflow: Mlflow = Mlflow()
    score: Score = Score()
    monitor: Monitor = Monitor()

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def _fields(model: type[BaseModel], path: tuple) -> list[str]:
    """The valid keys at `path` inside `model` (empty when the path leaves the schema)."""
    for key in path:
        field = next((f for n, f in model.model_fields.items() if (f.alias or n) == key), None)
        kind = getattr(field, "annotation", None) if field else None
        if not (isinstance(kind, type) and issubclass(kind, BaseModel)):
            return []
        model = kind
    return [f.alias or n for n, f in model.model_fields.items()]


def _message(error: dict[str, Any]) -> str:
    path = tuple(str(p) for p in error["loc"])
    name = ".".join(path)
    if error["type"] == "extra_forbidden":
        valid = _fields(Params, path[:-1])
        near = (
            difflib.get_close_matches(path[-1], valid, n=1)
            or [v for v in valid if v.startswith(path[-1]) or path[-1].startswith(v)][:1]
        )
        where = ".".join(path[:-1])
        hint = f"; did you mean {where + '.' if where else ''}{near[0]}?" if near else ""
        return f"{name}: unknown key{hint} (valid here: {', '.join(valid)})"
    return f"{name}: {error['msg']} (got {error.get('input')!r})"


@cache
def _defaults() -> dict[str, Any]:
    return Params().model_dump(by_alias=True)


def defaults(section: str) -> dict[str, Any]:
    """The schema's defaults of one section, as plain values (a copy: the caller may change it)."""
    return copy.deepcopy(_defaults()[section])


def with_defaults(section: str, given: dict[str, Any] | None) -> dict[str, Any]:
    """`given`, a section as a caller passes it (partial, or None), over the section's defaults
    (one level: a nested mapping given replaces the default's whole)."""
    return {**defaults(section), **(given or {})}


def complete(raw: dict[str, Any], source: str = "params.yaml") -> dict[str, Any]:
    """`raw` checked (see check) and completed: every section and key, the schema's default
    where `raw` has none, as plain values (the form every stage reads)."""
    return check(raw, source).model_dump(by_alias=True)


def check(raw: dict[str, Any], source: str = "params.yaml") -> Params:
    """The typed params, or a UserError that lists every wrong key and value in `source`."""
    try:
        return Params.model_validate(raw or {})
    except ValidationError as exc:
        lines = [_message(e) for e in exc.errors()]
        raise UserError(f"{source}: " + "\n  ".join(["", *lines]).lstrip()) from None


class Sections(dict):
    """A stage's view of the params: only what the stage declares in its `PARAMS` (sections, or
    `section.key`), the same list as its `params:` in dvc.yaml, so that DVC reruns the stage
    exactly when something it reads changes. Reading anything else is a bug in the stage (an
    AssertionError naming it), never a silent default."""

    def __init__(self, values: dict[str, Any], stage: str, where: str = "") -> None:
        super().__init__(values)
        self.stage, self.where = stage, where

    def _check(self, key: str) -> None:
        if key not in self:
            raise AssertionError(
                f"the {self.stage} stage reads params {self.where}{key}, which its PARAMS and "
                "dvc.yaml's params do not list"
            )

    def __getitem__(self, key: str) -> Any:
        self._check(key)
        return super().__getitem__(key)

    def get(self, key: str, default: Any = None) -> Any:
        self._check(key)
        return super().get(key, default)


def only(params: dict[str, Any], declared: tuple[str, ...], stage: str) -> Sections:
    """The part of the (complete) `params` that `declared` names: whole sections (`score`) or
    single keys (`data.lineage`)."""
    picked: dict[str, Any] = {}
    for name in declared:
        section, _, key = name.partition(".")
        if key:
            picked.setdefault(section, {})[key] = params[section][key]
        else:
            picked[section] = params[section]
    return Sections(
        {
            name: Sections(value, stage, f"{name}.")
            if isinstance(value, dict) and any(d.startswith(f"{name}.") for d in declared)
            else value
            for name, value in picked.items()
        },
        stage,
    )
