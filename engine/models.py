"""The seed note's two models, in its notation: X is (n_x, m), one column per sample.

``LogisticRegression`` (note sections 1-2): Z = wᵀX + b, A = σ(Z), or the
softmax for K > 2 classes. ``TwoLayerNetwork`` (note section 3):

    Z1 = W1 X + b1      A1 = g(Z1)
    Z2 = W2 A1 + b2     A2 = σ(Z2)  (softmax for K > 2)
    J  = (1/m) Σ L(A2, Y)  (+ l2 / (2 m_train) Σ ||W||²)

and the gradients of the note (dW1 with the 1/m its derivation carries):

    dZ2 = A2 - Y
    dW2 = (1/m) dZ2 A1ᵀ         db2 = (1/m) dZ2 1
    dZ1 = W2ᵀ dZ2 * g'(Z1)
    dW1 = (1/m) dZ1 Xᵀ          db1 = (1/m) dZ1 1

Y is (n_y, m): the 0/1 row for two classes, one-hot columns for K > 2.

Hot path: ``accumulate_block`` adds the *sums* over a block of columns
(ΣL, dZ Xᵀ, ...) into gradient buffers, so blocks can run on threads and be
added up; dividing by m once at the end gives the note's means exactly.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from engine.activations import ACTIVATIONS, DERIVATIVES
from engine.initializers import INITIALIZERS
from engine.outputs import OutputLayer, output_for, output_units
from engine.parameters import Parameters
from engine.workspace import Workspace

Layer = tuple[np.ndarray, np.ndarray, Callable[[np.ndarray], np.ndarray] | None]


@dataclass
class BlockResult:
    """What one pass over a block of samples adds up."""

    loss_sum: float = 0.0  # Σ L over the block's samples
    correct: int = 0  # samples whose predicted class is right

    def add(self, other: "BlockResult") -> None:
        self.loss_sum += other.loss_sum
        self.correct += other.correct


class Model:
    """What both models share: parameters, the note's cost and gradients, prediction."""

    weight_names: ClassVar[tuple[str, ...]] = ()  # the arrays the L2 penalty applies to
    n_features: int
    n_classes: int
    output: OutputLayer
    parameters: Parameters

    # -- per-block work, implemented by each model ---------------------------------------
    def shapes(self) -> dict[str, tuple[int, int]]:
        raise NotImplementedError

    def block_logits(self, X: np.ndarray, work: Workspace) -> np.ndarray:
        """Z of the output layer for a block X (n_x, b): (n_y, b), a workspace view."""
        raise NotImplementedError

    def accumulate_block(
        self, X: np.ndarray, Y: np.ndarray, labels: np.ndarray, grads: Parameters, work: Workspace
    ) -> BlockResult:
        """Forward and backward over a block: add Σ-over-samples gradients into ``grads``."""
        raise NotImplementedError

    def initialize_weights(self, rng: np.random.Generator, init: str, scale: float) -> None:
        raise NotImplementedError

    def layers(self) -> list[Layer]:
        """The forward pass as (W (n_out, n_in), b (n_out, 1), g in place, None at the output)."""
        raise NotImplementedError

    # -- shared ----------------------------------------------------------------------------
    def initialize(
        self,
        rng: np.random.Generator,
        init: str = "xavier",
        init_scale: float = 0.01,
        dtype: np.dtype | type = np.float64,
    ) -> Parameters:
        """Fresh parameters: weights from ``INITIALIZERS[init]``, biases zero."""
        if init not in INITIALIZERS:
            raise ValueError(f"unknown init {init!r}; allowed: {sorted(INITIALIZERS)}")
        self.parameters = Parameters(self.shapes(), dtype)
        self.initialize_weights(rng, init, init_scale)
        return self.parameters

    @property
    def dtype(self) -> np.dtype:
        return self.parameters.dtype

    def penalty(self, l2: float, m_train: int) -> float:
        """(l2 / (2 m_train)) Σ ||W||² over the weight matrices (biases are not penalised)."""
        if l2 == 0.0:
            return 0.0
        squares = sum(
            float(np.vdot(self.parameters[w], self.parameters[w])) for w in self.weight_names
        )
        return l2 / (2.0 * m_train) * squares

    def add_penalty_gradient(self, grads: Parameters, l2: float, m_train: int) -> None:
        """grads[W] += (l2 / m_train) W: the penalty's gradient."""
        if l2 == 0.0:
            return
        for w in self.weight_names:
            grads[w] += (l2 / m_train) * self.parameters[w]

    def logits(self, X: np.ndarray) -> np.ndarray:
        """Z of the output layer for all of X (n_x, m): (n_y, m), a new array."""
        return self.block_logits(X, Workspace()).copy()

    def probabilities(self, X: np.ndarray) -> np.ndarray:
        """A2 (or A) for X (n_x, m): (n_y, m)."""
        return self.output.probabilities(self.logits(X))

    def cost(
        self, X: np.ndarray, Y: np.ndarray, l2: float = 0.0, m_train: int | None = None
    ) -> float:
        """J = (1/m) Σ L(A, Y) + (l2 / (2 m_train)) Σ ||W||², with m_train = m by default."""
        m = X.shape[1]
        loss_sum = self.output.loss_sum(self.block_logits(X, Workspace()), Y)
        return loss_sum / m + self.penalty(l2, m_train or m)

    def gradients(
        self, X: np.ndarray, Y: np.ndarray, l2: float = 0.0, m_train: int | None = None
    ) -> tuple[float, Parameters]:
        """(J, dJ/dθ) over all of X (n_x, m) and Y (n_y, m), as the note's formulas give them."""
        m = X.shape[1]
        grads = self.parameters.zeros_like()
        result = self.accumulate_block(X, Y, labels_of(Y), grads, Workspace())
        grads.theta /= m
        self.add_penalty_gradient(grads, l2, m_train or m)
        return result.loss_sum / m + self.penalty(l2, m_train or m), grads


def labels_of(Y: np.ndarray) -> np.ndarray:
    """Class indices (m,) of a target matrix Y (n_y, m): the 0/1 row, or the one-hot argmax."""
    return Y[0].astype(np.intp) if Y.shape[0] == 1 else Y.argmax(axis=0)


@dataclass
class LogisticRegression(Model):
    """Z = wᵀX + b with w (n_x, n_y), b (n_y, 1); sigmoid output for 2 classes, softmax for K."""

    n_features: int
    n_classes: int = 2
    weight_names: ClassVar[tuple[str, ...]] = ("w",)
    output: OutputLayer = field(init=False)
    parameters: Parameters = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.output = output_for(self.n_classes)
        self.parameters = Parameters(self.shapes(), np.float64)

    def shapes(self) -> dict[str, tuple[int, int]]:
        n_y = output_units(self.n_classes)
        return {"w": (self.n_features, n_y), "b": (n_y, 1)}

    def initialize_weights(self, rng: np.random.Generator, init: str, scale: float) -> None:
        w = self.parameters["w"]
        # Initializers return (n_out, n_in); w is stored as the note has it, (n_x, n_y).
        w[...] = INITIALIZERS[init](rng, w.shape[1], w.shape[0], scale).T

    def layers(self) -> list[Layer]:
        return [(self.parameters["w"].T, self.parameters["b"], None)]  # wᵀ: (n_y, n_x)

    def block_logits(self, X: np.ndarray, work: Workspace) -> np.ndarray:
        w, b = self.parameters["w"], self.parameters["b"]
        Z = work.array("Z", w.shape[1], X.shape[1], self.dtype)
        np.matmul(w.T, X, out=Z)  # Z = wᵀX: (n_y, m) = (n_y, n_x)(n_x, m)
        Z += b
        return Z

    def accumulate_block(
        self, X: np.ndarray, Y: np.ndarray, labels: np.ndarray, grads: Parameters, work: Workspace
    ) -> BlockResult:
        Z = self.block_logits(X, work)
        result = BlockResult(
            self.output.loss_sum(Z, Y),
            int(np.count_nonzero(self.output.predicted_index(Z) == labels)),
        )
        dZ = self.output.probabilities(Z)
        dZ -= Y  # dZ = A - Y: (n_y, m)
        grads["w"] += X @ dZ.T  # dw = X (A - Y)ᵀ: (n_x, n_y) = (n_x, m)(m, n_y)
        grads["b"] += dZ.sum(axis=1, keepdims=True)  # db = (A - Y) 1: (n_y, 1)
        return result


@dataclass
class TwoLayerNetwork(Model):
    """One hidden layer of ``hidden_units`` with activation g, then the output layer."""

    n_features: int
    n_classes: int = 2
    hidden_units: int = 32
    activation: str = "tanh"
    weight_names: ClassVar[tuple[str, ...]] = ("W1", "W2")
    output: OutputLayer = field(init=False)
    parameters: Parameters = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.activation not in ACTIVATIONS:
            raise ValueError(
                f"unknown activation {self.activation!r}; allowed: {sorted(ACTIVATIONS)}"
            )
        self.output = output_for(self.n_classes)
        self.g = ACTIVATIONS[self.activation]
        self.g_prime = DERIVATIVES[self.activation]
        self.parameters = Parameters(self.shapes(), np.float64)

    def shapes(self) -> dict[str, tuple[int, int]]:
        n_x, n_h, n_y = self.n_features, self.hidden_units, output_units(self.n_classes)
        return {"W1": (n_h, n_x), "b1": (n_h, 1), "W2": (n_y, n_h), "b2": (n_y, 1)}

    def initialize_weights(self, rng: np.random.Generator, init: str, scale: float) -> None:
        for name in self.weight_names:
            W = self.parameters[name]
            W[...] = INITIALIZERS[init](rng, *W.shape, scale)

    def layers(self) -> list[Layer]:
        p = self.parameters
        return [(p["W1"], p["b1"], self.g), (p["W2"], p["b2"], None)]

    def hidden(self, X: np.ndarray, work: Workspace) -> np.ndarray:
        """A1 = g(W1 X + b1) for a block X (n_x, b): (n_h, b), a workspace view."""
        W1, b1 = self.parameters["W1"], self.parameters["b1"]
        A1 = work.array("A1", self.hidden_units, X.shape[1], self.dtype)
        np.matmul(W1, X, out=A1)  # Z1 = W1 X: (n_h, m) = (n_h, n_x)(n_x, m)
        A1 += b1
        return self.g(A1)  # A1 = g(Z1), in place of Z1

    def block_logits(self, X: np.ndarray, work: Workspace) -> np.ndarray:
        return self._output_logits(self.hidden(X, work), work)

    def _output_logits(self, A1: np.ndarray, work: Workspace) -> np.ndarray:
        W2, b2 = self.parameters["W2"], self.parameters["b2"]
        Z2 = work.array("Z2", W2.shape[0], A1.shape[1], self.dtype)
        np.matmul(W2, A1, out=Z2)  # Z2 = W2 A1: (n_y, m) = (n_y, n_h)(n_h, m)
        Z2 += b2
        return Z2

    def accumulate_block(
        self, X: np.ndarray, Y: np.ndarray, labels: np.ndarray, grads: Parameters, work: Workspace
    ) -> BlockResult:
        A1 = self.hidden(X, work)
        Z2 = self._output_logits(A1, work)
        result = BlockResult(
            self.output.loss_sum(Z2, Y),
            int(np.count_nonzero(self.output.predicted_index(Z2) == labels)),
        )
        dZ2 = self.output.probabilities(Z2)
        dZ2 -= Y  # dZ2 = A2 - Y: (n_y, m)
        grads["W2"] += dZ2 @ A1.T  # dW2 = dZ2 A1ᵀ: (n_y, n_h) = (n_y, m)(m, n_h)
        grads["b2"] += dZ2.sum(axis=1, keepdims=True)  # db2 = dZ2 1: (n_y, 1)
        dZ1 = work.array("dZ1", self.hidden_units, X.shape[1], self.dtype)
        np.matmul(self.parameters["W2"].T, dZ2, out=dZ1)  # W2ᵀ dZ2: (n_h, m) = (n_h, n_y)(n_y, m)
        self.g_prime(A1, dZ1)  # dZ1 = W2ᵀ dZ2 * g'(Z1)
        grads["W1"] += dZ1 @ X.T  # dW1 = dZ1 Xᵀ: (n_h, n_x) = (n_h, m)(m, n_x)
        grads["b1"] += dZ1.sum(axis=1, keepdims=True)  # db1 = dZ1 1: (n_h, 1)
        return result
