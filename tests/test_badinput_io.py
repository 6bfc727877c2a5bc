"""Outputs: written under a temporary name and swapped into place; CSV text cannot run formulas."""

from __future__ import annotations

import os
import subprocess
import sys

import pandas as pd
import pytest

from pipeline import io
from pipeline.errors import UserError


def test_formulas_are_neutralised_in_csv(tmp_path):
    frame = pd.DataFrame(
        {
            "=cmd": ["=1+2", "+SUM(A1)", "-2+3", "@A1", "\tx", "plain", None],
            "number_text": ["-12", "+3.5", "-1e5", "1", "-", "=", "@"],
            "amount": [-1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0],
        }
    )
    io.write_table(frame, tmp_path / "out.csv")
    back = pd.read_csv(tmp_path / "out.csv", dtype=str, keep_default_na=False)
    assert list(back.columns) == ["'=cmd", "number_text", "amount"]
    assert back["'=cmd"].tolist() == ["'=1+2", "'+SUM(A1)", "'-2+3", "'@A1", "'\tx", "plain", ""]
    assert back["number_text"].tolist() == ["-12", "+3.5", "-1e5", "1", "'-", "'=", "'@"]
    assert back["amount"].tolist()[0] == "-1.0"  # numbers stay numbers
    io.write_table(frame, tmp_path / "out.parquet")  # Parquet keeps values as they are
    assert pd.read_parquet(tmp_path / "out.parquet")["=cmd"].iloc[0] == "=1+2"


def test_atomic_dir_swaps_the_whole_folder(tmp_path):
    target = tmp_path / "out"
    with io.atomic_dir(target) as tmp:
        (tmp / "a.txt").write_text("old")
    with io.atomic_dir(target) as tmp:
        (tmp / "b.txt").write_text("new")
    assert sorted(p.name for p in target.iterdir()) == ["b.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_failed_write_leaves_the_previous_folder(tmp_path):
    target = tmp_path / "out"
    with io.atomic_dir(target) as tmp:
        (tmp / "a.txt").write_text("old")
    with pytest.raises(RuntimeError), io.atomic_dir(target) as tmp:
        (tmp / "a.txt").write_text("half")
        raise RuntimeError("killed")
    assert (target / "a.txt").read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_interrupted_swap_is_repaired_by_the_next_write(tmp_path):
    """A kill inside the two-rename swap leaves .out.old; the next write puts it back."""
    target = tmp_path / "out"
    old = tmp_path / ".out.old"
    old.mkdir()
    (old / "a.txt").write_text("previous")
    with pytest.raises(RuntimeError), io.atomic_dir(target):
        assert (target / "a.txt").read_text() == "previous"
        raise RuntimeError("fails before the swap")
    assert (target / "a.txt").read_text() == "previous" and not old.exists()


def test_temporaries_of_killed_writers_are_removed_next_time(tmp_path):
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True
    )
    pid = int(dead.stdout)
    stale_dir = tmp_path / f".out.{pid}.abc123.tmp"
    stale_dir.mkdir()
    (stale_dir / "orders.parquet").write_text("complete-looking")
    stale_file = tmp_path / f".scores.csv.{pid}.xyz.tmp"
    stale_file.write_text("half")
    alive = tmp_path / f".out.{os.getpid()}.mine.tmp"  # a live writer's: left alone
    alive.mkdir()
    with io.atomic_dir(tmp_path / "out") as tmp:
        (tmp / "x").write_text("x")
    io.write_json({"a": 1}, tmp_path / "scores.csv")
    assert not stale_dir.exists() and not stale_file.exists() and alive.exists()


def test_atomic_files_commit_together(tmp_path):
    a, b = tmp_path / "a.csv", tmp_path / "a.meta.json"
    a.write_text("old"), b.write_text("old")
    with pytest.raises(RuntimeError), io.atomic_files([a, b]) as (ta, tb):
        ta.write_text("new")
        tb.write_text("new")
        raise RuntimeError("killed before the renames")
    assert (a.read_text(), b.read_text()) == ("old", "old")
    with io.atomic_files([a, b]) as (ta, tb):
        ta.write_text("new")
        tb.write_text("new")
    assert (a.read_text(), b.read_text()) == ("new", "new")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.csv", "a.meta.json"]


def test_read_table_errors_are_user_errors(tmp_path):
    (tmp_path / "bad.parquet").write_bytes(b"not parquet")
    with pytest.raises(UserError, match="cannot read"):
        io.read_table(tmp_path / "bad.parquet")
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(UserError, match="is empty"):
        io.read_table(tmp_path / "empty.csv")
    with pytest.raises(UserError, match="use a .csv or .parquet file name"):
        io.read_table(tmp_path / "list.xlsx")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="renameat2 is Linux-only")
def test_existing_folder_is_exchanged_in_one_step(tmp_path, monkeypatch):
    target = tmp_path / "out"
    target.mkdir()
    calls = []
    real = os.replace
    monkeypatch.setattr(os, "replace", lambda a, b: (calls.append((a, b)), real(a, b)))
    with io.atomic_dir(target) as tmp:
        (tmp / "new").write_text("new")
    assert calls == [] and [p.name for p in target.iterdir()] == ["new"]
