"""Champion and challenger: the rule by itself, and against a real MLflow registry (SQLite)."""

from __future__ import annotations

import contextlib
import json

import mlflow
import pytest
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from models.churn_model import ChurnModel
from models.estimator import make_lgbm
from models.promotion import Decision, decide
from models.tracking import CHAMPION, configure, set_aliases
from pipeline.evaluate import promote
from tests.test_model_infold import synthetic_frame

NAME = "churn-risk-test"


def test_decide_by_the_margin():
    assert decide(0.80, 0.79, 0.005)[0] is True  # +0.010 >= 0.005
    assert decide(0.794, 0.79, 0.005)[0] is False  # +0.004 < 0.005
    assert decide(0.78, 0.79, 0.0)[0] is False  # worse
    assert decide(0.79, 0.79, 0.0)[0] is True  # equal with no margin: the newer model
    assert decide(0.80, None, 0.005)[0] is True  # no champion to beat
    assert decide(float("nan"), 0.79, 0.0)[0] is False


def test_decide_lower_is_better():
    assert decide(0.040, 0.045, 0.002, higher_is_better=False)[0] is True  # Brier down 0.005
    assert decide(0.044, 0.045, 0.002, higher_is_better=False)[0] is False
    assert decide(0.050, 0.045, 0.0, higher_is_better=False)[0] is False


def test_decision_message_names_both_scores():
    d = Decision(
        False, "it beats the champion by 0.0010 < 0.002", "auc", 0.002, "3", 0.8123, "2", 0.8113
    )
    text = d.message()
    assert "v3 auc 0.8123" in text and "v2 auc 0.8113" in text and "not promoted" in text


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A real MLflow store (SQLite) with two registered churn models of different quality."""
    tmp_path = tmp_path_factory.mktemp("store")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    patch = pytest.MonkeyPatch()
    patch.setenv("MLFLOW_TRACKING_URI", uri)
    patch.setenv("MLFLOW_REGISTRY_URI", uri)
    configure(tmp_path, "test")
    frame = synthetic_frame(seed=5, accounts=200, cutoffs=6)
    feats = ["days_since_last_contact", "days_since_last_order", "orders_recent", "noise"]
    good = make_lgbm({"seed": 1, "n_estimators": 40, "num_leaves": 7})
    good.fit(frame[feats], frame["label"])
    weak = make_lgbm({"seed": 1, "n_estimators": 5, "num_leaves": 2})
    weak.fit(frame[["noise"]], frame["label"])
    versions = {}
    for key, est, fs in (("weak", weak, ["noise"]), ("good", good, feats)):
        with mlflow.start_run():
            info = mlflow.pyfunc.log_model(
                name="model",
                python_model=ChurnModel(est, fs, {}, {}),
                registered_model_name=NAME,
                pip_requirements=["lightgbm"],  # no inference: it would load the model again
            )
        versions[key] = str(info.registered_model_version)
    yield tmp_path, frame, versions, uri
    patch.undo()
    mlflow.set_tracking_uri(None)


@pytest.fixture
def registry(store, monkeypatch):
    """The store, pointed at for one test, with no champion alias left from another test."""
    root, frame, versions, uri = store
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", uri)
    configure(root, "test")
    client = MlflowClient()
    for alias in (CHAMPION, "challenger"):
        with contextlib.suppress(MlflowException):
            client.delete_registered_model_alias(NAME, alias)
    return root, frame, versions


def _params(metric="auc", margin=0.01):
    return {"mlflow": {"experiment": "test", "registered_model": NAME},
            "promote": {"metric": metric, "margin": margin}}  # fmt: skip


def test_first_model_is_champion_and_stays_so(registry):
    root, frame, versions = registry
    assert set_aliases(NAME, versions["weak"]) is True  # train: no champion yet
    d = promote(root, _params(), {"version": versions["weak"]}, frame, 0.5)
    assert d.promote and d.champion_version == versions["weak"]
    assert set_aliases(NAME, versions["good"]) is False  # a second model is only challenger


def test_a_better_challenger_is_promoted_on_the_same_rows(registry):
    root, frame, versions = registry
    set_aliases(NAME, versions["weak"])
    client = MlflowClient()
    from models.metrics import binary_metrics

    good = mlflow.pyfunc.load_model(f"models:/{NAME}/{versions['good']}").unwrap_python_model()
    score = binary_metrics(frame["label"].to_numpy(), good.predict_proba(frame))["auc"]
    d = promote(root, _params(margin=0.01), {"version": versions["good"]}, frame, score)
    assert d.promote, d.message()
    assert d.champion_score is not None and d.challenger_score >= d.champion_score + 0.01
    assert str(client.get_model_version_by_alias(NAME, CHAMPION).version) == versions["good"]


def test_a_challenger_short_of_the_margin_is_not_promoted(registry):
    root, frame, versions = registry
    set_aliases(NAME, versions["good"])  # the good model is champion
    client = MlflowClient()
    client.set_registered_model_alias(NAME, "challenger", versions["weak"])
    # the weak model scores its own (lower) AUC; the champion keeps the alias
    from models.metrics import binary_metrics

    weak = mlflow.pyfunc.load_model(f"models:/{NAME}/{versions['weak']}").unwrap_python_model()
    score = binary_metrics(frame["label"].to_numpy(), weak.predict_proba(frame))["auc"]
    d = promote(root, _params(margin=0.0), {"version": versions["weak"]}, frame, score)
    assert not d.promote and d.champion_score > d.challenger_score
    assert str(client.get_model_version_by_alias(NAME, CHAMPION).version) == versions["good"]
    assert json.dumps(d.as_dict())  # serialisable for reports/promotion.json


def test_a_champion_needing_missing_features_is_kept(registry):
    root, frame, versions = registry
    set_aliases(NAME, versions["good"])
    narrow = frame[["account_id", "cutoff", "label", "noise"]]
    d = promote(root, _params(), {"version": versions["weak"]}, narrow, 0.99)
    assert not d.promote and "lack" in d.reason and d.champion_score is None
    assert (
        str(MlflowClient().get_model_version_by_alias(NAME, CHAMPION).version) == versions["good"]
    )


def test_bad_promotion_metric_is_a_clear_error(registry):
    from pipeline.errors import UserError

    root, frame, versions = registry
    with pytest.raises(UserError, match="promote.metric"):
        promote(root, _params(metric="accuracy"), {"version": versions["good"]}, frame, 0.5)
