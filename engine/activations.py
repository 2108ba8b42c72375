"""Hidden-layer activations g and their derivatives, as tables keyed by name.

Every function works in place so a training step allocates nothing per block:
``ACTIVATIONS[name](Z)`` overwrites Z with A = g(Z), and
``DERIVATIVES[name](A, delta)`` multiplies delta by g'(Z), computed from the
forward output A (tanh: 1 - A^2), so Z never has to be kept.
The allowed names anywhere in the project are ``ACTIVATION_NAMES``.
"""

from collections.abc import Callable

import numpy as np

LEAKY_RELU_SLOPE = 0.01  # slope for z < 0


def sigmoid(Z: np.ndarray) -> np.ndarray:
    """σ(Z) = 1 / (1 + exp(-Z)) in place, as (1 + tanh(Z/2)) / 2: no overflow for any Z."""
    Z *= 0.5
    np.tanh(Z, out=Z)
    Z += 1.0
    Z *= 0.5
    return Z


def tanh(Z: np.ndarray) -> np.ndarray:
    """tanh(Z) in place."""
    return np.tanh(Z, out=Z)


def relu(Z: np.ndarray) -> np.ndarray:
    """max(Z, 0) in place."""
    return np.maximum(Z, 0.0, out=Z)


def leaky_relu(Z: np.ndarray) -> np.ndarray:
    """Z for Z > 0, LEAKY_RELU_SLOPE * Z otherwise, in place."""
    np.multiply(Z, LEAKY_RELU_SLOPE, out=Z, where=Z < 0)
    return Z


def sigmoid_derivative(A: np.ndarray, delta: np.ndarray) -> None:
    """delta *= σ'(Z) = A (1 - A)."""
    delta *= A
    delta *= 1.0 - A


def tanh_derivative(A: np.ndarray, delta: np.ndarray) -> None:
    """delta *= tanh'(Z) = 1 - A^2."""
    # Two passes over A, no temporary: delta - delta*A*A == delta*(1 - A^2).
    scaled = np.multiply(delta, A)
    scaled *= A
    delta -= scaled


def relu_derivative(A: np.ndarray, delta: np.ndarray) -> None:
    """delta *= relu'(Z): 1 where Z > 0, else 0 (0 at the kink, as in most libraries)."""
    delta[A <= 0] = 0.0


def leaky_relu_derivative(A: np.ndarray, delta: np.ndarray) -> None:
    """delta *= leaky_relu'(Z): 1 where Z > 0, LEAKY_RELU_SLOPE where Z < 0."""
    np.multiply(delta, LEAKY_RELU_SLOPE, out=delta, where=A < 0)


Activation = Callable[[np.ndarray], np.ndarray]
Derivative = Callable[[np.ndarray, np.ndarray], None]

ACTIVATIONS: dict[str, Activation] = {
    "sigmoid": sigmoid,
    "tanh": tanh,
    "relu": relu,
    "leaky_relu": leaky_relu,
}

DERIVATIVES: dict[str, Derivative] = {
    "sigmoid": sigmoid_derivative,
    "tanh": tanh_derivative,
    "relu": relu_derivative,
    "leaky_relu": leaky_relu_derivative,
}

ACTIVATION_NAMES: tuple[str, ...] = tuple(ACTIVATIONS)

# Activations whose units can "die" (output zero, hence zero gradient, for every sample).
RECTIFIERS = frozenset({"relu", "leaky_relu"})
