"""File I/O: every output is written to a temporary name and renamed into place; every CSV
file is read one way.

Reading: `read_csv_table` is the one CSV reader of the product (the input tables in validate,
account lists and previous score files in score): DuckDB's `read_csv` with every cell as text,
the delimiter sniffed (`,` `;` tab `|`), UTF-8 (a BOM is fine) else UTF-16 by its BOM else
Latin-1, lines that cannot be read collected rather than skipped in silence. Numbers are read
as validate reads them (`numbers`): a dot as the decimal mark, no thousands separators.

Writing: a process killed mid-write leaves the previous output where it was, plus at most a hidden
`.NAME.<pid>.<random>.tmp` beside it; the next write to the same target removes temporaries
whose process is gone. Text written to CSV that a spreadsheet would run as a formula is
neutralised with a leading apostrophe.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import json
import logging
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from pipeline.contract import NULL_TOKENS
from pipeline.errors import UserError

log = logging.getLogger(__name__)

TABLE_SUFFIXES = (".csv", ".parquet")
# Cells a spreadsheet reads as a formula (OWASP "CSV injection"): neutralised with a leading '.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clean_stale(target: Path) -> None:
    """Remove temporaries left beside `target` by writers that were killed (their pid is gone)."""
    target = Path(target)
    if not target.parent.is_dir():
        return
    pattern = re.compile(rf"\.{re.escape(target.name)}\.(\d+)\.[^.]+\.tmp")
    for path in target.parent.iterdir():
        match = pattern.fullmatch(path.name)
        if match and int(match.group(1)) != os.getpid() and not _alive(int(match.group(1))):
            log.info("removing %s, left by an interrupted run", path)
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)


def _prefix(target: Path) -> str:
    return f".{target.name}.{os.getpid()}."


@contextlib.contextmanager
def atomic_file(target: Path) -> Iterator[Path]:
    """Yield a temporary path beside `target`; rename it into place only if the block succeeds."""
    with atomic_files([target]) as (tmp,):
        yield tmp


@contextlib.contextmanager
def atomic_files(targets: Sequence[Path]) -> Iterator[list[Path]]:
    """Temporary paths beside several targets, renamed into place together once all are written.

    The renames follow one another at the end, so a kill can split the set only within those
    few microseconds; a kill while writing leaves every target as it was.
    """
    targets = [Path(t) for t in targets]
    tmps: list[Path] = []
    try:
        for target in targets:
            target.parent.mkdir(parents=True, exist_ok=True)
            clean_stale(target)
            fd, tmp = tempfile.mkstemp(prefix=_prefix(target), suffix=".tmp", dir=target.parent)
            os.close(fd)
            tmps.append(Path(tmp))
            tmps[-1].chmod(0o666 & ~_umask())  # mkstemp makes 0600; outputs get the usual mode
        yield tmps
        for tmp in tmps:
            with tmp.open("rb") as fh:
                os.fsync(fh.fileno())
        for tmp, target in zip(tmps, targets, strict=True):
            os.replace(tmp, target)
    finally:
        for tmp in tmps:
            tmp.unlink(missing_ok=True)


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one step (Linux renameat2 RENAME_EXCHANGE); False where unsupported."""
    if not sys.platform.startswith("linux"):
        return False
    renameat2 = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)
    if renameat2 is None:
        return False
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.EPERM):
        return False
    raise OSError(err, os.strerror(err), str(b))


@contextlib.contextmanager
def atomic_dir(target: Path) -> Iterator[Path]:
    """Yield a fresh temporary folder beside `target`; swap it into place if the block succeeds.

    The swap is one atomic exchange on Linux. Elsewhere it is two renames (target aside to
    `.NAME.old`, then the new folder in); a kill between them is repaired by the next write,
    which puts `.NAME.old` back first.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    old = target.with_name(f".{target.name}.old")
    if old.exists() and not target.exists():
        log.warning("restoring %s from %s, left by an interrupted run", target, old.name)
        os.replace(old, target)
    shutil.rmtree(old, ignore_errors=True)
    clean_stale(target)
    tmp = Path(tempfile.mkdtemp(prefix=_prefix(target), suffix=".tmp", dir=target.parent))
    tmp.chmod(0o777 & ~_umask())
    try:
        yield tmp
        if not target.exists():
            os.replace(tmp, target)
        elif not _exchange(tmp, target):
            os.replace(target, old)
            os.replace(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def write_json(data: Any, target: Path) -> None:
    """Write JSON atomically, pretty-printed and with sorted keys."""
    with atomic_file(target) as tmp:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")


def check_table_suffix(path: Path) -> str:
    """Return the table format of `path` from its extension, or fail clearly."""
    suffix = Path(path).suffix.lower()
    if suffix not in TABLE_SUFFIXES:
        raise UserError(f"{path}: use a .csv or .parquet file name (got '{suffix or 'none'}')")
    return suffix


def _neutral(value: Any) -> Any:
    if (
        isinstance(value, str)
        and value.startswith(FORMULA_START)
        and not _PLAIN_NUMBER.fullmatch(value)
    ):
        return "'" + value
    return value


def neutralise(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy whose text cells and headers cannot run as spreadsheet formulas."""
    out = frame.copy()
    for column in out.columns:
        series = out[column]
        if isinstance(series.dtype, pd.CategoricalDtype):
            series = series.astype(object)
        if pd.api.types.is_object_dtype(series) or pd.api.types.is_string_dtype(series):
            out[column] = series.map(_neutral, na_action="ignore")
    out.columns = [_neutral(str(c)) for c in out.columns]
    return out


def write_table(frame: pd.DataFrame, target: Path) -> None:
    """Write a frame as CSV or Parquet, chosen by the file's extension, atomically."""
    suffix = check_table_suffix(target)
    with atomic_file(target) as tmp:
        if suffix == ".csv":
            neutralise(frame).to_csv(tmp, index=False)
        else:
            frame.to_parquet(tmp, index=False)


def sql_literal(value: str) -> str:
    """`value` as a SQL string literal (quotes doubled)."""
    return "'" + str(value).replace("'", "''") + "'"


NUMBER_FIX = (
    "use plain numbers with a dot as decimal separator, no units or thousands separators; "
    "leave the cell empty when unknown"
)
BAD_LINES_FIX = (
    "give every line as many fields as the header; put quotes around values that hold the "
    "delimiter, a quote or a line break"
)


def read_csv_table(
    con: duckdb.DuckDBPyConnection, path: Path, name: str
) -> tuple[str, int, list[tuple[int, str, str]]]:
    """Read the CSV file `path` into the temp table `src_<name>`, every cell as text.

    The delimiter is sniffed by DuckDB; the encoding is UTF-16 when the file starts with its
    byte-order mark, else UTF-8, and Latin-1 when UTF-8 fails. Returns the encoding used, the
    number of rows read and the lines that cannot be read (line number, kinds of error, text),
    which are left out of the table. Raises duckdb.Error and OSError as they come.
    """
    with Path(path).open("rb") as fh:
        head = fh.read(2)
    encoding = "utf-16" if head in (b"\xff\xfe", b"\xfe\xff") else "utf-8"
    while True:
        rows = con.execute(
            f"CREATE OR REPLACE TEMP TABLE src_{name} AS SELECT * FROM read_csv("
            f"{sql_literal(str(path))}, all_varchar=true, header=true, store_rejects=true, "
            f"rejects_table='rej_{name}', rejects_scan='rejscan_{name}', "
            f"encoding={sql_literal(encoding)})"
        ).fetchone()[0]
        lines = con.execute(
            "SELECT line, string_agg(DISTINCT lower(error_type), ', ' ORDER BY "
            f"lower(error_type)), any_value(csv_line) FROM rej_{name} GROUP BY line "
            "ORDER BY line"
        ).fetchall()
        if encoding == "utf-8" and any("invalid encoding" in kind for _, kind, _ in lines):
            encoding = "latin-1"
            con.execute(f"DROP TABLE rej_{name}")
            con.execute(f"DROP TABLE rejscan_{name}")
            continue
        return encoding, rows, lines


def read_table(path: Path, what: str = "file") -> pd.DataFrame:
    """Read a side file (CSV by `read_csv_table`, or Parquet) into a frame; CSV cells as text.

    `what` names the file in messages ("account list"). Raises UserError (exit 2) when the
    file is missing, empty or unreadable, or has lines that cannot be read (each named).
    """
    path = Path(path)
    suffix = check_table_suffix(path)
    if not path.is_file():
        raise UserError(f"{what} not found: {path}")
    if path.stat().st_size == 0:
        raise UserError(f"{path} is empty: the {what} needs a header row")
    con = duckdb.connect()
    try:
        con.execute("SET enable_progress_bar = false")
        if suffix == ".parquet":
            return con.execute(f"SELECT * FROM read_parquet({sql_literal(str(path))})").df()
        _, _, lines = read_csv_table(con, path, "side")
        if lines:
            shown = "; ".join(f"line {n} ({kind}): {(t or '')[:80]!r}" for n, kind, t in lines[:3])
            raise UserError(
                f"{path}: {len(lines)} line(s) of the {what} cannot be read ({shown}); "
                + BAD_LINES_FIX
            )
        return con.execute("SELECT * FROM src_side").df()  # insertion order is kept
    except (duckdb.Error, OSError, UnicodeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"cannot read the {what} {path}: {first[:300]}") from exc
    finally:
        con.close()


def numbers(frame: pd.DataFrame, column: str, path: Path, what: str = "file") -> pd.Series:
    """`frame[column]` as float64, read as validate reads numbers (text trimmed; empty and
    null words such as NA are missing; a dot as the decimal mark; no infinities).

    Raises UserError naming the file, the column and example rows when any other cell
    cannot be read as a number (a decimal comma, a unit, a thousands separator).
    """
    values = frame[column]
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        out = pd.to_numeric(values, errors="coerce").astype("float64")
        return out.where(np.isfinite(out))
    text = values.astype("string").str.strip(" \t\r\n")
    text = text.mask(text.eq("") | text.str.lower().isin(NULL_TOKENS))
    con = duckdb.connect()
    try:
        con.register("cells", pd.DataFrame({"t": text.astype(object)}))
        parsed = (
            con.execute(
                "SELECT CASE WHEN isfinite(TRY_CAST(t AS DOUBLE)) THEN TRY_CAST(t AS DOUBLE) END "
                "FROM cells"
            )
            .df()
            .iloc[:, 0]
        )
    finally:
        con.close()
    out = pd.Series(parsed.to_numpy(dtype="float64"), index=frame.index, name=column)
    bad = text.notna().to_numpy() & out.isna().to_numpy()
    if bad.any():
        at = np.flatnonzero(bad)[:5]
        rows = [f"row {i + 1}: {v!r}" for i, v in zip(at, text.to_numpy()[at], strict=True)]
        raise UserError(
            f"{path}: column {column} of the {what} has {int(bad.sum())} value(s) that are not "
            f"numbers ({', '.join(rows)}); {NUMBER_FIX}"
        )
    return out
