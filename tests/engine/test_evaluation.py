"""A fit is scored as its model predicts: fit(..., evaluate=True) reports the metrics of
the parameters it keeps, on the rows predict_proba would make of the raw rows."""

import json

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_iris

from engine import EarlyStopping, ModelSpec, TrainingSpec, classification_metrics, fit
from tests.real_tables import REAL_TABLES, code_frame

NETWORK = ModelSpec(type="two_layer_network", hidden_units=8)


def penguins() -> tuple[np.ndarray, np.ndarray, list]:
    """The penguins table coded as an upload codes it: words, empty cells."""
    table = REAL_TABLES["penguins"]
    X, columns, y = code_frame(table.load().drop(columns=list(table.id_columns)), table.label)
    return X, y, columns


def sets() -> dict[str, tuple[np.ndarray, np.ndarray, list | None]]:
    return {
        "breast_cancer": (*load_breast_cancer(return_X_y=True), None),
        "iris": (*load_iris(return_X_y=True), None),
        "penguins": penguins(),
    }


@pytest.mark.parametrize("name", ["breast_cancer", "iris", "penguins"])
@pytest.mark.parametrize("model", [ModelSpec(), NETWORK], ids=["LR", "NN"])
def test_with_every_row_trained_on_it_is_the_report_of_predicting_every_raw_row(name, model):
    # The training split is every row (reordered). These figures come from counts and
    # sorted scores, the same in any order of rows: they must equal the report of the
    # model's predictions for the raw rows exactly. The log-loss is a mean over the rows:
    # the same to rounding.
    X, y, columns = sets()[name]
    result = fit(X, y, model, TrainingSpec(epochs=15), columns=columns, evaluate=True)
    classifier = result.classifier
    index = {label: k for k, label in enumerate(classifier.classes)}
    expected = classification_metrics(
        np.array([index[label] for label in y]), classifier.predict_proba(X), classifier.classes
    )
    report = result.evaluation
    assert report["split"] == "training"
    assert report["rows"] == len(y)
    for field in ("accuracy", "confusion_matrix", "per_class", "macro", "weighted", "roc_auc"):
        assert report[field] == expected[field], field
    assert report["log_loss"] == pytest.approx(expected["log_loss"], rel=1e-12)
    json.dumps(report, allow_nan=False)


def test_proba_of_features_is_predict_proba_of_the_rows_they_came_from():
    X, y, columns = penguins()
    classifier = fit(X, y, NETWORK, TrainingSpec(epochs=10), columns=columns).classifier
    features, _ = classifier.features(X)
    assert np.array_equal(classifier.proba_of_features(features), classifier.predict_proba(X))


def test_the_validation_split_is_scored_with_the_restored_parameters():
    X, y = load_breast_cancer(return_X_y=True)
    training = TrainingSpec(
        epochs=60,
        learning_rate=0.05,
        validation_fraction=0.25,
        early_stopping=EarlyStopping(patience=5, restore_best=True),
    )
    result = fit(X, y, NETWORK, training, evaluate=True)
    report = result.evaluation
    assert report["split"] == "validation"
    assert report["rows"] == result.n_validation
    best = result.history[result.best_epoch - 1]
    assert result.best_epoch < len(result.history)  # the last epoch is not the kept one
    assert report["accuracy"] == pytest.approx(best.val_accuracy, abs=1e-12)


def test_a_fit_reports_nothing_unless_asked():
    X, y = load_iris(return_X_y=True)
    assert fit(X, y, ModelSpec(), TrainingSpec(epochs=3)).evaluation is None


def test_a_diverged_fit_is_not_scored_and_does_not_fail_for_it():
    X, y = load_breast_cancer(return_X_y=True)
    training = TrainingSpec(optimizer="gd", learning_rate=1e300, epochs=50)
    result = fit(X, y, NETWORK, training, evaluate=True)
    assert result.stop_reason == "diverged"
    assert result.evaluation is None
