"""The input data contract: tables, columns, types, vocabularies and rules.

docs/data-contract.md describes every rule here and the message each breach gets.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import pandas as pd

from pipeline.errors import UserError

# Logical column types and the DuckDB type each is cast to in the clean tables.
SQL_TYPES = {"id": "VARCHAR", "str": "VARCHAR", "ts": "TIMESTAMP", "float": "DOUBLE"}

# Dates in text: YYYY-MM-DD, optionally with a time (HH:MM, HH:MM:SS, fractions), space or T.
DATE_PATTERN = r"[0-9]{4}-[0-9]{2}-[0-9]{2}([ T][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,9})?)?)?"
# Dates given from outside the tables (the command line, params, side files): the same forms,
# with T or a space, and optionally a time zone (Z, +01:00, +0100, +01).
ZONED_DATE_PATTERN = DATE_PATTERN + r"(Z|[+-][0-9]{2}(:?[0-9]{2})?)?"
DATE_FORMS = (
    "YYYY-MM-DD, or a date-time such as 2025-02-01T09:30, 2025-02-01 09:30:00 or "
    "2025-02-01T09:30:00+01:00 (Z for UTC)"
)
# Text that looks like a date in some other layout (05/01/2023, 2023/01/05, 5.1.23, 20230105).
OTHER_DATE_PATTERN = r"[0-9]{1,4}[./-][0-9]{1,2}[./-][0-9]{1,4}.*|[0-9]{8}"
# Dates outside this range are placeholders (0001-01-01, 9999-12-31) or typos, not events.
PLAUSIBLE_DATES = ("1900-01-01", "2200-01-01")
# Event dates far after the rest of the data (a typo such as 2099 for 2023): after a stretch of
# more than validate.gap_days days (LATE_GAP_DAYS by default) with no event at all come events
# that are few beside those before it: at most LATE_SHARE of them, or, when the stretch is
# longer than the whole history before it, fewer than they are (pipeline.timeline.late_tail).
LATE_GAP_DAYS = 180
LATE_SHARE = 0.01
# Cell texts that mean "no value" in date and number columns (exports write them for empty).
NULL_TOKENS = ("null", "none", "na", "n/a", "nan", "nat", "\\n")

# Parquet column types (DuckDB names) accepted for each logical type; text is always accepted
# and checked value by value. An all-empty column is accepted whatever its type.
_INTEGER = r"U?(TINYINT|SMALLINT|INTEGER|BIGINT|HUGEINT)"
PARQUET_TYPES = {
    "id": rf"VARCHAR|{_INTEGER}",
    "str": rf"VARCHAR|{_INTEGER}|BOOLEAN|FLOAT|DOUBLE|DECIMAL\(.*\)",
    "ts": r"VARCHAR|DATE|TIMESTAMP(_S|_MS|_NS)?|TIMESTAMP WITH TIME ZONE",
    "float": rf"VARCHAR|{_INTEGER}|FLOAT|DOUBLE|DECIMAL\(.*\)",
}
KIND_WORDS = {
    "id": "text or whole numbers",
    "str": "text",
    "ts": "dates or timestamps (or text YYYY-MM-DD)",
    "float": "numbers",
}

POLICIES = ("fail", "drop")


@dataclass(frozen=True)
class Column:
    """One contract column."""

    name: str
    kind: str  # id, str, ts or float
    required: bool = False
    non_negative: bool = False  # float: values below zero break the contract
    event: bool = False  # ts: the date something happened, so never after validate.end_date


@dataclass(frozen=True)
class TableSpec:
    """One contract table: its columns, its unique key and whether it must exist."""

    name: str
    columns: tuple[Column, ...]
    required: bool = False
    key: str | None = None  # unique id column
    vocabulary: tuple[str, tuple[str, ...]] | None = None  # (column, allowed values)

    @property
    def required_columns(self) -> list[str]:
        return [c.name for c in self.columns if c.required]

    def column(self, name: str) -> Column:
        """The contract column called `name`."""
        return next(c for c in self.columns if c.name == name)


@dataclass(frozen=True)
class DateOrder:
    """Within one row, `later` (when present) must not fall on an earlier day than `earlier`."""

    table: str
    later: str
    earlier: str
    check: str
    fix: str


# The vocabularies of interactions.type and links.link_type, defined here once. The simulator
# (pipeline/simulator/constants.py) uses them too and draws each type by its position, so
# reordering a tuple changes every simulated world (appending a type changes it as well).
INTERACTION_TYPES = (
    "complaint",
    "service_request",
    "repair",
    "installation",
    "price_negotiation",
    "contract_negotiation",
    "dispute",
    "planning_meeting",
    "forecast_shared",
    "design_collaboration",
    "business_review",
    "site_visit",
    "rfq",
    "inspection",
    "other",
)
LINK_TYPES = (
    "ordering_terminal",
    "edi",
    "portal",
    "vmi",
    "service_contract",
    "maintenance_contract",
    "training",
    "co_design",
    "other",
)

TABLES: dict[str, TableSpec] = {
    spec.name: spec
    for spec in (
        TableSpec(
            "accounts",
            (
                Column("account_id", "id", True),
                Column("name", "str"),
                Column("segment", "str"),
                Column("region", "str"),
                Column("size_band", "str"),
                Column("customer_since", "ts", event=True),
                Column("annual_wallet", "float", non_negative=True),
            ),
            required=True,
            key="account_id",
        ),
        TableSpec(
            "orders",
            (
                Column("order_id", "id", True),
                Column("account_id", "id", True),
                Column("order_date", "ts", True, event=True),
                Column("amount", "float", True, non_negative=True),
                Column("product_line", "str"),
                Column("channel", "str"),
                Column("quantity", "float", non_negative=True),
                Column("promised_date", "ts"),
                Column("delivered_date", "ts", event=True),
            ),
            required=True,
            key="order_id",
        ),
        TableSpec(
            "interactions",
            (
                Column("interaction_id", "id", True),
                Column("account_id", "id", True),
                Column("occurred_at", "ts", True, event=True),
                Column("type", "str", True),
                Column("initiated_by", "str"),
                Column("department", "str"),
                Column("minutes", "float", non_negative=True),
                Column("contact_id", "id"),
                Column("resolved_at", "ts", event=True),
            ),
            key="interaction_id",
            vocabulary=("type", INTERACTION_TYPES),
        ),
        TableSpec(
            "links",
            (
                Column("account_id", "id", True),
                Column("link_type", "str", True),
                Column("start_date", "ts", True, event=True),
                Column("end_date", "ts"),
            ),
            vocabulary=("link_type", LINK_TYPES),
        ),
        TableSpec(
            "churn",
            (
                Column("account_id", "id", True),
                Column("churned_at", "ts", True, event=True),
                Column("reason", "str"),
            ),
            key="account_id",
        ),
    )
}

# The timestamp column that dates each event table (used for the data's time range).
EVENT_TIME = {"orders": "order_date", "interactions": "occurred_at", "churn": "churned_at"}

# Dates within a row that must come in order (compared by day: a date without a time is
# midnight, so an order placed at 14:00 and delivered "the same day" is not a breach).
DATE_ORDERS = (
    DateOrder(
        "orders",
        "delivered_date",
        "order_date",
        "delivered before it was ordered",
        "check the two dates (swapped columns or a wrong year are the usual causes)",
    ),
    DateOrder(
        "orders",
        "promised_date",
        "order_date",
        "delivery promised before the order was placed",
        "check the two dates (swapped columns or a wrong year are the usual causes)",
    ),
    DateOrder(
        "interactions",
        "resolved_at",
        "occurred_at",
        "resolved before it occurred",
        "check the two dates, or leave resolved_at empty when unknown",
    ),
    DateOrder(
        "links",
        "end_date",
        "start_date",
        "link ends before it starts",
        "check the two dates; leave end_date empty for a link that is still active",
    ),
)


def parse_date(value: Any, what: str) -> pd.Timestamp:
    """A date or date-time given from outside the tables, on the data's clock.

    Accepts the unambiguous ISO 8601 extended forms only (`DATE_FORMS`): a date, or a
    date-time with `T` or a space, with or without seconds, fractions and a time zone. A time
    zone converts the time to UTC, the clock validate reads the tables on (their times carry
    no zone; zoned Parquet times are converted to UTC); the result carries no zone. Other
    spellings (01.02.2025, 02/01/2025, 20250201) are ambiguous or not ISO: UserError (exit 2)
    naming `what` and the forms expected. Dates already parsed (datetime, date, Timestamp,
    as YAML gives them) pass through the same conversion.
    """
    if isinstance(value, str):
        text = value.strip()
        if not re.fullmatch(ZONED_DATE_PATTERN, text):
            raise UserError(f"{what} {value!r} is not a date; use {DATE_FORMS}")
    elif not hasattr(value, "year"):
        raise UserError(f"{what} {value!r} is not a date; use {DATE_FORMS}")
    else:
        text = value
    try:
        stamp = pd.Timestamp(text)
    except (ValueError, OverflowError) as exc:
        raise UserError(f"{what} {value!r} is not a real date; use {DATE_FORMS}") from exc
    if stamp.tzinfo is not None:
        stamp = stamp.tz_convert("UTC").tz_localize(None)
    return stamp


def as_day(value: str | None, option: str) -> pd.Timestamp | None:
    """A date given on the command line (parse_date), as its day: a time of day, on the data's
    clock, counts from the start of that day. None stays None."""
    return None if value is None else parse_date(value, option).normalize()
