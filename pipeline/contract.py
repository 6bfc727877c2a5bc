"""The input data contract (DESIGN section 4): tables, columns, types and vocabularies."""

from __future__ import annotations

from dataclasses import dataclass

# Logical column types and the DuckDB type each is cast to in the clean tables.
SQL_TYPES = {"id": "VARCHAR", "str": "VARCHAR", "ts": "TIMESTAMP", "float": "DOUBLE"}


@dataclass(frozen=True)
class Column:
    """One contract column."""

    name: str
    kind: str  # id, str, ts or float
    required: bool = False


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
                Column("customer_since", "ts"),
                Column("annual_wallet", "float"),
            ),
            required=True,
            key="account_id",
        ),
        TableSpec(
            "orders",
            (
                Column("order_id", "id", True),
                Column("account_id", "id", True),
                Column("order_date", "ts", True),
                Column("amount", "float", True),
                Column("product_line", "str"),
                Column("channel", "str"),
                Column("quantity", "float"),
                Column("promised_date", "ts"),
                Column("delivered_date", "ts"),
            ),
            required=True,
            key="order_id",
        ),
        TableSpec(
            "interactions",
            (
                Column("interaction_id", "id", True),
                Column("account_id", "id", True),
                Column("occurred_at", "ts", True),
                Column("type", "str", True),
                Column("initiated_by", "str"),
                Column("department", "str"),
                Column("minutes", "float"),
                Column("contact_id", "id"),
                Column("resolved_at", "ts"),
            ),
            key="interaction_id",
            vocabulary=("type", INTERACTION_TYPES),
        ),
        TableSpec(
            "links",
            (
                Column("account_id", "id", True),
                Column("link_type", "str", True),
                Column("start_date", "ts", True),
                Column("end_date", "ts"),
            ),
            vocabulary=("link_type", LINK_TYPES),
        ),
        TableSpec(
            "churn",
            (
                Column("account_id", "id", True),
                Column("churned_at", "ts", True),
                Column("reason", "str"),
            ),
            key="account_id",
        ),
    )
}

# The timestamp column that dates each event table (used for the data's time range).
EVENT_TIME = {"orders": "order_date", "interactions": "occurred_at", "churn": "churned_at"}
