"""Pieces of the HTML report: figures as inline PNG images and numbers as text."""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def png(fig) -> str:
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def img(data: str, alt: str, width: int | None = None) -> str:
    style = f' style="width:{width}px; max-width:100%"' if width else ""
    return f'<img alt="{html.escape(alt)}"{style} src="data:image/png;base64,{data}">'


def file_png(path: Path) -> str | None:
    return base64.b64encode(path.read_bytes()).decode("ascii") if path.is_file() else None


def num(value: Any, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "&ndash;"
    return f"{value:.{digits}f}" if isinstance(value, float) else html.escape(str(value))
