"""Features and scores on Apache Spark: the same Ibis feature definitions, run by PySpark.

`churn featurize --engine spark` and `churn score --engine spark` use this module. The clean
Parquet tables that `churn validate` writes are read by Spark, the feature catalog's Ibis
expressions (features/build.py) compile to Spark SQL through Ibis's pyspark backend, and
scores come from the MLflow model through `mlflow.pyfunc.spark_udf`, so the model runs inside
Spark's Python workers exactly as it would on a cluster.

Where Spark runs is chosen by `AFTERSALE_SPARK_MASTER` (docs/spark.md):

- unset: `local[2]`, in this process (two cores, small shuffles: the size of a laptop);
- a master URL (`local[4]`, `spark://host:7077`, `yarn`, `k8s://...`): a classic session;
- `sc://host:15002`: a Spark Connect server;
- `databricks`: Databricks Connect (`pip install databricks-connect`, which replaces pyspark),
  configured by its usual DATABRICKS_* variables or ~/.databrickscfg.

Only the `join` feature engine runs on Spark: the `window` engine counts distinct values over
RANGE window frames (COUNT(DISTINCT ...) OVER ...), which Spark SQL does not support.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd

from features import FeatureConfig
from features.catalog import GROUPS
from pipeline.errors import UserError
from pipeline.store import Validated

log = logging.getLogger(__name__)

MASTER_ENV = "AFTERSALE_SPARK_MASTER"
DEFAULT_MASTER = "local[2]"
ENGINE = "join"  # the feature engine that runs on Spark (see the module's docstring)
# Settings for a session this module starts: times in UTC everywhere (as in DuckDB).
SQL_CONF = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
}
# A local session, in this process: on the loopback only, no web UI, and few shuffle
# partitions (Spark's default of 200 costs seconds a query on a machine's worth of data).
LOCAL_CONF = {
    "spark.sql.shuffle.partitions": "2",
    "spark.driver.host": "127.0.0.1",
    "spark.driver.bindAddress": "127.0.0.1",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.driver.memory": "2g",
}


def _pyspark():
    try:
        import pyspark.sql
    except ImportError as exc:  # pragma: no cover - pyspark is a dependency
        raise UserError(
            "the spark engine needs pyspark: pip install -c requirements.lock -e ."
        ) from exc
    return pyspark.sql


def session(master: str | None = None, conf: dict[str, str] | None = None) -> Any:
    """The active Spark session, else a new one for `master` (default: $AFTERSALE_SPARK_MASTER,
    else local[2]) with UTC times and few shuffle partitions (`conf` adds or overrides)."""
    sql = _pyspark()
    active = sql.SparkSession.getActiveSession()
    if active is not None:
        return active
    master = master or os.environ.get(MASTER_ENV) or DEFAULT_MASTER
    settings = {**SQL_CONF, **(conf or {})}
    if master == "databricks":
        try:
            from databricks.connect import DatabricksSession
        except ImportError as exc:
            raise UserError(
                f"{MASTER_ENV}=databricks needs Databricks Connect: "
                "pip install databricks-connect (it replaces pyspark)"
            ) from exc
        spark = DatabricksSession.builder.getOrCreate()
        for key, value in settings.items():
            with contextlib.suppress(Exception):  # serverless compute refuses some settings
                spark.conf.set(key, value)
        return spark
    builder = sql.SparkSession.builder.appName("aftersale")
    if master.startswith("sc://"):
        builder = builder.remote(master)
    else:
        builder = builder.master(master)
        if master.startswith("local"):
            settings = {**LOCAL_CONF, **settings}
            os.environ.setdefault("PYSPARK_PYTHON", sys.executable)  # for spark_udf's workers
            os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
            # spark_udf copies the model to every Python worker: no progress bar for each copy
            os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    for key, value in settings.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    if not master.startswith("sc://"):
        spark.sparkContext.setLogLevel("ERROR")
    log.info("spark %s session on %s", spark.version, master)
    return spark


def connect(spark: Any | None = None) -> Any:
    """An Ibis connection on a Spark session (see `Backend` for what it adds)."""
    ibis.load_backend("pyspark")  # registers the backend's options (ibis.options.pyspark)
    con = _backend_class()()
    con.do_connect(spark if spark is not None else session())
    return con


def _backend_class() -> type:
    import sqlglot.expressions as sge
    from ibis.backends.pyspark import Backend
    from ibis.backends.sql.compilers.pyspark import PySparkCompiler

    class Compiler(PySparkCompiler):
        """Float literals typed as doubles: Spark SQL reads `86400.0` as a DECIMAL, so
        `(a - b) / 86400.0` on integers is decimal division, rounded to a few places."""

        def visit_NonNullLiteral(self, op, *, value, dtype):
            result = super().visit_NonNullLiteral(op, value=value, dtype=dtype)
            if dtype.is_floating() and isinstance(result, sge.Literal):
                return self.cast(result, dtype)
            return result

    class SparkBackend(Backend):
        """Ibis's pyspark backend with two fixes that the feature definitions need on Spark:

        - float literals are doubles, not decimals (Compiler);
        - in-memory tables (the cutoffs) are registered before `.cache()`: Ibis 12 does so
          before executing an expression but not before caching it, so a cached expression
          over `ibis.memtable(...)` fails with TABLE_OR_VIEW_NOT_FOUND.
        """

        name = "pyspark"
        compiler = Compiler()

        def _create_cached_table(self, name: str, expr: ir.Table) -> ir.Table:
            # Cached and computed at once, like DuckDB's temporary tables: each stream's
            # aggregates (one row per account and cutoff) are computed by a job of their own,
            # and the final join reads them from memory.
            self._run_pre_execute_hooks(expr)
            table = super()._create_cached_table(name, expr)
            self._cached_dataframes[name].count()
            return table

    return SparkBackend


@contextlib.contextmanager
def clean_parquet(validated: Validated) -> Iterator[Path]:
    """The folder of clean Parquet tables: the data folder when `churn validate` wrote it,
    else a temporary copy of the validated tables."""
    folder = Path(validated.data_dir)
    if all((folder / f"{t}.parquet").is_file() for t in validated.columns) and not (
        validated.sources
    ):
        yield folder
        return
    from pipeline.store import write_clean

    with tempfile.TemporaryDirectory(prefix="aftersale-spark-") as tmp:
        write_clean(validated, Path(tmp) / "clean")
        yield Path(tmp) / "clean"


def tables(con: Any, folder: Path, names: Sequence[str]) -> dict[str, ir.Table]:
    """The clean tables in `folder` as Ibis tables on Spark (one temporary view per table)."""
    spark = con._session
    out = {}
    for name in names:
        frame = spark.read.parquet(str(Path(folder).resolve() / f"{name}.parquet"))
        view = f"clean_{name}"
        frame.createOrReplaceTempView(view)
        out[name] = con.table(view)
    return out


@contextlib.contextmanager
def spark_tables(validated: Validated, con: Any | None = None) -> Iterator[dict[str, ir.Table]]:
    """The validated tables as Ibis tables on Spark, for the length of the block."""
    con = con if con is not None else connect()
    with clean_parquet(validated) as folder:
        yield tables(con, folder, list(validated.columns))


def _join(spec: Any) -> Any:
    from pipeline.engine import EngineSpec

    if spec is not None and spec.engine in ("window", "sliding"):
        log.warning("features.engine %s does not run on Spark; using the join engine", spec.engine)
    return EngineSpec(engine=ENGINE)


def features_at(
    validated: Validated,
    as_of: pd.Timestamp,
    cfg: FeatureConfig,
    label: Any,
    groups: Sequence[str] = GROUPS,
    spec: Any = None,
    con: Any | None = None,
) -> pd.DataFrame:
    """pipeline.engine.features_at, computed by Spark (always by the join engine)."""
    from pipeline.engine import features_at as at

    with spark_tables(validated, con) as t:
        return at(validated, as_of, cfg, label, groups, _join(spec), tables=t)


def training_frame(
    validated: Validated,
    cutoffs: Sequence[pd.Timestamp],
    cfg: FeatureConfig,
    label: Any,
    groups: Sequence[str] = GROUPS,
    spec: Any = None,
    con: Any | None = None,
) -> tuple[pd.DataFrame, str]:
    """pipeline.frame.training_frame, computed by Spark (always by the join engine)."""
    from pipeline.frame import training_frame as frame

    with spark_tables(validated, con) as t:
        return frame(validated, cutoffs, cfg, label, groups, _join(spec), tables=t)


@contextlib.contextmanager
def model_uri(model: Any) -> Iterator[str]:
    """A local MLflow model folder holding `model` (a LoadedModel, PyFuncModel or ChurnModel),
    for `spark_udf`, which ships it to Spark's Python workers."""
    import mlflow.pyfunc

    cm = getattr(model, "churn_model", None) or model
    if isinstance(cm, mlflow.pyfunc.PyFuncModel):
        cm = cm.unwrap_python_model()
    pyfunc = getattr(model, "pyfunc", model)
    signature = getattr(getattr(pyfunc, "metadata", None), "signature", None)
    with tempfile.TemporaryDirectory(prefix="aftersale-model-") as tmp:
        path = Path(tmp) / "model"
        # requirements are not inferred (slow): the UDF runs in this environment (env "local")
        mlflow.pyfunc.save_model(
            str(path), python_model=cm, signature=signature, pip_requirements=["mlflow"]
        )
        yield str(path)


def predict_column(frame: Any, uri: str, features: Sequence[str], name: str = "p_churn") -> Any:
    """A Spark DataFrame with column `name`: the model at `uri` applied by `spark_udf`."""
    import mlflow.pyfunc
    from pyspark.sql import functions as F

    udf = mlflow.pyfunc.spark_udf(
        frame.sparkSession, uri, result_type="double", env_manager="local"
    )
    cols = [F.col(f).cast("double").alias(f) for f in features]
    return frame.withColumn(name, udf(F.struct(*cols)))


def predict(model: Any, feats: pd.DataFrame, spark: Any | None = None) -> np.ndarray:
    """Calibrated churn probabilities (rounded to 6 places), computed inside Spark by the MLflow
    model through `mlflow.pyfunc.spark_udf`; the same values as pipeline.scoring.predict."""
    if not len(feats):
        return np.empty(0)
    cm = getattr(model, "churn_model", model)
    spark = spark if spark is not None else session()
    rows = feats[list(cm.features)].astype("float64").reset_index(drop=True)
    rows.insert(0, "_row", np.arange(len(rows), dtype="int64"))
    frame = spark.createDataFrame(rows)
    with model_uri(model) as uri:
        scored = predict_column(frame, uri, cm.features).select("_row", "p_churn").toPandas()
    p = scored.sort_values("_row")["p_churn"].to_numpy(dtype="float64")
    if len(p) != len(feats):  # a bug, not user input
        raise AssertionError(f"spark_udf returned {len(p)} scores for {len(feats)} rows")
    return np.round(p, 6)
