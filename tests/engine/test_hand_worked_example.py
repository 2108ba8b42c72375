"""The seed note's two-layer network worked by hand: 2 inputs, 3 hidden units, 2 samples.

Every number here is computed element by element with Python floats, from the
note's formulas, and the engine must agree to 1e-12.
"""

import math

import numpy as np
import pytest

from engine import TwoLayerNetwork
from engine.workspace import Workspace

# X is (n_x, m) = (2, 2): one column per sample.
X = [[0.5, -1.0], [2.0, 0.25]]
Y = [[1.0, 0.0]]  # (n_y, m) = (1, 2)
W1 = [[0.1, -0.2], [0.3, 0.05], [-0.4, 0.25]]  # (n_h, n_x) = (3, 2)
b1 = [0.01, -0.02, 0.03]
W2 = [[0.5, -0.6, 0.7]]  # (n_y, n_h) = (1, 3)
b2 = [-0.1]
M = 2


def sigma(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z))


def by_hand() -> dict[str, object]:
    """Forward pass, cost J and gradients, one scalar at a time."""
    Z1 = [[sum(W1[j][k] * X[k][i] for k in range(2)) + b1[j] for i in range(M)] for j in range(3)]
    A1 = [[math.tanh(Z1[j][i]) for i in range(M)] for j in range(3)]
    Z2 = [sum(W2[0][j] * A1[j][i] for j in range(3)) + b2[0] for i in range(M)]
    A2 = [sigma(z) for z in Z2]
    # L(a, y) = -y log a - (1 - y) log(1 - a)
    J = sum(-Y[0][i] * math.log(A2[i]) - (1 - Y[0][i]) * math.log(1 - A2[i]) for i in range(M)) / M
    dZ2 = [A2[i] - Y[0][i] for i in range(M)]  # dZ2 = A2 - Y
    dW2 = [sum(dZ2[i] * A1[j][i] for i in range(M)) / M for j in range(3)]  # (1/m) dZ2 A1ᵀ
    db2 = sum(dZ2) / M  # (1/m) dZ2 1
    # dZ1 = W2ᵀ dZ2 * g'(Z1), g' = 1 - tanh²
    dZ1 = [[W2[0][j] * dZ2[i] * (1 - A1[j][i] ** 2) for i in range(M)] for j in range(3)]
    dW1 = [[sum(dZ1[j][i] * X[k][i] for i in range(M)) / M for k in range(2)] for j in range(3)]
    db1 = [sum(dZ1[j]) / M for j in range(3)]  # with the 1/m the derivation carries
    return {"A1": A1, "A2": A2, "J": J, "W1": dW1, "b1": db1, "W2": [dW2], "b2": [db2]}


@pytest.fixture
def network() -> TwoLayerNetwork:
    net = TwoLayerNetwork(n_features=2, n_classes=2, hidden_units=3, activation="tanh")
    net.parameters["W1"][...] = W1
    net.parameters["b1"][...] = np.array(b1)[:, None]
    net.parameters["W2"][...] = W2
    net.parameters["b2"][...] = np.array(b2)[:, None]
    return net


def test_forward_pass_matches_the_hand_computation(network):
    expected = by_hand()
    A1 = network.hidden(np.array(X), Workspace())
    np.testing.assert_allclose(A1, expected["A1"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(
        network.probabilities(np.array(X)), [expected["A2"]], rtol=0, atol=1e-12
    )


def test_cost_matches_the_hand_computation(network):
    assert network.cost(np.array(X), np.array(Y)) == pytest.approx(by_hand()["J"], abs=1e-12)


def test_gradients_match_the_hand_computation(network):
    expected = by_hand()
    J, grads = network.gradients(np.array(X), np.array(Y))
    assert pytest.approx(expected["J"], abs=1e-12) == J
    np.testing.assert_allclose(grads["W1"], expected["W1"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(grads["b1"], np.array(expected["b1"])[:, None], rtol=0, atol=1e-12)
    np.testing.assert_allclose(grads["W2"], expected["W2"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(grads["b2"], [expected["b2"]], rtol=0, atol=1e-12)
