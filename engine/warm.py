"""Warm start: a fit that begins from a fitted Classifier (fine-tuning) instead of fresh weights.

    child = fit(X_new, y_new, parent.model_spec, TrainingSpec(epochs=50), columns=columns,
                warm_start=parent)

What the child takes from its parent, and what it does not:

* its parameters θ are the parent's (cast to the training dtype): the first epoch's
  loss is the parent's loss on the new rows;
* its preprocessing is the parent's fitted ColumnTransform and Standardizer, used as
  they are (NOT refitted on the new rows): the child codes and scales every row exactly
  as the parent did, so one row means the same features to both;
* its classes are the parent's, in the parent's order: the output layer is fixed, so a
  label the parent never saw cannot be learned (ValueError says so); a class absent from
  the new rows is fine;
* the optimizer state (Adam's moments, momentum) starts fresh, as do early stopping's
  bookkeeping and the history.

The model spec must name the parent's architecture (type, and for a network
hidden_units and activation; the output follows from the classes); ``init`` and
``init_scale`` are moot. The table must hold the parent's input columns with the same
kinds (numbers, or categories); a categorical's codes are mapped by level name onto the
parent's levels (engine.columns.recode; a level the parent never saw is "unseen"). A
table column the parent neither reads nor left out is refused, as a prediction refuses
it: the parent would silently drop it. Every difference is listed in one ValueError.
"""

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from engine.classifier import Classifier
from engine.columns import CATEGORICAL, NUMERIC, InputColumn, recode
from engine.data import Fitted, can_overwrite, compact_columns_in_place, table_columns
from engine.models import Model
from engine.preprocessing import gather_rows
from engine.specs import HIDDEN_LAYER_FIELDS, ModelSpec, PreprocessingSpec, TrainingSpec


def data_kind(column: InputColumn) -> str:
    """What a column holds in the data: categories (coded levels) or numbers.

    A numeric column the spec's ``categorical`` made categorical still holds numbers in
    the table (its levels are the numbers themselves), so it is "numeric" here.
    """
    return CATEGORICAL if column.coded else NUMERIC


@dataclass(frozen=True)
class Differences:
    """Why a parent cannot be fine-tuned on a table and spec; empty when it can."""

    # (field, the parent's value, the request's) per architecture field that differs
    architecture: list[tuple[str, object, object]] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # parent's input columns the table lacks
    extra: list[str] = field(default_factory=list)  # table columns the parent does not know
    kinds: list[tuple[str, str, str]] = field(default_factory=list)  # name, parent, table kind
    new_classes: list[object] = field(default_factory=list)  # labels the parent never saw
    parent_classes: list[object] = field(default_factory=list)

    def __bool__(self) -> bool:
        found = (self.architecture, self.missing, self.extra, self.kinds, self.new_classes)
        return any(found)

    def messages(self) -> list[str]:
        """One sentence per difference, in a fixed order: architecture, columns, classes."""
        out = [
            f"model.{name}: the parent model has {parent!r}, the request {child!r}"
            for name, parent, child in self.architecture
        ]
        if self.missing:
            out.append(f"missing columns: the data lacks the parent's input columns {self.missing}")
        if self.extra:
            out.append(f"extra columns: the parent model was not trained on {self.extra}")
        out += [
            f"kind change: column {name!r} is {parent} in the parent model, {child} in the data"
            for name, parent, child in self.kinds
        ]
        if self.new_classes:
            out.append(
                f"new classes: labels {self.new_classes} are not among the parent model's "
                f"classes {self.parent_classes}; a fixed output layer cannot learn a new class"
            )
        return out


def architecture_differences(
    parent: Classifier, spec: ModelSpec
) -> list[tuple[str, object, object]]:
    """(field, parent's value, spec's value) for each architecture field that differs."""
    mine = parent.model_spec
    if spec.type != mine.type:
        return [("type", mine.type, spec.type)]
    if spec.type == "logistic_regression":
        return []
    return [
        (name, getattr(mine, name), getattr(spec, name))
        for name in HIDDEN_LAYER_FIELDS
        if getattr(mine, name) != getattr(spec, name)
    ]


def column_differences(
    parent: Classifier, table: Sequence[InputColumn], left_out: Iterable[str] = ()
) -> Differences:
    """The parent's input columns against a table's: missing, extra and kind changes.

    ``left_out``: table columns that are not training inputs anyway (an upload's unique
    ids); with the parent's own left-out columns they are not "extra".
    """
    kinds = {column.name: data_kind(column) for column in table}
    ignorable = set(parent.transform.ignored) | set(left_out)
    return Differences(
        missing=[c.name for c in parent.columns if c.name not in kinds],
        extra=[
            name for name in kinds if name not in parent.feature_names and name not in ignorable
        ],
        kinds=[
            (c.name, data_kind(c), kinds[c.name])
            for c in parent.columns
            if c.name in kinds and kinds[c.name] != data_kind(c)
        ],
    )


def new_classes(parent: Classifier, labels: Iterable[object]) -> list[object]:
    """The distinct labels the parent does not know, in the order given."""
    known = set(parent.classes)
    seen: list[object] = []
    for label in labels:
        if label not in known and label not in seen:
            seen.append(label)
    return seen


def differences(
    parent: Classifier,
    spec: ModelSpec,
    table: Sequence[InputColumn],
    labels: Iterable[object],
    left_out: Iterable[str] = (),
) -> Differences:
    """Every reason ``parent`` cannot start a fit of ``spec`` on this table and labels."""
    columns = column_differences(parent, table, left_out)
    return replace(
        columns,
        architecture=architecture_differences(parent, spec),
        new_classes=new_classes(parent, labels),
        parent_classes=list(parent.classes),
    )


def fingerprint(parent: Classifier | None) -> dict[str, str]:
    """What a checkpoint's fingerprint adds for a warm start: the sha256 of the parent's
    parameters, so it resumes onto the same parent only (nothing without a parent)."""
    if parent is None:
        return {}
    theta = np.ascontiguousarray(parent.model.parameters.theta)
    return {"warm_start": hashlib.sha256(theta.tobytes()).hexdigest()}


def warm_training_spec(parent: Classifier, spec: TrainingSpec) -> TrainingSpec:
    """``spec`` with the parent's preprocessing: the one in force. ValueError when ``spec``
    asks for other preprocessing (anything but the default or the parent's own)."""
    mine = parent.training_spec.preprocessing
    if spec.preprocessing not in (PreprocessingSpec(), mine):
        raise ValueError(
            "training.preprocessing: a warm start uses its parent's fitted preprocessing "
            f"as it is; leave preprocessing out or give the parent's ({mine})"
        )
    return replace(spec, preprocessing=mine)


def warm_rows(
    parent: Classifier,
    X: np.ndarray,
    table: Sequence[InputColumn],
    dtype: np.dtype,
    overwrite_rows: bool,
) -> np.ndarray:
    """The table's rows (m, n_table) as the parent's coded input rows (m, n_in): its
    columns, in its order, categorical codes mapped onto its levels. A new array in
    ``dtype``, or X's own memory when ``overwrite_rows`` and X qualifies (engine.data)."""
    position = {column.name: j for j, column in enumerate(table)}
    used = [position[name] for name in parent.feature_names]
    if overwrite_rows and can_overwrite(X, dtype) and used == sorted(used):
        rows = compact_columns_in_place(X, used)
    else:
        rows = gather_rows(X, np.arange(X.shape[0]), dtype, used)
    sources = [table[i] for i in used]
    for j, (source, target) in enumerate(zip(sources, parent.columns, strict=True)):
        rows[:, j] = recode(rows[:, j], source, target)  # (m,): the parent's codes
    return rows


def warm_inputs(
    parent: Classifier | None,
    X: np.ndarray | Sequence[Sequence[float]],
    y: np.ndarray | Sequence[object],
    model: ModelSpec,
    training: TrainingSpec,
    columns: Sequence[InputColumn] | None,
    feature_names: Sequence[str] | None,
    overwrite_rows: bool,
) -> tuple[Any, TrainingSpec, Fitted | None]:
    """(the parent's coded rows (m, n_in), the spec in force, the parent's fitted
    preprocessing) for fit; ValueError listing every difference otherwise. ``columns``
    and ``feature_names`` describe X's columns as fit's arguments do. No parent: X and
    ``training`` as they are, nothing fitted."""
    if parent is None:
        return X, training, None
    X = np.asarray(X)
    if X.ndim != 2:
        raise ValueError(f"X must be a 2-D table of rows (m, n_x), got shape {X.shape}")
    table = table_columns(X.shape[1], columns, feature_names)
    found = differences(parent, model, table, np.unique(np.asarray(y)).tolist())
    if found:
        raise ValueError("cannot warm-start from this model: " + "; ".join(found.messages()))
    spec = warm_training_spec(parent, training)
    rows = warm_rows(parent, X, table, np.dtype(spec.dtype), overwrite_rows)
    return rows, spec, Fitted(parent.transform, parent.standardizer, parent.encoder)


def initialize(
    model: Model,
    spec: ModelSpec,
    rng: np.random.Generator,
    dtype: np.dtype,
    parent: Classifier | None = None,
) -> None:
    """Fresh parameters as ``spec`` says (no parent), or the parent's, cast to ``dtype``."""
    if parent is None:
        model.initialize(rng, spec.init, spec.init_scale, dtype)
        return
    model.initialize(np.random.default_rng(0), "zeros", 0.0, dtype)  # allocates θ
    source = parent.model.parameters
    if model.parameters.shapes != source.shapes:
        raise ValueError(
            f"the parent's parameters {source.shapes} do not fit this model "
            f"{model.parameters.shapes}"
        )
    model.parameters.theta[...] = source.theta  # cast to the training dtype
