"""The fitted transform from a table's input columns to the network's features.

Fitted on the training split's coded rows (engine.columns), kept with the model and
saved in its file, applied to every row the model predicts:

* a numeric column is one feature, its missing cells filled with the training mean
  (or median, or a constant); with ``missing_indicator`` a second 0/1 feature
  "name=(missing)" when the training split had missing cells;
* a categorical column is one-hot: a feature per level kept (the most frequent first,
  at most ``max_categories``, each seen ``min_frequency`` times), one "(infrequent)"
  feature the other training levels share, and one "(missing)" feature when the
  training split had missing cells. A level never seen in training is all zeros, and
  counted, so a prediction can say how many such values it met.

Every step is a copy, a comparison or a fill: exact, so a row's features are the same
bits on every machine. Standardization follows (engine.preprocessing.Standardizer),
on the numeric features only; one-hot and indicator features stay 0/1.
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from engine.columns import CATEGORICAL, NUMERIC, InputColumn
from engine.preprocessing import chunk_rows
from engine.specs import PreprocessingSpec

MISSING_LEVEL = "(missing)"
INFREQUENT_LEVEL = "(infrequent)"


@dataclass(frozen=True)
class NumericEncoding:
    column: InputColumn
    fill: float  # what a missing cell becomes
    indicator: bool  # a 0/1 feature "name=(missing)" follows

    @property
    def outputs(self) -> list[str]:
        indicator = [f"{self.column.name}={MISSING_LEVEL}"] if self.indicator else []
        return [self.column.name, *indicator]

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.column.name,
            "kind": NUMERIC,
            "encoding": "numeric",
            "fill_value": self.fill,
            "missing_indicator": self.indicator,
            "outputs": self.outputs,
        }


@dataclass(frozen=True)
class CategoricalEncoding:
    column: InputColumn
    values: np.ndarray  # (k,) float64, sorted: the kept levels' values, a feature each
    infrequent: np.ndarray  # (j,) float64, sorted: training levels that share one feature
    missing: bool  # a "(missing)" feature follows

    @property
    def level_names(self) -> list[str]:
        """The kept levels, in feature order."""
        return [self.column.level_name(value) for value in self.values]

    @property
    def outputs(self) -> list[str]:
        names = [f"{self.column.name}={level}" for level in self.level_names]
        if len(self.infrequent):
            names.append(f"{self.column.name}={INFREQUENT_LEVEL}")
        if self.missing:
            names.append(f"{self.column.name}={MISSING_LEVEL}")
        return names

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.column.name,
            "kind": CATEGORICAL,
            "encoding": "one_hot",
            "levels": self.level_names,
            "infrequent_levels": [self.column.level_name(v) for v in self.infrequent],
            "missing_level": self.missing,
            "outputs": self.outputs,
        }


Encoding = NumericEncoding | CategoricalEncoding


@dataclass(frozen=True)
class ColumnTransform:
    """Input columns (m, n_in) coded -> features (m, n_out); see the module docstring."""

    encodings: tuple[Encoding, ...]  # one per input column the model reads, in order
    ignored: tuple[str, ...] = ()  # columns of the training table left out

    @property
    def columns(self) -> list[InputColumn]:
        return [encoding.column for encoding in self.encodings]

    @property
    def input_names(self) -> list[str]:
        return [encoding.column.name for encoding in self.encodings]

    @property
    def output_names(self) -> list[str]:
        return [name for encoding in self.encodings for name in encoding.outputs]

    @property
    def n_outputs(self) -> int:
        return sum(len(encoding.outputs) for encoding in self.encodings)

    @property
    def standardized_outputs(self) -> np.ndarray:
        """(n_out,) bool: which features are numbers to standardize (not 0/1 indicators)."""
        mask = []
        for encoding in self.encodings:
            mask.append(isinstance(encoding, NumericEncoding))
            mask.extend([False] * (len(encoding.outputs) - 1))
        return np.array(mask, dtype=bool)

    @property
    def keeps_width(self) -> bool:
        """Whether features are the inputs, filled: no one-hot, no indicator."""
        return all(len(e.outputs) == 1 and e.column.kind == NUMERIC for e in self.encodings)

    @classmethod
    def identity(cls, names: Sequence[str], fills: Sequence[float]) -> "ColumnTransform":
        """Numeric columns used as they are, a missing cell filled with ``fills`` (a model
        from before categoricals: its training means, which standardize to 0)."""
        return cls(
            tuple(
                NumericEncoding(InputColumn(name), fill=float(fill), indicator=False)
                for name, fill in zip(names, fills, strict=True)
            )
        )

    @classmethod
    def fit(
        cls,
        rows: np.ndarray,
        columns: Sequence[InputColumn],
        spec: PreprocessingSpec,
        ignored: Sequence[str] = (),
    ) -> "ColumnTransform":
        """Fit on the training split's coded rows (m, n_in), one column per ``columns``."""
        encodings: list[Encoding] = []
        for j, column in enumerate(columns):
            values = np.ascontiguousarray(rows[:, j], dtype=np.float64)  # (m,)
            if column.kind == NUMERIC:
                encodings.append(_fit_numeric(column, values, spec))
            else:
                encodings.append(_fit_categorical(column, values, spec))
        return cls(tuple(encodings), tuple(ignored))

    def fill_in_place(self, rows: np.ndarray) -> np.ndarray:
        """Fill the missing cells of ``rows`` (m, n_in), a float array, when ``keeps_width``."""
        fills = np.array([e.fill for e in self.encodings], dtype=rows.dtype)  # type: ignore[union-attr]
        step = chunk_rows(rows)
        for start in range(0, rows.shape[0], step):
            chunk = rows[start : start + step]
            missing = np.isnan(chunk)
            if missing.any():
                np.copyto(chunk, np.broadcast_to(fills, chunk.shape), where=missing)
        return rows

    def transform(self, rows: np.ndarray, dtype: np.dtype) -> tuple[np.ndarray, np.ndarray]:
        """(features (m, n_out) in ``dtype``, (n_in,) int64 count of unseen levels per column)."""
        m = rows.shape[0]
        out = np.zeros((m, self.n_outputs), dtype=dtype)
        unseen = np.zeros(len(self.encodings), dtype=np.int64)
        base = 0
        for j, encoding in enumerate(self.encodings):
            values = rows[:, j]  # (m,) float64 codes or numbers
            if isinstance(encoding, NumericEncoding):
                missing = np.isnan(values)
                out[:, base] = np.where(missing, encoding.fill, values)
                if encoding.indicator:
                    out[:, base + 1] = missing
            else:
                unseen[j] = _one_hot(encoding, values, out[:, base : base + len(encoding.outputs)])
            base += len(encoding.outputs)
        return out, unseen

    def check_rows(self, rows: np.ndarray) -> None:
        """``check_coded_rows`` against the columns the model reads."""
        check_coded_rows(rows, self.columns)

    # Saving: JSON for names and flags, arrays for the values -------------------------------

    def to_json(self) -> dict[str, Any]:
        columns = []
        for encoding in self.encodings:
            entry: dict[str, Any] = encoding.column.to_dict()
            if isinstance(encoding, NumericEncoding):
                entry |= {"fill": encoding.fill, "indicator": encoding.indicator}
            else:
                entry |= {"missing": encoding.missing}
            columns.append(entry)
        return {"columns": columns, "ignored": list(self.ignored)}

    def arrays(self) -> dict[str, np.ndarray]:
        arrays = {}
        for j, encoding in enumerate(self.encodings):
            if isinstance(encoding, CategoricalEncoding):
                arrays[f"encoding/{j}/values"] = encoding.values
                arrays[f"encoding/{j}/infrequent"] = encoding.infrequent
        return arrays

    @classmethod
    def from_saved(cls, data: dict[str, Any], arrays: dict[str, np.ndarray]) -> "ColumnTransform":
        encodings: list[Encoding] = []
        for j, entry in enumerate(data["columns"]):
            column = InputColumn.from_dict(entry)
            if column.kind == NUMERIC:
                fill = float(entry["fill"])
                if not math.isfinite(fill):
                    raise ValueError(f"column {column.name!r}: fill value {fill} is not finite")
                encodings.append(NumericEncoding(column, fill, bool(entry["indicator"])))
                continue
            values = arrays[f"encoding/{j}/values"]
            infrequent = arrays[f"encoding/{j}/infrequent"]
            for array in (values, infrequent):
                if array.dtype != np.float64 or array.ndim != 1 or not np.isfinite(array).all():
                    raise ValueError(f"column {column.name!r}: level values are damaged")
            missing = bool(entry["missing"])
            encodings.append(CategoricalEncoding(column, values, infrequent, missing))
        return cls(tuple(encodings), tuple(str(name) for name in data.get("ignored", [])))

    def describe(self) -> list[dict[str, Any]]:
        """How each input column is encoded: for the model's description."""
        return [encoding.describe() for encoding in self.encodings]


def check_coded_rows(rows: np.ndarray, columns: Sequence[InputColumn]) -> None:
    """ValueError naming the first cell the coded rows (m, n_in) cannot hold: an infinite
    number, or a code that is not a level's (-1, unseen, is allowed). Row chunks."""
    numeric = [j for j, column in enumerate(columns) if column.kind == NUMERIC]
    coded = [(j, len(c.levels)) for j, c in enumerate(columns) if c.levels is not None]
    step = chunk_rows(rows)
    for start in range(0, rows.shape[0], step):
        chunk = rows[start : start + step]
        bad = np.zeros(chunk.shape, dtype=bool)
        if numeric:
            bad[:, numeric] = np.isinf(chunk[:, numeric])
        for j, n_levels in coded:
            values = chunk[:, j]
            with np.errstate(invalid="ignore"):
                wrong = (values != np.floor(values)) | (values < -1) | (values >= n_levels)
            bad[:, j] = wrong & ~np.isnan(values)
        if bad.any():
            i, j = np.argwhere(bad)[0]
            column = columns[j]
            reason = "not finite" if column.kind == NUMERIC else "not a level's code"
            raise ValueError(
                f"row {start + i}, column {j} ({column.name!r}) is {chunk[i, j]}: {reason}"
            )


def _fit_numeric(column: InputColumn, values: np.ndarray, spec: PreprocessingSpec) -> Encoding:
    missing = np.isnan(values)
    present = values[~missing]
    if spec.impute == "constant" or len(present) == 0:
        fill = float(spec.fill_value)
    elif spec.impute == "median":
        fill = float(np.median(present))
    else:
        fill = float(present.mean())  # also without missing cells: a record may bring one
    return NumericEncoding(column, fill, bool(spec.missing_indicator and missing.any()))


def _fit_categorical(column: InputColumn, values: np.ndarray, spec: PreprocessingSpec) -> Encoding:
    missing = np.isnan(values)
    levels, counts = np.unique(values[~missing], return_counts=True)
    # Most frequent first; ties in level order, so the choice is the same on any machine.
    order = np.lexsort((levels, -counts))
    frequent = order[counts[order] >= spec.min_frequency][: spec.max_categories]
    kept = np.zeros(len(levels), dtype=bool)
    kept[frequent] = True
    return CategoricalEncoding(
        column,
        values=levels[kept].astype(np.float64),
        infrequent=levels[~kept].astype(np.float64),
        missing=bool(missing.any()),
    )


def _one_hot(encoding: CategoricalEncoding, values: np.ndarray, out: np.ndarray) -> int:
    """Write the one-hot features of ``values`` (m,) into ``out`` (m, outputs) (zeros on
    entry); the number of values that are neither a training level nor missing."""
    rows = np.arange(len(values))
    missing = np.isnan(values)
    k = len(encoding.values)
    matched = np.zeros(len(values), dtype=bool)
    if k:
        position = np.minimum(np.searchsorted(encoding.values, values), k - 1)
        matched = encoding.values[position] == values
        out[rows[matched], position[matched]] = 1
    placed = matched | missing
    if len(encoding.infrequent):
        rare = ~placed & np.isin(values, encoding.infrequent)
        out[rare, k] = 1
        placed |= rare
    if encoding.missing:
        out[missing, out.shape[1] - 1] = 1
    return int((~placed).sum())
