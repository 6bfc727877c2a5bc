"""Render the feature catalog as Markdown (docs/features.md is generated from it)."""

from __future__ import annotations

from features.catalog import CATALOG, GROUPS
from features.fixed_point import LIMIT, UNIT

GROUP_IDEAS = {
    "silence": "The most convincing sign of a failing relationship is the absence of complaints: "
    "no customer is satisfied for long; a quiet one is either not candid or not being contacted.",
    "dependency": "Strong partners depend on each other; the supplier creates dependency by doing "
    "more for the customer (ordering terminals, EDI, vendor-managed inventory, service "
    "contracts, training, co-design).",
    "trust": "Trust lowers the cost of the relationship: low-trust buyers spend about half of "
    "meeting time on price, contracts and blame, high-trust ones about a quarter; trusting "
    "partners share plans; aggressive buyers play suppliers against each other.",
    "promises": "Promises made before the sale set expectations; the people who make them (sales) "
    "are not the ones who keep them (manufacturing, service).",
    "engagement": "Relationships drift toward less attention unless someone works against it; "
    "engineers and manufacturing people who spend time with customers build lasting ones.",
}
DIRECTION = {"higher": "higher", "lower": "lower", "either": "either way"}


def render_markdown() -> str:
    """The catalog as a Markdown page: one table per group."""
    lines = [
        "# Relationship features",
        "",
        "Generated from `features/catalog.py` by `churn docs`; do not edit by hand "
        "(a test fails when this page is stale).",
        "",
        "Every feature is computed at a cutoff from facts dated strictly before it. Windows come "
        "from `params.yaml` (`features.recent_days`, default 90; `features.long_days`, default "
        "365; the prior window is the `recent_days` before the recent one). An empty value means "
        "unknown (for example no complaint ever), never zero; counts are 0 when the table exists "
        "and the account had no such event. A feature whose table or column is missing from the "
        "data is left out, and the validation report says so.",
        "",
        "Each feature is declared in `features/` as a few aggregates over an account's events "
        "of one stream (orders by order date, orders by promised date, interactions, ...) in a "
        "window of whole days before the cutoff, and how they combine. The same declaration "
        "runs three ways (`features.engine`): `join` joins the events to each cutoff (fastest "
        "for one cutoff, as in scoring: there it reads each table in a few grouped passes, one "
        "per stream over only the rows within that stream's longest window, one over every row "
        "for the unbounded windows, one per value counted distinct); `sliding` (the default "
        "for a schedule, as in training) "
        "has DuckDB sort each stream's events by account and day once, then slides every "
        "window from one cutoff to the next in compiled loops; `window` does the same in SQL "
        "with RANGE window frames (slower, but DuckDB spills it to disk when memory is short). "
        "Tests check that all three give the same values at every cutoff.",
        "",
        "Features marked *grows with history* depend on the length of the data's history "
        "(a window reaching back to the first event, or a count with no lower bound), so their "
        "values drift upward (or fewer are unknown) as the history lengthens, whatever the "
        "customers do. Scoring "
        "computes their drift against the training data like any other's, but lists it apart "
        "as expected: it never makes the drift warning on its own.",
        "",
        "| group | features |",
        "|---|---|",
    ]
    for group in GROUPS:
        lines.append(f"| [{group}](#{group}) | {sum(f.group == group for f in CATALOG)} |")
    lines.append(f"| all | {len(CATALOG)} |")
    for group in GROUPS:
        lines += [
            "",
            f"## {group}",
            "",
            GROUP_IDEAS[group],
            "",
            "| feature | meaning | unit | risk rises when | needs |",
            "|---|---|---|---|---|",
        ]
        for f in CATALOG:
            if f.group != group:
                continue
            if f.source == "derived":
                needs = "from " + ", ".join(f"`{i}`" for i in f.inputs)
            else:
                table = f.source
                needs = ", ".join([f"`{table}`"] + [f"`{table}.{c}`" for c in f.requires])
            meaning = f.description + (" *Grows with history.*" if f.grows_with_history else "")
            lines.append(
                f"| `{f.name}` | {meaning} | {f.unit} | {DIRECTION[f.direction]} | {needs} |"
            )
    lines += [
        "",
        "## Precision",
        "",
        "Sums and means of real values (amounts, minutes, days, log hours) add each value in "
        f"whole millionths of its unit ({UNIT:,} to the unit; beyond {LIMIT:.0e} a value counts "
        "as that bound), as integers: exactly, so the order in which DuckDB's threads add the "
        "rows cannot change a bit, and the same data and params give byte-identical feature "
        "tables with any `features.threads` (empty, the default: every core). Counts, "
        "distinct counts, the earliest and latest times are exact anyway.",
    ]
    return "\n".join(lines) + "\n"
