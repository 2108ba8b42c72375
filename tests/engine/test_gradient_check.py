"""Central differences agree with the analytic gradients for every model, activation,
output and with L2 on; and they expose the seed note's db1 slip."""

import numpy as np
import pytest

from engine import ACTIVATION_NAMES, LogisticRegression, TwoLayerNetwork, gradient_check
from engine.data import targets

SMOOTH_TOLERANCE = 2e-7  # sigmoid, tanh, and the logistic regression
KINK_TOLERANCE = 1e-4  # relu, leaky_relu: central differences may straddle a kink


def problem(n_classes: int, seed: int = 0, n_x: int = 4, m: int = 9):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n_x, m))  # (n_x, m)
    labels = np.arange(m) % n_classes  # every class present
    return X, targets(labels, n_classes, np.float64), rng


@pytest.mark.parametrize("l2", [0.0, 0.7])
@pytest.mark.parametrize("n_classes", [2, 3])
def test_logistic_regression_gradients_match_central_differences(n_classes, l2):
    X, Y, rng = problem(n_classes)
    model = LogisticRegression(n_features=X.shape[0], n_classes=n_classes)
    model.initialize(rng, "random", init_scale=0.5)
    check = gradient_check(model, X, Y, l2=l2, m_train=20)
    assert check.relative_error < SMOOTH_TOLERANCE, check.per_parameter


@pytest.mark.parametrize("l2", [0.0, 0.7])
@pytest.mark.parametrize("n_classes", [2, 3])
@pytest.mark.parametrize("activation", ACTIVATION_NAMES)
def test_two_layer_network_gradients_match_central_differences(activation, n_classes, l2):
    X, Y, rng = problem(n_classes, seed=1)
    model = TwoLayerNetwork(
        n_features=X.shape[0], n_classes=n_classes, hidden_units=5, activation=activation
    )
    model.initialize(rng, "xavier")
    model.parameters["b1"][...] = rng.standard_normal((5, 1)) * 0.1
    check = gradient_check(model, X, Y, l2=l2, m_train=20)
    tolerance = KINK_TOLERANCE if "relu" in activation else SMOOTH_TOLERANCE
    assert check.relative_error < tolerance, check.per_parameter


def test_float32_model_is_checked_in_float64():
    X, Y, rng = problem(2)
    model = TwoLayerNetwork(n_features=X.shape[0], hidden_units=3)
    model.initialize(rng, "xavier", dtype=np.float32)
    check = gradient_check(model, X, Y)
    assert check.analytic.dtype == np.float64
    assert check.relative_error < SMOOTH_TOLERANCE


def test_note_summary_db1_without_one_over_m_fails_the_check():
    """The note's final summary prints ∂J/∂b1 = ((W2ᵀ(A2 - Y)) * g'(Z1)) 1 without 1/m;
    its own derivation of dJ carries the 1/m, and the gradient check sides with it."""
    X, Y, rng = problem(2, m=8)
    model = TwoLayerNetwork(n_features=X.shape[0], hidden_units=3)
    model.initialize(rng, "xavier")
    check = gradient_check(model, X, Y)
    m = X.shape[1]
    summary_db1 = check.analytic["b1"] * m  # the summary's formula: the sum, not the mean
    error_with_m = np.linalg.norm(check.numeric["b1"] - check.analytic["b1"])
    error_without_m = np.linalg.norm(check.numeric["b1"] - summary_db1)
    assert error_with_m < 1e-9
    assert error_without_m > 1e-3
