"""Train the churn-risk model on the training fold, log it to MLflow and save it for DVC."""

from __future__ import annotations

import logging
from importlib.metadata import version
from pathlib import Path
from typing import Any

import mlflow
from mlflow.models import infer_signature

import models
from features.catalog import CATALOG
from models.drift import REFERENCE_NAME, reference_profile
from models.lineage import FINGERPRINT_NAME, TAG_LINEAGE, TAG_SOURCE, lineage_of, version_tags
from models.metrics import binary_metrics
from models.tracking import configure, register, run_name, run_tags, set_aliases
from pipeline.artifacts import INFO_NAME, MODEL_SUBDIR, read_frame
from pipeline.fitting import fit_model, fold_envelope
from pipeline.io import atomic_dir, write_json
from pipeline.labels import LABEL
from pipeline.params import flatten
from pipeline.progress import step
from pipeline.registry import log_dataset
from pipeline.split import Folds, folds_for

# what this stage reads of params.yaml, and all it is given (pipeline.config.only): the same
# list as its `params:` in dvc.yaml (tests/test_architecture.py)
PARAMS = ("train", "split", "label", "mlflow", "features")

log = logging.getLogger(__name__)


def _requirements() -> list[str]:
    return [f"{p}=={version(p)}" for p in ("mlflow", "lightgbm", "scikit-learn", "pandas", "numpy")]


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


def run(
    frame_dir: Path,
    model_dir: Path,
    params: dict[str, Any],
    root: Path,
    record: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The train stage: fit, log one MLflow run, register the model, save it for DVC.

    `params` holds what the stage reads (PARAMS); `record`, every param of the project, is
    logged to the run as the experiment's record (default: `params`), read by nothing else."""
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
        mlflow.log_params(flatten(params if record is None else record))
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
