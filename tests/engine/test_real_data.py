"""Real data shipped with scikit-learn: the engine matches scikit-learn's accuracy."""

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_iris, load_wine
from sklearn.linear_model import LogisticRegression as SklearnLogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from engine import ModelSpec, TrainingSpec, fit


def held_out(loader):
    X, y = loader(return_X_y=True)
    return train_test_split(X, y, test_size=0.25, stratify=y, random_state=0)


def accuracy(classifier, X, y) -> float:
    return float(np.mean(classifier.predict(X) == y))


def test_breast_cancer_logistic_regression_matches_scikit_learn():
    X_train, X_test, y_train, y_test = held_out(load_breast_cancer)
    reference = make_pipeline(StandardScaler(), SklearnLogisticRegression()).fit(X_train, y_train)
    ours = fit(X_train, y_train, ModelSpec()).classifier
    assert accuracy(ours, X_test, y_test) >= reference.score(X_test, y_test) - 0.01


def test_breast_cancer_two_layer_network_reaches_95_percent():
    X_train, X_test, y_train, y_test = held_out(load_breast_cancer)
    model = ModelSpec(type="two_layer_network", activation="tanh")
    assert accuracy(fit(X_train, y_train, model).classifier, X_test, y_test) >= 0.95


@pytest.mark.parametrize("loader", [load_iris, load_wine], ids=["iris", "wine"])
@pytest.mark.parametrize("model_type", ["logistic_regression", "two_layer_network"])
def test_multiclass_softmax_on_iris_and_wine(loader, model_type):
    X_train, X_test, y_train, y_test = held_out(loader)
    result = fit(X_train, y_train, ModelSpec(type=model_type))
    assert result.classifier.model.output.name == "softmax"
    assert accuracy(result.classifier, X_test, y_test) >= 0.9


def test_breast_cancer_in_float32_matches_float64():
    X_train, X_test, y_train, y_test = held_out(load_breast_cancer)
    model = ModelSpec(type="two_layer_network")
    single = fit(X_train, y_train, model, TrainingSpec(dtype="float32")).classifier
    double = fit(X_train, y_train, model, TrainingSpec(dtype="float64")).classifier
    assert abs(accuracy(single, X_test, y_test) - accuracy(double, X_test, y_test)) <= 0.02
