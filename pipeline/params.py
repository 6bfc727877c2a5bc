"""Read params.yaml once, at the entry point; everything below receives plain values."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from pipeline.errors import UserError


def load_params(path: Path) -> dict[str, Any]:
    """Load the params file, with a clear error (UserError, exit 2) when it is missing, is not
    YAML, or breaks its schema (pipeline/config.py: an unknown key, with the nearest valid one,
    or a value of the wrong type). Returns every section and key, with the schema's defaults
    where the file has none."""
    if not path.is_file():
        raise UserError(
            f"params file not found: {path} (run from the project folder or pass --params)"
        )
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise UserError(f"{path} is not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise UserError(f"{path} must hold a mapping of sections (data, label, train, ...)")
    from pipeline.config import complete

    return complete(data, str(path))  # unknown keys, wrong types: exit 2; defaults filled in


def flatten(params: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Flatten nested params to dotted keys, as MLflow and `dvc exp show` name them."""
    flat: dict[str, Any] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat
