"""Output layers: the probability function, its loss from logits, the predicted class.

The loss is always computed from the logits Z, as the seed note rewrites it:
L = -y z + log(1 + exp z) for the sigmoid and L = logsumexp(z) - y·z for the
softmax. ``np.logaddexp`` and a max-shifted log-sum-exp keep L finite for any
finite z, in float32 as in float64. Both outputs share dZ = A - Y.

Shapes: Z, A, Y are (n_y, m); n_y = 1 for the sigmoid (two classes), K for the softmax.
"""

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from engine.activations import sigmoid
from engine.invariant import tree_sum


class OutputLayer(Protocol):
    name: str

    def loss_sum(self, Z: np.ndarray, Y: np.ndarray) -> float:
        """Σ over the m samples of L(z, y)."""

    def probabilities(self, Z: np.ndarray) -> np.ndarray:
        """A = output(Z) in place of Z, (n_y, m)."""

    def predicted_index(self, Z: np.ndarray) -> np.ndarray:
        """The predicted class index of each sample, (m,)."""


@dataclass(frozen=True)
class SigmoidOutput:
    """Binary output: one logit z per sample, P(class 1) = σ(z)."""

    name: str = "sigmoid"

    def loss_sum(self, Z: np.ndarray, Y: np.ndarray) -> float:
        # L = log(1 + e^z) - y z  (the note's rewriting), summed over samples.
        return float(np.logaddexp(0.0, Z).sum() - np.vdot(Y, Z))

    def probabilities(self, Z: np.ndarray) -> np.ndarray:
        return sigmoid(Z)

    def predicted_index(self, Z: np.ndarray) -> np.ndarray:
        return (Z[0] > 0).astype(np.intp)


@dataclass(frozen=True)
class SoftmaxOutput:
    """Multiclass output: K logits per sample, P = softmax(z)."""

    name: str = "softmax"

    def loss_sum(self, Z: np.ndarray, Y: np.ndarray) -> float:
        # L = logsumexp(z) - y·z for one-hot y.
        return float(log_sum_exp(Z).sum() - np.vdot(Y, Z))

    def probabilities(self, Z: np.ndarray) -> np.ndarray:
        Z -= Z.max(axis=0, keepdims=True)  # shift: exp never overflows
        np.exp(Z, out=Z)
        Z /= tree_sum(Z.copy())  # Σ_k exp: (m,), summed over the classes in a fixed order
        return Z

    def predicted_index(self, Z: np.ndarray) -> np.ndarray:
        return Z.argmax(axis=0)


def log_sum_exp(Z: np.ndarray) -> np.ndarray:
    """log Σ_k exp(Z[k, i]) for each column i, (m,), without overflow."""
    peak = Z.max(axis=0)  # (m,)
    return peak + np.log(np.exp(Z - peak).sum(axis=0))


def output_for(n_classes: int) -> OutputLayer:
    """The note's sigmoid for two classes, the softmax for more."""
    if n_classes < 2:
        raise ValueError(f"a classifier needs at least 2 classes, got {n_classes}")
    return SigmoidOutput() if n_classes == 2 else SoftmaxOutput()


def output_units(n_classes: int) -> int:
    """n_y: one logit for two classes, one per class otherwise."""
    return 1 if n_classes == 2 else n_classes
