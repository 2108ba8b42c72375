"""Update rules for the flat parameter vector θ, keyed by name.

Each optimizer updates θ in place from the gradient of the current batch and
exposes its state as named arrays, so a checkpoint can store and restore it
exactly. (L-BFGS is driven by scipy.optimize instead: see ``training``.)
The momentum and Adam forms are the ones taught alongside the seed note:
v = β v + (1 - β) dθ, and Adam with bias correction.
"""

import numpy as np

from engine.specs import TrainingSpec


class Optimizer:
    """θ ← update(θ, dθ); state lives in ``self.state`` (arrays), all in θ's dtype."""

    def __init__(self, size: int, dtype: np.dtype, spec: TrainingSpec, learning_rate: float):
        self.learning_rate = learning_rate  # spec.step_size(the model's type)
        self.spec = spec
        self.state: dict[str, np.ndarray] = self.initial_state(size, dtype)

    def initial_state(self, size: int, dtype: np.dtype) -> dict[str, np.ndarray]:
        return {}

    def step(self, theta: np.ndarray, grad: np.ndarray) -> None:
        raise NotImplementedError

    def load_state(self, state: dict[str, np.ndarray]) -> None:
        if set(state) != set(self.state):
            raise ValueError(f"optimizer state has {sorted(state)}, expected {sorted(self.state)}")
        for name, value in state.items():
            self.state[name][...] = value


class GradientDescent(Optimizer):
    """The note's rule: θ ← θ - α dθ."""

    def step(self, theta: np.ndarray, grad: np.ndarray) -> None:
        theta -= self.learning_rate * grad


class Momentum(Optimizer):
    """v ← β v + (1 - β) dθ;  θ ← θ - α v."""

    def initial_state(self, size: int, dtype: np.dtype) -> dict[str, np.ndarray]:
        return {"velocity": np.zeros(size, dtype=dtype)}

    def step(self, theta: np.ndarray, grad: np.ndarray) -> None:
        beta = self.spec.momentum
        velocity = self.state["velocity"]
        velocity *= beta
        velocity += (1.0 - beta) * grad
        theta -= self.learning_rate * velocity


class Adam(Optimizer):
    """Adam with bias-corrected first and second moments."""

    def initial_state(self, size: int, dtype: np.dtype) -> dict[str, np.ndarray]:
        return {
            "first_moment": np.zeros(size, dtype=dtype),
            "second_moment": np.zeros(size, dtype=dtype),
            "step": np.zeros(1, dtype=np.int64),
        }

    def step(self, theta: np.ndarray, grad: np.ndarray) -> None:
        beta1, beta2 = self.spec.beta1, self.spec.beta2
        m, v, t = self.state["first_moment"], self.state["second_moment"], self.state["step"]
        t += 1
        m *= beta1
        m += (1.0 - beta1) * grad
        v *= beta2
        v += (1.0 - beta2) * np.square(grad)
        # α_t = α sqrt(1 - β2^t) / (1 - β1^t) folds both bias corrections into the step.
        step = int(t[0])
        rate = self.learning_rate * np.sqrt(1.0 - beta2**step) / (1.0 - beta1**step)
        denominator = np.sqrt(v)
        denominator += self.spec.epsilon * np.sqrt(1.0 - beta2**step)
        theta -= (rate * m / denominator).astype(theta.dtype, copy=False)


OPTIMIZERS: dict[str, type[Optimizer]] = {
    "gd": GradientDescent,
    "momentum": Momentum,
    "adam": Adam,
}
