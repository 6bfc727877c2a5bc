"""File I/O: every output is written to a temporary name and renamed into place.

A process killed mid-write leaves the previous output where it was, plus at most a hidden
`.NAME.<pid>.<random>.tmp` beside it; the next write to the same target removes temporaries
whose process is gone. Text written to CSV that a spreadsheet would run as a formula is
neutralised with a leading apostrophe.
"""

from __future__ import annotations

import contextlib
import csv
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

import pandas as pd

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


def _sniff_delimiter(path: Path, encoding: str) -> str:
    with path.open(encoding=encoding, newline="") as fh:
        sample = fh.read(65536)
    try:
        return csv.Sniffer().sniff(sample, delimiters=",;\t|").delimiter
    except csv.Error:
        return ","


def read_table(path: Path) -> pd.DataFrame:
    """Read a CSV (cells as text; UTF-8 or Latin-1, delimiter sniffed) or Parquet file."""
    path = Path(path)
    suffix = check_table_suffix(path)
    if not path.is_file():
        raise UserError(f"file not found: {path}")
    try:
        if suffix == ".parquet":
            return pd.read_parquet(path)
        for encoding in ("utf-8-sig", "latin-1"):
            try:
                return pd.read_csv(
                    path,
                    sep=_sniff_delimiter(path, encoding),
                    dtype=str,
                    keep_default_na=False,
                    na_values=[""],
                    encoding=encoding,
                )
            except UnicodeDecodeError:
                continue
    except pd.errors.EmptyDataError as exc:
        raise UserError(f"{path} is empty: it needs a header row") from exc
    except (pd.errors.ParserError, csv.Error, ValueError, OSError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"cannot read {path}: {first}") from exc
    raise UserError(f"cannot read {path}: not UTF-8 or Latin-1 text")  # pragma: no cover
