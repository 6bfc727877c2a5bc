"""The fingerprint of validated data: where it came from, what it holds, its lineage key.

The validate stage records the source folder in the clean folder's validation.json; the
featurize stage writes the fingerprint into data/features/meta.json; the train stage records
it with the model (train_info.json, the MLflow run, the registered version's tags). Scoring
compares the scored data's lineage key with the model's (models/lineage.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.errors import UserError
from pipeline.paths import project_root, repo_root

if TYPE_CHECKING:
    from pipeline.store import Validated


def source_of(path: Path | str) -> str:
    """A source folder as recorded: relative to the project root when inside it, else absolute.

    DVC runs queued experiments in temporary copies of the repository, so an absolute path
    inside the project would differ from run to run; the relative one does not.
    """
    folder = Path(path).resolve()
    for root in (project_root(), repo_root()):
        try:
            return folder.relative_to(root.resolve()).as_posix() or "."
        except ValueError:
            continue
    return folder.as_posix()


def recorded_source(text: str | None) -> str | None:
    """A source as an older validation.json recorded it (the path given): absolute ones are
    normalised like `source_of`, relative ones were relative to the project already."""
    if not text:
        return None
    return source_of(text) if Path(text).is_absolute() else Path(text).as_posix()


def data_lineage(params: Mapping[str, Any]) -> str | None:
    """The `data.lineage` param: the lineage key the user gives (None: from the source)."""
    value = (params.get("data") or {}).get("lineage")
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, dict | list | bool):
        raise UserError(
            f"data.lineage must be a name (e.g. acme-erp) or null, not {value!r}; "
            "fix it in params.yaml"
        )
    return str(value).strip()


def fingerprint(validated: Validated, lineage: str | None = None) -> dict[str, Any]:
    """The fingerprint of validated data; its lineage key is `lineage`, else the source folder."""
    source = validated.source or source_of(validated.data_dir)
    accounts = validated.kept.get("accounts", validated.rows.get("accounts"))
    return {
        "lineage": lineage or source,
        "lineage_from": "data.lineage" if lineage else "source",
        "source": source,
        "tables": {t: list(cols) for t, cols in sorted(validated.columns.items())},
        "data_start": validated.data_start,
        "data_end": validated.data_end,
        "accounts": None if accounts is None else int(accounts),
    }
