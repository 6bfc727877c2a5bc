"""The `churn` command line: one command per pipeline stage, params read once here.

Each verb parses its options, reads params.yaml (pipeline/params.py) and calls its stage
module's `run`; the work is there (docs/architecture.md). Over 400 lines because it is one
idea that reads best whole: every verb's options and help, side by side.
"""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperOption

from pipeline.errors import UserError
from pipeline.paths import default_params_file, repo_root
from pipeline.progress import step


def _flag_type(self, ctx):  # a flag takes no value: no "<bool>" beside it in --help
    return None if self.is_flag else _option_type(self, ctx)


_option_type = TyperOption.display_type_rich
TyperOption.display_type_rich = _flag_type

app = typer.Typer(
    help="aftersale: churn risk for B2B suppliers from the health of each relationship.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
log = logging.getLogger("churn")

ParamsOpt = Annotated[
    Path | None,
    typer.Option("--params", help="params file \\[default: params.yaml at the project root]"),
]
EngineOpt = Annotated[
    str | None,
    typer.Option(
        "--engine",
        help="duckdb or spark: PySpark on $AFTERSALE_SPARK_MASTER, else local[2] "
        "(docs/spark.md) \\[default: duckdb]",
    ),
]


def _params(path: Path | None, stage: Any = None) -> dict[str, Any]:
    """params.yaml (checked, defaults filled in: pipeline/params.py); for a stage module, only
    what its PARAMS declare (pipeline.config.only)."""
    from pipeline.params import load_params

    params = load_params(path or default_params_file())
    return params if stage is None else _only(params, stage)


def _only(params: dict[str, Any], stage: Any) -> dict[str, Any]:
    from pipeline.config import only

    return only(params, stage.PARAMS, stage.__name__.rpartition(".")[2])


def _has_params(path: Path | None) -> bool:
    return path is not None or default_params_file().is_file()


def _optional_params(path: Path | None, stage: Any = None) -> dict[str, Any]:
    """params.yaml when given or present; else the schema's defaults (commands that also run
    outside a project)."""
    if _has_params(path):
        return _params(path, stage)
    from pipeline.config import complete

    return complete({}) if stage is None else _only(complete({}), stage)


def _version(show: bool) -> None:
    if show:
        from importlib.metadata import PackageNotFoundError, version

        try:
            number = version("aftersale")
        except PackageNotFoundError:  # run from a checkout that was not installed
            number = "unknown"
        typer.echo(f"churn (aftersale) {number}")
        raise typer.Exit()


@app.callback()
def _setup(
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="debug logging, MLflow's own messages too")
    ] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version", help="print the version and exit", callback=_version, is_eager=True
        ),
    ] = False,
) -> None:
    from pipeline.progress import StderrHandler

    # Before mlflow is imported: its INFO chatter (and a pickling notice) would bury our output.
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "DEBUG" if verbose else "ERROR")
    handler = StderrHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(message)s", "%H:%M:%S"))
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, handlers=[handler])
    for noisy in ("alembic", "mlflow", "urllib3", "git", "numexpr", "matplotlib"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    if not verbose:
        warnings.filterwarnings("ignore", category=UserWarning, module="mlflow")
        warnings.filterwarnings("ignore", category=FutureWarning)


@app.command()
def simulate(
    out: Annotated[Path, typer.Option(help="folder for the input tables")] = Path("data/raw"),
    truth: Annotated[
        Path | None, typer.Option(help="ground-truth file \\[default: OUT/../truth.parquet]")
    ] = None,
    accounts: Annotated[
        int | None, typer.Option(help="accounts \\[default: params simulate.accounts]")
    ] = None,
    seed: Annotated[
        int | None, typer.Option(help="random seed \\[default: params simulate.seed]")
    ] = None,
    fmt: Annotated[str | None, typer.Option("--format", help="csv or parquet")] = None,
    params_file: ParamsOpt = None,
) -> None:
    """Write a simulated B2B world (the five input tables) and its ground truth."""
    from pipeline import simulate as stage

    stage.run(out, truth, accounts, seed, fmt, _params(params_file, stage))


@app.command()
def validate(
    data: Annotated[Path, typer.Option(help="input folder: NAME.csv or NAME.parquet per table")],
    out: Annotated[Path, typer.Option(help="folder for the clean Parquet tables")] = Path(
        "data/clean"
    ),
    policy: Annotated[
        str | None,
        typer.Option(help="fail or drop (rows with problems) \\[default: params validate.policy]"),
    ] = None,
    end_date: Annotated[
        str | None,
        typer.Option(
            help="YYYY-MM-DD (or an ISO date-time): no event after it "
            "\\[default: params validate.end_date]"
        ),
    ] = None,
    report: Annotated[
        Path | None, typer.Option(help="also write the JSON report here, even when it fails")
    ] = None,
    params_file: ParamsOpt = None,
) -> None:
    """Check the input tables against the contract and write clean Parquet (exit 2 on problems)."""
    from pipeline import validate as stage

    stage.run(data, out, policy, end_date, report, _optional_params(params_file, stage))


@app.command()
def featurize(
    data: Annotated[Path, typer.Option(help="input folder (raw or clean)")] = Path("data/clean"),
    out: Annotated[
        Path, typer.Option(help="with --as-of: a .csv/.parquet file; else a folder")
    ] = Path("data/features"),
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of",
            help="one cutoff, YYYY-MM-DD (an ISO date-time counts from its day, a time zone "
            "converted to UTC); omit for the training frame",
        ),
    ] = None,
    engine: EngineOpt = None,
    params_file: ParamsOpt = None,
) -> None:
    """Features at one cutoff, or (without --as-of) the labelled frame over the schedule."""
    from pipeline import featurize as stage

    stage.run(data, out, as_of, engine, _params(params_file, stage))


@app.command()
def train(
    frame: Annotated[Path, typer.Option(help="training frame folder")] = Path("data/features"),
    model_out: Annotated[
        Path, typer.Option("--model-out", help="folder for the DVC-tracked model")
    ] = Path("data/model"),
    params_file: ParamsOpt = None,
) -> None:
    """Train LightGBM, log the run to MLflow, register the model as challenger."""
    from pipeline import train as stage

    params = _params(params_file)  # all of it is logged to the run; the stage reads its PARAMS
    with step("training"):
        info = stage.run(frame, model_out, _only(params, stage), repo_root(), record=params)
    typer.echo(
        f"model {info['registered_model']} v{info['version']}: {info['trees']} trees, "
        f"valid AUC {info['valid']['auc']:.3f}; run {info['run_id']}"
        + (" (champion: first model trained on this data)" if info["champion"] else "")
    )


@app.command()
def evaluate(
    frame: Annotated[Path, typer.Option(help="training frame folder")] = Path("data/features"),
    model: Annotated[Path, typer.Option(help="DVC-tracked model folder")] = Path("data/model"),
    reports: Annotated[Path, typer.Option(help="folder for metrics.json and plots")] = Path(
        "reports"
    ),
    params_file: ParamsOpt = None,
) -> None:
    """Out-of-time test metrics beside baselines and the oracle, plots, champion/challenger."""
    from pipeline import evaluate as stage
    from pipeline.evaluation_record import summary

    params = _params(params_file, stage)
    truth = params["data"]["truth"]
    with step("evaluating on the out-of-time test fold"):
        metrics, decision = stage.run(
            frame, model, Path(truth) if truth else None, reports, params, repo_root()
        )
    typer.echo(f"{summary(metrics)}\n-> {reports / 'metrics.json'}, {reports / 'evaluation.json'}")
    if decision is not None:
        typer.echo(decision.message())


@app.command()
def score(
    data: Annotated[Path, typer.Option(help="input folder (raw or clean)")] = Path("data/clean"),
    out: Annotated[Path, typer.Option(help="score file, .csv or .parquet")] = Path(
        "outputs/scores.csv"
    ),
    accounts: Annotated[
        Path | None, typer.Option(help="customer list (.csv/.parquet) with an account_id column")
    ] = None,
    all_active: Annotated[
        bool, typer.Option("--all-active", help="score every active account")
    ] = False,
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of",
            help="YYYY-MM-DD (an ISO date-time counts from its day, a time zone converted "
            "to UTC) \\[default: the day after the data ends]",
        ),
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(
            help="model URI or folder \\[default: the registry champion of the data's lineage, "
            "else data/model if trained on it]"
        ),
    ] = None,
    previous: Annotated[
        Path | None,
        typer.Option(
            help="earlier score file for p_churn_change \\[default: the same model's score "
            "score.change_days (28) days before --as-of]"
        ),
    ] = None,
    engine: EngineOpt = None,
    params_file: ParamsOpt = None,
) -> None:
    """Score a customer list (or every active account): probability, tier, change, reasons,
    action and status per account."""
    from pipeline import score as stage
    from pipeline.io import check_table_suffix

    if (accounts is None) == (not all_active):
        raise UserError("give either --accounts FILE or --all-active")
    check_table_suffix(out)
    stage.run(data, out, accounts, as_of, model, previous, engine, _params(params_file, stage))


@app.command()
def report(
    frame: Annotated[Path, typer.Option(help="training frame folder")] = Path("data/features"),
    model: Annotated[Path, typer.Option(help="DVC-tracked model folder")] = Path("data/model"),
    data: Annotated[
        Path | None, typer.Option(help="clean tables, for account names (optional)")
    ] = Path("data/clean"),
    reports: Annotated[Path, typer.Option(help="folder with metrics.json and plots/")] = Path(
        "reports"
    ),
    params_file: ParamsOpt = None,
) -> None:
    """Write reports/report.html: metrics, plots, importance, risk, top accounts with reasons."""
    from pipeline import report as stage

    with step("writing the report"):
        out = stage.run(frame, model, data, reports, _params(params_file, stage), repo_root())
    typer.echo(f"report -> {out}")


@app.command()
def compare(
    last: Annotated[int, typer.Option(help="how many recent runs")] = 5,
    experiment: Annotated[
        str | None, typer.Option(help="MLflow experiment \\[default: params mlflow.experiment]")
    ] = None,
    params_file: ParamsOpt = None,
) -> None:
    """Recent training runs side by side: key metrics and only the params that differ."""
    from pipeline.compare import compare as compare_runs

    params = _optional_params(params_file)
    from pipeline.config import defaults

    name = experiment or (params.get("mlflow") or defaults("mlflow"))["experiment"]
    typer.echo(compare_runs(repo_root(), name, last))


@app.command()
def explain(
    account_id: Annotated[str, typer.Argument(help="the account to explain")],
    data: Annotated[Path, typer.Option(help="input folder (raw or clean)")] = Path("data/clean"),
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of",
            help="YYYY-MM-DD (an ISO date-time counts from its day, a time zone converted "
            "to UTC) \\[default: the day after the data ends]",
        ),
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(
            help="model URI or folder \\[default: the registry champion of the data's lineage, "
            "else data/model if trained on it]"
        ),
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="PNG chart \\[default: outputs/explain_ACCOUNT.png]")
    ] = None,
    cutoffs: Annotated[int, typer.Option(help="how many cutoffs up to --as-of")] = 6,
    every: Annotated[
        int | None,
        typer.Option(help="days between cutoffs \\[default: the training schedule's step]"),
    ] = None,
    params_file: ParamsOpt = None,
) -> None:
    """One account's risk over its recent cutoffs with the reasons at each, as a table and a
    PNG chart: is the relationship improving or deteriorating, and why."""
    from pipeline import explain as stage

    if cutoffs < 1:
        raise UserError("--cutoffs must be at least 1")
    account_id = account_id.strip()  # as the accounts table is read: trimmed
    out = out or Path("outputs") / f"explain_{stage.safe_name(account_id)}.png"
    if out.suffix.lower() != ".png":
        raise UserError(f"{out}: the chart is a PNG; name it *.png")
    stage.run(account_id, data, as_of, model, out, cutoffs, every, _params(params_file))


@app.command()
def monitor(
    data: Annotated[Path, typer.Option(help="input folder (raw or clean)")] = Path("data/clean"),
    history: Annotated[
        Path | None,
        typer.Option(help="score history \\[default: params score.history, outputs/history]"),
    ] = None,
    out: Annotated[
        Path, typer.Option(help="JSON of the figures DVC compares; every detail in OUT_runs.json")
    ] = Path("reports/monitor.json"),
    fail_on_alert: Annotated[
        bool, typer.Option("--fail-on-alert", help="exit 3 when an alert fires (for schedulers)")
    ] = False,
    params_file: ParamsOpt = None,
) -> None:
    """Did the scores come true? Every past score run against the data at hand: realized
    performance where its label window has closed, an estimate where it has not, and an alert
    when a model's realized AUC or calibration leaves its test fold's interval."""
    from pipeline import monitor as stage

    params = _optional_params(params_file, stage)
    found = stage.run(data, history, out, params, log_runs=_has_params(params_file))
    if fail_on_alert and found:
        raise typer.Exit(3)


@app.command()
def backfill(
    data: Annotated[Path, typer.Option(help="input folder (raw or clean)")] = Path("data/clean"),
    frame: Annotated[Path, typer.Option(help="training frame folder")] = Path("data/features"),
    runs: Annotated[int, typer.Option(help="as-of dates: the frame's last cutoffs")] = 12,
    every: Annotated[int, typer.Option(help="take every Nth of those cutoffs")] = 1,
    params_file: ParamsOpt = None,
) -> None:
    """Score past as-of dates with the model that would have been current then, into the
    score history, so that `churn monitor` has runs to judge (see pipeline/backfill.py)."""
    from pipeline import backfill as stage

    stage.run(data, frame, runs, every, _params(params_file))


@app.command()
def docs(
    out: Annotated[Path, typer.Option(help="Markdown file to write")] = Path("docs/features.md"),
) -> None:
    """Write the feature catalog as Markdown (docs/features.md)."""
    from features.docs import render_markdown
    from pipeline.io import atomic_file

    with atomic_file(out) as tmp:
        tmp.write_text(render_markdown())
    typer.echo(f"wrote {out}")


def _bench_command() -> None:
    """`churn bench`: the typer command of bench/run.py, when the checkout has it."""
    import importlib.util

    script = repo_root() / "bench" / "run.py"
    if not script.is_file():  # an installed package without the checkout: no benchmark
        return
    spec = importlib.util.spec_from_file_location("aftersale_bench", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    app.command("bench", help=module.app.registered_commands[0].help)(module.bench)


_bench_command()


def main() -> None:
    """Console entry point: user errors print a message and exit 2, without a traceback."""
    try:
        app()
    except UserError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise SystemExit(exc.exit_code) from None


if __name__ == "__main__":
    main()
