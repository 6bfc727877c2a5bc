"""The command line as its users expect it: defaults in every --help, flags without a value
type, `churn --version`, `churn bench` a typer command like the rest, no spinner off a
terminal."""

from __future__ import annotations

import re
from importlib.metadata import version

import pytest
from typer.testing import CliRunner

from pipeline.cli import app

runner = CliRunner()
COMMANDS = ["simulate", "validate", "featurize", "train", "evaluate", "score", "report"]
COMMANDS += ["compare", "explain", "docs", "bench"]


def help_of(*args: str) -> str:
    result = runner.invoke(app, [*args, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    return result.output


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output.strip() == f"churn (aftersale) {version('aftersale')}"


@pytest.mark.parametrize("command", COMMANDS)
def test_help_shows_defaults_and_no_bool_beside_flags(command: str) -> None:
    text = help_of(command)
    assert "<bool>" not in text
    assert "[default: " in text or command == "train" and "data/features" in text


@pytest.mark.parametrize(
    ("command", "option", "default"),
    [
        ("simulate", "--accounts", "params simulate.accounts"),
        ("score", "--as-of", "the day after the data ends"),
        ("score", "--params", "params.yaml at the project root"),
        ("score", "--engine", "duckdb"),
        ("explain", "--every", "the training schedule's step"),
        ("bench", "--accounts", "100000"),
        ("bench", "--memory-limit", "none"),
    ],
)
def test_hand_written_defaults_survive_rich_markup(command: str, option: str, default: str):
    text = re.sub(r"\s*│\s*", " ", help_of(command))  # the table's borders and wrapping
    text = re.sub(r"\s+", " ", text)
    text = text[text.index("─ Options ") :]
    row = text[text.index(option + " ") :]
    assert f"[default: {default}]" in row[:400], row[:400]


def test_bench_is_a_typer_command() -> None:
    text = help_of("bench")
    assert "Options" in text and "usage: churn bench" not in text  # not argparse's
    for option in ("--accounts", "--reuse", "--steps", "--threads", "--out"):
        assert option in text
    assert "--child" not in text and "--work" not in text  # internal
    result = runner.invoke(app, ["bench", "--accounts", "0", "--steps", "scan"])
    assert result.exit_code == 2 and "accounts" in result.output  # checked before any step


def test_no_spinner_when_stderr_is_no_terminal(capsys) -> None:
    from pipeline.progress import counter, interactive, step

    assert not interactive()
    with step("working"):
        counter(10, "rows")(5)
    captured = capsys.readouterr()
    assert captured.out == captured.err == ""
