"""Central-difference gradient check: the arbiter of every formula in the engine.

For each parameter θ_i, (J(θ + εe_i) - J(θ - εe_i)) / 2ε is compared with the
analytic gradient, in float64, and the relative error

    ||g_numeric - g_analytic|| / (||g_numeric|| + ||g_analytic||)

is reported overall and per named array. The seed note's summary prints db1
without its 1/m; this check is what settles such slips.
"""

import copy
from dataclasses import dataclass

import numpy as np

from engine.models import Model
from engine.parameters import Parameters


@dataclass(frozen=True)
class GradientCheck:
    relative_error: float
    per_parameter: dict[str, float]
    analytic: Parameters
    numeric: Parameters


def gradient_check(
    model: Model,
    X: np.ndarray,
    Y: np.ndarray,
    l2: float = 0.0,
    m_train: int | None = None,
    epsilon: float = 1e-6,
) -> GradientCheck:
    """Check ``model.gradients`` at its current parameters on X (n_x, m), Y (n_y, m)."""
    checked = copy.deepcopy(model)
    checked.parameters = Parameters(
        model.parameters.shapes, np.float64, model.parameters.theta.astype(np.float64)
    )
    X = np.asarray(X, dtype=np.float64)
    Y = np.asarray(Y, dtype=np.float64)
    _, analytic = checked.gradients(X, Y, l2, m_train)
    numeric = checked.parameters.zeros_like()
    theta = checked.parameters.theta
    for i in range(theta.size):
        saved = theta[i]
        theta[i] = saved + epsilon
        plus = checked.cost(X, Y, l2, m_train)
        theta[i] = saved - epsilon
        minus = checked.cost(X, Y, l2, m_train)
        theta[i] = saved
        numeric.theta[i] = (plus - minus) / (2.0 * epsilon)
    per_parameter = {name: _relative_error(numeric[name], analytic[name]) for name in analytic}
    return GradientCheck(
        _relative_error(numeric.theta, analytic.theta), per_parameter, analytic, numeric
    )


def _relative_error(numeric: np.ndarray, analytic: np.ndarray) -> float:
    denominator = np.linalg.norm(numeric) + np.linalg.norm(analytic)
    if denominator == 0.0:
        return 0.0
    return float(np.linalg.norm(numeric - analytic) / denominator)
