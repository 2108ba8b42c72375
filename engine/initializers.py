"""Weight initializers, keyed by name, all drawn from one seeded ``numpy.random.Generator``.

The seed note's "Random Initialization": zero weights leave every hidden unit
doing the same work (symmetry is never broken), so weights are drawn at random
and kept small, ``init_scale`` = 0.01 by default, so that tanh and sigmoid
units start in their linear region where the gradient is large.
Biases always start at zero; the random weights already break symmetry.
"""

from collections.abc import Callable

import numpy as np

# Each initializer returns an (n_out, n_in) weight matrix for a layer.
Initializer = Callable[[np.random.Generator, int, int, float], np.ndarray]


def zeros(rng: np.random.Generator, n_out: int, n_in: int, scale: float) -> np.ndarray:
    """All zeros: fine for logistic regression, the note's counter-example for a network."""
    return np.zeros((n_out, n_in))


def random(rng: np.random.Generator, n_out: int, n_in: int, scale: float) -> np.ndarray:
    """The note's choice: standard normal times a small ``scale`` (default 0.01)."""
    return rng.standard_normal((n_out, n_in)) * scale


def xavier(rng: np.random.Generator, n_out: int, n_in: int, scale: float) -> np.ndarray:
    """Glorot normal: variance 2 / (n_in + n_out), which keeps tanh layers' signal level."""
    return rng.standard_normal((n_out, n_in)) * np.sqrt(2.0 / (n_in + n_out))


def he(rng: np.random.Generator, n_out: int, n_in: int, scale: float) -> np.ndarray:
    """He normal: variance 2 / n_in, the usual choice for ReLU layers."""
    return rng.standard_normal((n_out, n_in)) * np.sqrt(2.0 / n_in)


INITIALIZERS: dict[str, Initializer] = {
    "zeros": zeros,
    "random": random,
    "xavier": xavier,
    "he": he,
}

INIT_NAMES: tuple[str, ...] = tuple(INITIALIZERS)
