"""Data lineage: which data a model was trained on, and the registry aliases of each lineage.

A fingerprint is plain data (written by the featurize stage, see pipeline/lineage.py): the
source folder, its tables and columns, the date range, the number of accounts and a lineage
key, the name under which models trained on that data compete (`data.lineage`, else the
source folder). Models of one lineage share the aliases `champion-<slug>` and
`challenger-<slug>`; models of different lineages are never compared.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any

FINGERPRINT_NAME = "data_fingerprint.json"  # the MLflow run artifact
TAG_LINEAGE = "data.lineage"
TAG_SOURCE = "data.source"
TAG_FINGERPRINT = "data.fingerprint"  # the whole fingerprint as JSON, on the model version
UNKNOWN = "data of unknown lineage (the model was trained before lineage was recorded)"


def lineage_of(fingerprint: Mapping[str, Any] | None) -> str | None:
    """The lineage key of a fingerprint (None: unknown)."""
    if not fingerprint:
        return None
    key = fingerprint.get("lineage")
    return str(key) if key not in (None, "") else None


def slug(lineage: str) -> str:
    """A short alias-safe name for a lineage key: its readable tail and a hash of all of it."""
    readable = re.sub(r"[^A-Za-z0-9_]+", "-", lineage).strip("-_")[-24:].strip("-_")
    digest = hashlib.sha256(lineage.encode("utf-8")).hexdigest()[:8]
    return f"{readable}-{digest}" if readable else digest


def lineage_alias(base: str, lineage: str) -> str:
    """The per-lineage alias, e.g. 'champion-data-raw-1a2b3c4d' (letters, digits, _ and -)."""
    return f"{base}-{slug(lineage)}"


def describe(fingerprint: Mapping[str, Any] | None) -> str:
    """The data a fingerprint describes, in a few words for messages."""
    if not fingerprint:
        return UNKNOWN
    source = fingerprint.get("source") or "?"
    key = lineage_of(fingerprint)
    head = f"{source}" if key == source else f"lineage '{key}' ({source})"
    facts = []
    if fingerprint.get("accounts") is not None:
        facts.append(f"{fingerprint['accounts']} accounts")
    if fingerprint.get("data_start") or fingerprint.get("data_end"):
        facts.append(f"{fingerprint.get('data_start')} to {fingerprint.get('data_end')}")
    if fingerprint.get("tables"):
        facts.append("tables " + ", ".join(fingerprint["tables"]))
    return head + (f" [{'; '.join(facts)}]" if facts else "")


def version_tags(fingerprint: Mapping[str, Any]) -> dict[str, str]:
    """Tags for a run or model version that name the data it was trained on."""
    return {
        TAG_LINEAGE: str(lineage_of(fingerprint)),
        TAG_SOURCE: str(fingerprint.get("source")),
        TAG_FINGERPRINT: json.dumps(dict(fingerprint), sort_keys=True, default=str),
    }


def from_tags(tags: Mapping[str, str] | None) -> dict[str, Any] | None:
    """The fingerprint recorded in a model version's tags (None: none recorded)."""
    tags = tags or {}
    try:
        found = json.loads(tags[TAG_FINGERPRINT])
        if isinstance(found, dict) and lineage_of(found):
            return found
    except (KeyError, ValueError, TypeError):
        pass
    if tags.get(TAG_LINEAGE):
        return {"lineage": tags[TAG_LINEAGE], "source": tags.get(TAG_SOURCE)}
    return None
