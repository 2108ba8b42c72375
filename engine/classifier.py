"""A fitted model: the network with its preprocessing, ready to predict from raw rows."""

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engine import invariant
from engine.models import LogisticRegression, Model, TwoLayerNetwork
from engine.preprocessing import LabelEncoder, Standardizer
from engine.specs import ModelSpec, TrainingSpec

PREDICT_ROWS = 8192  # rows standardized and forwarded at a time


def build_model(spec: ModelSpec, n_features: int, n_classes: int) -> Model:
    """The engine model a ModelSpec names, with unset (zero) float64 parameters."""
    if spec.type == "logistic_regression":
        return LogisticRegression(n_features=n_features, n_classes=n_classes)
    return TwoLayerNetwork(
        n_features=n_features,
        n_classes=n_classes,
        hidden_units=spec.hidden_units,
        activation=spec.activation,
    )


@dataclass
class Classifier:
    """Predicts labels and class probabilities for raw rows (m, n_x) in the training schema."""

    model: Model
    standardizer: Standardizer
    encoder: LabelEncoder
    feature_names: list[str]
    model_spec: ModelSpec
    training_spec: TrainingSpec
    metadata: dict[str, Any] = field(default_factory=dict)  # free-form, saved with the model

    @property
    def classes(self) -> list[object]:
        return self.encoder.classes

    @property
    def n_features(self) -> int:
        return self.model.n_features

    def _rows(self, rows: np.ndarray | Sequence[Sequence[float]]) -> np.ndarray:
        rows = np.asarray(rows)
        if rows.ndim != 2 or rows.shape[1] != self.n_features:
            raise ValueError(f"expected rows of {self.n_features} features, got shape {rows.shape}")
        if rows.dtype.kind not in "biuf":
            raise ValueError(f"features must be numbers, got dtype {rows.dtype}")
        if not np.isfinite(rows).all():
            raise ValueError("features must be finite: found NaN or infinity")
        return rows

    def predict_proba(self, rows: np.ndarray | Sequence[Sequence[float]]) -> np.ndarray:
        """P(class k | row) for rows (m, n_x): (m, K), columns in ``classes`` order.

        A row's probabilities are the same bits alone or in any batch, in any order, on any
        BLAS kernel: the forward pass sums in an order fixed by the shapes (engine.invariant).
        """
        rows = self._rows(rows)
        out = np.empty((rows.shape[0], len(self.classes)), dtype=np.float64)
        for start in range(0, rows.shape[0], PREDICT_ROWS):
            chunk = self.standardizer.transform(
                rows[start : start + PREDICT_ROWS], self.model.dtype
            )
            A = invariant.probabilities(self.model, chunk)  # (n_y, b)
            if A.shape[0] == 1:  # sigmoid: P(class 1) = a, P(class 0) = 1 - a
                out[start : start + chunk.shape[0], 1] = A[0]
                out[start : start + chunk.shape[0], 0] = 1.0 - A[0]
            else:
                out[start : start + chunk.shape[0]] = A.T
        return out

    def predict(self, rows: np.ndarray | Sequence[Sequence[float]]) -> np.ndarray:
        """The most probable label of each row, in the training labels' own values: (m,)."""
        return self.encoder.inverse_transform(self.predict_proba(rows).argmax(axis=1))

    def parameters_as_lists(self) -> dict[str, list]:
        """Every parameter array as nested lists (JSON-ready), by the note's names."""
        return {name: array.tolist() for name, array in self.model.parameters.items()}
