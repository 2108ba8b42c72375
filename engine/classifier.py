"""A fitted model: the network with its preprocessing, ready to predict from raw rows."""

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engine import invariant
from engine.columns import InputColumn, RecordCoder, code_records
from engine.encoding import ColumnTransform
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
    """Predicts labels and class probabilities for rows of its input columns.

    Rows are coded (engine.columns): numbers, NaN for a missing cell, a categorical's
    level codes; ``code_records`` turns JSON-like records into such rows.
    """

    model: Model
    standardizer: Standardizer
    encoder: LabelEncoder
    feature_names: list[str]  # the input columns, in order
    model_spec: ModelSpec
    training_spec: TrainingSpec
    metadata: dict[str, Any] = field(default_factory=dict)  # free-form, saved with the model
    transform: ColumnTransform | None = None  # None: the inputs are the features, as they are

    def __post_init__(self) -> None:
        if self.transform is None:
            self.transform = ColumnTransform.identity(self.feature_names, self.standardizer.mean)

    @property
    def classes(self) -> list[object]:
        return self.encoder.classes

    @property
    def n_features(self) -> int:
        """The network's input width n_x: the features after encoding."""
        return self.model.n_features

    @property
    def n_inputs(self) -> int:
        """How many input columns a row holds."""
        return len(self.feature_names)

    @property
    def columns(self) -> list[InputColumn]:
        return self.transform.columns

    def code_records(self, records: Sequence[dict[str, object]]) -> np.ndarray:
        """Records (dicts by column name: numbers, strings, booleans, None) as coded rows
        (m, n_in); RecordError names the first record and column that cannot be coded."""
        return code_records(records, self.columns)

    def record_coder(self) -> RecordCoder:
        """Codes records one by one (a service lists every bad record, not the first)."""
        return RecordCoder(self.columns)

    def _rows(self, rows: np.ndarray | Sequence[Sequence[float]]) -> np.ndarray:
        rows = np.asarray(rows)
        if rows.ndim != 2 or rows.shape[1] != self.n_inputs:
            raise ValueError(f"expected rows of {self.n_inputs} features, got shape {rows.shape}")
        if rows.dtype.kind not in "biuf":
            raise ValueError(f"features must be numbers, got dtype {rows.dtype}")
        self.transform.check_rows(rows)
        return rows

    def features(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(the network's standardized inputs (m, n_x) in the model's dtype, the count of
        unseen levels per input column (n_in,)) for coded rows (m, n_in)."""
        dtype = self.model.dtype
        coded = np.array(rows, dtype=dtype, copy=True)  # the training rows' dtype: same codes
        if self.transform.keeps_width:
            features, unseen = self.transform.fill_in_place(coded), np.zeros(self.n_inputs, int)
        else:
            features, unseen = self.transform.transform(coded, dtype)
        return self.standardizer.transform_in_place(features), unseen

    def predict_proba(self, rows: np.ndarray | Sequence[Sequence[float]]) -> np.ndarray:
        """P(class k | row) for rows (m, n_in): (m, K), columns in ``classes`` order."""
        return self.predict_proba_counting(rows)[0]

    def predict_proba_counting(
        self, rows: np.ndarray | Sequence[Sequence[float]]
    ) -> tuple[np.ndarray, np.ndarray]:
        """(P(class k | row) (m, K), unseen levels per input column (n_in,) int64).

        A row's probabilities are the same bits alone or in any batch, in any order, on any
        BLAS kernel: the encoding is exact and the forward pass sums in an order fixed by
        the shapes (engine.invariant).
        """
        rows = self._rows(rows)
        out = np.empty((rows.shape[0], len(self.classes)), dtype=np.float64)
        unseen = np.zeros(self.n_inputs, dtype=np.int64)
        for start in range(0, rows.shape[0], PREDICT_ROWS):
            chunk, chunk_unseen = self.features(rows[start : start + PREDICT_ROWS])
            unseen += chunk_unseen
            self._probabilities_into(chunk, out[start : start + chunk.shape[0]])
        return out, unseen

    def proba_of_features(self, features: np.ndarray) -> np.ndarray:
        """P(class k | row) (m, K) for rows already turned into the network's standardized
        inputs (m, n_x), as ``features`` makes them (a fit's splits hold such rows): the
        same bits predict_proba gives for the rows they came from."""
        out = np.empty((features.shape[0], len(self.classes)), dtype=np.float64)
        for start in range(0, features.shape[0], PREDICT_ROWS):
            chunk = features[start : start + PREDICT_ROWS]
            self._probabilities_into(chunk, out[start : start + chunk.shape[0]])
        return out

    def _probabilities_into(self, features: np.ndarray, out: np.ndarray) -> None:
        """Write P(class k | row) (b, K) for standardized inputs (b, n_x) into ``out``."""
        A = invariant.probabilities(self.model, features)  # (n_y, b)
        if A.shape[0] == 1:  # sigmoid: P(class 1) = a, P(class 0) = 1 - a
            out[:, 1] = A[0]
            out[:, 0] = 1.0 - A[0]
        else:
            out[:] = A.T

    def predict(self, rows: np.ndarray | Sequence[Sequence[float]]) -> np.ndarray:
        """The most probable label of each row, in the training labels' own values: (m,)."""
        return self.encoder.inverse_transform(self.predict_proba(rows).argmax(axis=1))

    def parameters_as_lists(self) -> dict[str, list]:
        """Every parameter array as nested lists (JSON-ready), by the note's names."""
        return {name: array.tolist() for name, array in self.model.parameters.items()}
