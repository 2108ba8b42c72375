"""Per-fit diagnostics: gradient norm per layer, hidden-unit symmetry, dead ReLU units.

The seed note warns that zero initialization leaves every hidden unit doing
the same work; ``identical_hidden_units`` makes that visible: after a
zero-initialized fit of a two-layer network it equals ``hidden_units``.
"""

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from engine.activations import RECTIFIERS
from engine.models import Model, TwoLayerNetwork
from engine.parameters import Parameters
from engine.workspace import Workspace

# Units whose parameters agree to this relative precision count as identical.
SYMMETRY_DECIMALS = {np.dtype(np.float64): 10, np.dtype(np.float32): 5}


@dataclass(frozen=True)
class Diagnostics:
    gradient_norms: dict[str, float]  # ||dJ/dW|| per array, from the last epoch's gradient
    identical_hidden_units: int | None = None  # units sharing (W1 row, b1, W2 column) with another
    distinct_hidden_units: int | None = None
    dead_unit_fraction: float | None = None  # ReLU units never active on the training split
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def diagnose(model: Model, last_gradient: Parameters | None, X_train: np.ndarray) -> Diagnostics:
    """Diagnostics for a fitted ``model``; X_train is the standardized (n_x, m) training split."""
    norms = last_gradient.norms() if last_gradient is not None else {}
    if not isinstance(model, TwoLayerNetwork):
        return Diagnostics(gradient_norms=norms)
    identical, distinct = hidden_unit_symmetry(model)
    warnings = []
    if distinct == 1 and model.hidden_units > 1:
        warnings.append(
            f"all {model.hidden_units} hidden units are identical: symmetry was never broken "
            "(zero initialization?), so the network computes what one unit would"
        )
    dead = None
    if model.activation in RECTIFIERS:
        dead = dead_unit_fraction(model, X_train)
        if dead >= 0.5:
            warnings.append(f"{dead:.0%} of the ReLU units are never active on the training data")
    return Diagnostics(norms, identical, distinct, dead, warnings)


def hidden_unit_symmetry(model: TwoLayerNetwork) -> tuple[int, int]:
    """(units identical to at least one other unit, distinct units)."""
    p = model.parameters
    # One row per hidden unit j: its incoming weights, bias and outgoing weights.
    units = np.hstack([p["W1"], p["b1"], p["W2"].T]).astype(np.float64)  # (n_h, n_x + 1 + n_y)
    scale = max(float(np.abs(units).max()), np.finfo(np.float64).tiny)
    rounded = np.round(units / scale, SYMMETRY_DECIMALS.get(model.dtype, 10))
    _, inverse, counts = np.unique(rounded, axis=0, return_inverse=True, return_counts=True)
    identical = int(np.count_nonzero(counts[inverse.ravel()] > 1))
    return identical, len(counts)


def dead_unit_fraction(model: TwoLayerNetwork, X: np.ndarray, columns: int = 4096) -> float:
    """Fraction of hidden units whose activation is ≤ 0 for every column of X (n_x, m)."""
    work = Workspace()
    ever_active = np.zeros(model.hidden_units, dtype=bool)
    for start in range(0, X.shape[1], columns):
        A1 = model.hidden(X[:, start : start + columns], work)  # (n_h, b)
        ever_active |= (A1 > 0).any(axis=1)
    return float(1.0 - ever_active.mean())
