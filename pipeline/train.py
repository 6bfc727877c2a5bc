"""Train the churn-risk model on the training fold, log it to MLflow and save it for DVC."""

from __future__ import annotations

import json
import logging
from importlib.metadata import version
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow.models import infer_signature
from sklearn.metrics import roc_auc_score

import models
from features.catalog import CATALOG
from models.baselines import LogisticBaseline
from models.calibration import METHODS, Calibrator
from models.churn_model import ChurnModel
from models.drift import REFERENCE_NAME, reference_profile
from models.estimator import fit_lgbm
from models.expected import envelope
from models.lineage import FINGERPRINT_NAME, TAG_LINEAGE, TAG_SOURCE, lineage_of, version_tags
from models.metrics import binary_metrics
from models.tracking import configure, register, run_name, run_tags, set_aliases
from pipeline.errors import UserError
from pipeline.featurize import KEYS, LABEL, LabelSpec
from pipeline.io import atomic_dir, write_json
from pipeline.params import flatten
from pipeline.progress import step
from pipeline.split import Folds, split_cutoffs

log = logging.getLogger(__name__)

MODEL_SUBDIR = "mlflow"
INFO_NAME = "train_info.json"
# Weights of LightGBM in a blend with logistic regression (train.blend), best on validation.
BLEND_WEIGHTS = tuple(np.round(np.linspace(0.0, 1.0, 21), 2))


def feature_columns(frame: pd.DataFrame) -> list[str]:
    """Every column of the training frame but the keys and the label."""
    return [c for c in frame.columns if c not in (*KEYS, LABEL)]


def read_frame(frame_dir: Path) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The training frame and its metadata written by the featurize stage."""
    path, meta = Path(frame_dir) / "frame.parquet", Path(frame_dir) / "meta.json"
    if not path.is_file() or not meta.is_file():
        raise UserError(f"no training frame in {frame_dir}; run `dvc repro featurize` first")
    return pd.read_parquet(path), json.loads(meta.read_text())


def folds_for(frame: pd.DataFrame, params: dict[str, Any]) -> Folds:
    """The train/validation/test cutoffs of `frame` under the split and label params."""
    label = LabelSpec.from_params(params["label"])
    split = params["split"]
    return split_cutoffs(
        frame["cutoff"].unique(), split["test_cutoffs"], split["valid_cutoffs"], label.window_days
    )


def fit(frame: pd.DataFrame, folds: Folds, train_params: dict[str, Any]):
    """Fit LightGBM on the training fold with early stopping on the validation fold."""
    fold = folds.fold_of(frame["cutoff"])
    features = feature_columns(frame)
    tr, va = frame[fold == "train"], frame[fold == "valid"]
    for name, part in (("training", tr), ("validation", va)):
        if part[LABEL].nunique() < 2:
            raise UserError(
                f"the {name} fold has no churners (or only churners): "
                "use a longer history or a longer label.horizon_days"
            )
    log.info(
        "training on %d rows (%d cutoffs), validating on %d rows",
        len(tr),
        len(folds.train),
        len(va),
    )
    return fit_lgbm(train_params, tr[features], tr[LABEL], va[features], va[LABEL])


def calibrate(method: str, raw: pd.Series, y: pd.Series) -> Calibrator:
    """A calibrator of the raw score fitted on the validation fold (never train or test rows)."""
    if method not in METHODS:
        raise UserError(
            f"train.calibration is {method!r}; use one of {', '.join(METHODS)} in params.yaml"
        )
    return Calibrator(method).fit(raw, y)


def blend_weight(
    y: np.ndarray, tree_raw: np.ndarray, linear_raw: np.ndarray, weights=BLEND_WEIGHTS
) -> float:
    """The weight w of w x tree + (1 - w) x linear log-odds with the best AUC on `y`
    (ties go to the larger w: no blend unless the linear model adds something)."""
    aucs = {float(w): roc_auc_score(y, w * tree_raw + (1 - w) * linear_raw) for w in weights}
    best = max(sorted(aucs, reverse=True), key=aucs.__getitem__)
    log.info(
        "blend weight of LightGBM %.2f: validation AUC %.4f (LightGBM alone %.4f, "
        "logistic regression alone %.4f)",
        best,
        aucs[best],
        roc_auc_score(y, tree_raw),
        roc_auc_score(y, linear_raw),
    )
    return best


def fit_model(
    frame: pd.DataFrame, folds: Folds, params: dict[str, Any], label: dict[str, Any]
) -> ChurnModel:
    """LightGBM on the training fold (early stopping on validation), with train.blend its
    blend with logistic regression (fitted on the training fold, weight chosen on validation
    AUC), calibrated on validation.

    Test rows are never read: they can change without changing the model.
    """
    estimator = fit(frame, folds, params["train"])
    features = feature_columns(frame)
    fold = folds.fold_of(frame["cutoff"])
    valid = frame[fold == "valid"]
    linear, weight = None, 1.0
    if params["train"].get("blend", False):
        train = frame[fold == "train"]
        linear = LogisticBaseline(features).fit(train, train[LABEL].to_numpy())
        tree_raw = ChurnModel(estimator, features, {}, {}).predict_raw(valid)
        weight = blend_weight(valid[LABEL].to_numpy(), tree_raw, linear.decision_function(valid))
        if weight == 1.0:
            linear = None
    blend = {"linear": linear, "blend_weight": weight}
    uncalibrated = ChurnModel(estimator, features, params["features"], label, **blend)
    calibrator = calibrate(
        params["train"].get("calibration", "platt"),
        uncalibrated.predict_raw(valid),
        valid[LABEL].to_numpy(),
    )
    return ChurnModel(
        estimator, features, params["features"], label, calibrator=calibrator, **blend
    )


def _requirements() -> list[str]:
    return [f"{p}=={version(p)}" for p in ("mlflow", "lightgbm", "scikit-learn", "pandas", "numpy")]


def log_dataset(part: pd.DataFrame, frame_dir: Path, context: str) -> None:
    """One fold of the training frame as an MLflow dataset input of the active run
    (context: train, valid or test), its source the frame's file."""
    source = str((Path(frame_dir) / "frame.parquet").resolve())
    dataset = mlflow.data.from_pandas(part, source=source, targets=LABEL, name=f"{context} fold")
    mlflow.log_input(dataset, context=context)


def fold_envelope(model: ChurnModel, test: pd.DataFrame) -> dict[str, Any] | None:
    """The model's test-fold envelope (models/expected.py): what its score runs should show
    while the world stays as it was; monitoring compares realized runs with it. The fitted
    model is not changed by the test rows: they are read after the fit. None without a test
    fold with both classes."""
    if len(test) == 0 or test[LABEL].nunique() < 2:
        log.warning("no test fold with churners and non-churners: monitoring has no envelope")
        return None
    return envelope(test[LABEL].to_numpy(), model.predict_proba(test), test["cutoff"].to_numpy())


def version_description(
    trees: int, weight: float, valid: dict[str, float], folds: Folds, data: dict | None
) -> str:
    """What a registered version is, in words, for the registry's page."""
    from models.lineage import describe

    blend = f", blended {weight:.2f} with a logistic regression" if weight < 1 else ""
    cutoffs = folds.as_dict()
    return (
        f"LightGBM, {trees} trees{blend}, calibrated on the validation fold. Trained on "
        f"{describe(data)}; training cutoffs {cutoffs['train'][0]} to {cutoffs['train'][-1]}, "
        f"validation AUC {valid['auc']:.4f}."
    )


def run(frame_dir: Path, model_dir: Path, params: dict[str, Any], root: Path) -> dict[str, Any]:
    """The train stage: fit, log one MLflow run, register the model, save it for DVC."""
    frame, meta = read_frame(frame_dir)
    data = meta.get("data")  # the fingerprint of the data (pipeline/lineage.py)
    if not lineage_of(data):
        log.warning(
            "the training frame in %s does not say what data it was built from (written before "
            "lineage was recorded): the model's lineage is unknown and `churn score` uses it "
            "only when named; rerun `dvc repro` to record it",
            frame_dir,
        )
        data = None
    folds = folds_for(frame, params)
    label = {**params["label"], "mode": meta["label_mode"]}
    with step("fitting LightGBM, early stopping on the validation fold"):
        model = fit_model(frame, folds, params, label)
    estimator, calibrator, features = model.estimator, model.calibrator, model.features
    valid = frame[folds.fold_of(frame["cutoff"]) == "valid"]
    # Typical values (reasons) and bins (drift at scoring) of the training fold, beside the model.
    reference = reference_profile(frame[folds.fold_of(frame["cutoff"]) == "train"], features)

    valid_metrics = binary_metrics(valid[LABEL].to_numpy(), model.predict_proba(valid))
    model.envelope = fold_envelope(model, frame[folds.fold_of(frame["cutoff"]) == "test"])
    # Features are float64 in the signature: counts can be missing when a table is absent.
    example = valid[features].head(5).reset_index(drop=True).astype("float64")
    signature = infer_signature(example, model.predict(None, example))

    cfg = params["mlflow"]
    experiment_id = configure(root, cfg["experiment"])
    trees = int(estimator.best_iteration_ or estimator.n_estimators)
    fold = folds.fold_of(frame["cutoff"])
    with (
        step("logging the run, the model and its datasets to MLflow"),
        mlflow.start_run(
            experiment_id=experiment_id, run_name=run_name("train"), tags=run_tags(root)
        ) as active,
    ):
        run_id = active.info.run_id
        mlflow.log_params(flatten(params))
        mlflow.log_metrics({f"valid.{k}": v for k, v in valid_metrics.items()})
        mlflow.log_metric("trees", trees)
        mlflow.log_metric("blend_weight", model.blend()[0])
        for context in ("train", "valid"):
            log_dataset(frame[fold == context], frame_dir, context)
        mlflow.log_dict(calibrator.describe(), "calibration.json")
        if model.envelope:
            mlflow.log_dict(model.envelope, "envelope.json")
        mlflow.log_dict({"folds": folds.as_dict(), "features": features}, "training_setup.json")
        mlflow.log_dict(reference, REFERENCE_NAME)
        tags = version_tags(data) if data else {}
        if data:
            mlflow.log_dict(data, FINGERPRINT_NAME)
            mlflow.set_tags({k: tags[k] for k in (TAG_LINEAGE, TAG_SOURCE)})
        mlflow.log_dict(
            [f.describe() for f in CATALOG if f.name in features],
            "feature_catalog.json",
        )
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=model,
            signature=signature,
            input_example=example,
            pip_requirements=_requirements(),
            code_paths=[str(Path(models.__file__).parent)],
        )
        version_ = register(
            cfg["registered_model"],
            info.model_uri,
            run_id,
            version_description(trees, model.blend()[0], valid_metrics, folds, data),
            {**tags, "valid.auc": f"{valid_metrics['auc']:.4f}", "trees": str(trees)},
            info.model_id,
        )
        champion = set_aliases(cfg["registered_model"], version_, lineage_of(data))

    train_info = {
        "run_id": run_id,
        "model_uri": info.model_uri,
        "registered_model": cfg["registered_model"],
        "version": version_,
        "champion": champion,
        "trees": trees,
        "blend_weight": model.blend()[0],
        "features": features,
        "folds": folds.as_dict(),
        "valid": valid_metrics,
        "calibration": calibrator.describe(),
        "envelope": model.envelope,
        "data": data,
    }
    with step(f"saving the model for DVC in {model_dir}"), atomic_dir(model_dir) as tmp:
        mlflow.pyfunc.save_model(
            str(tmp / MODEL_SUBDIR),
            python_model=model,
            signature=signature,
            input_example=example,
            pip_requirements=_requirements(),
            code_paths=[str(Path(models.__file__).parent)],
        )
        write_json(train_info, tmp / INFO_NAME)
        write_json(reference, tmp / REFERENCE_NAME)
    log.info(
        "registered %s version %s (challenger%s); valid AUC %.3f",
        cfg["registered_model"],
        version_,
        ", champion" if champion else "",
        valid_metrics["auc"],
    )
    return train_info
