"""The scikit-learn estimators' shared machinery: parameters to specs, fit and predict.

engine.sklearn documents the estimators; their columns are coded by engine.sklearn_columns.
"""

import warnings
from collections.abc import Iterable, Sequence
from dataclasses import fields
from typing import Any, ClassVar, Self

import numpy as np
from numpy.typing import ArrayLike
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import Tags
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import (
    check_array,
    check_consistent_length,
    check_is_fitted,
    column_or_1d,
    validate_data,
)

from engine.columns import CATEGORICAL
from engine.sklearn_columns import code_column, is_dataframe, learn_column
from engine.specs import EarlyStopping, ModelSpec, PreprocessingSpec, SpecError, TrainingSpec
from engine.training import fit

# The engine's defaults, the single source of every constructor default below.
_MODEL = ModelSpec()
_TRAINING = TrainingSpec()
_PREPROCESSING = PreprocessingSpec()

# Spec fields an estimator parameter can set; ``type`` is fixed by the estimator class.
_MODEL_FIELDS = tuple(f.name for f in fields(ModelSpec) if f.name != "type")
# ``early_stopping`` and ``preprocessing`` are not plain values: built by _early_stopping and
# from the preprocessing parameters.
_TRAINING_FIELDS = tuple(
    f.name for f in fields(TrainingSpec) if f.name not in ("early_stopping", "preprocessing")
)
_EARLY_STOPPING_FIELDS = tuple(f.name for f in fields(EarlyStopping))
# Estimator parameter -> PreprocessingSpec field: the field's own name, unless scikit-learn
# already names the same thing.
_PREPROCESSING_PARAMETERS = {
    {"categorical": "categorical_features"}.get(f.name, f.name): f.name
    for f in fields(PreprocessingSpec)
}
# The parameters that list columns of X: None, or names and positions.
_COLUMN_LIST_PARAMETERS = ("categorical_features", "ignore")
# What the engine's SpecError calls a preprocessing parameter ("preprocessing.impute").
_PARAMETER_OF_FIELD = {f"preprocessing.{f}": p for p, f in _PREPROCESSING_PARAMETERS.items()}


class _BackpropClassifier(ClassifierMixin, BaseEstimator):
    """What both estimators share: specs from parameters, fit, predict, fitted attributes."""

    _model_type: ClassVar[str]

    def __sklearn_tags__(self) -> Tags:
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True  # a missing cell is imputed (``impute``)
        tags.input_tags.string = True  # a column of text is categorical
        return tags

    def to_specs(
        self, feature_names: Sequence[str] | None = None
    ) -> tuple[ModelSpec, TrainingSpec]:
        """The engine's ``(ModelSpec, TrainingSpec)`` these parameters describe.

        ``feature_names`` are X's column names: the positions in ``categorical_features``
        and ``ignore`` become those names, and a name X lacks raises ``ValueError``. Without
        them, position j is the name the engine gives an array's column, "x{j}".
        The specs are not validated here; ``fit`` validates them and raises ``ValueError``
        (the engine's ``SpecError``) naming the bad parameter.
        """
        params = self.get_params(deep=False)
        model = {name: _plain(params[name]) for name in _MODEL_FIELDS if name in params}
        training: dict[str, Any] = {name: _plain(params[name]) for name in _TRAINING_FIELDS}
        training["early_stopping"] = _early_stopping(params["early_stopping"])
        training["preprocessing"] = PreprocessingSpec(
            **{
                field: _column_names(parameter, params[parameter], feature_names)
                if parameter in _COLUMN_LIST_PARAMETERS
                else _plain(params[parameter])
                for parameter, field in _PREPROCESSING_PARAMETERS.items()
            }
        )
        return ModelSpec(type=self._model_type, **model), TrainingSpec(**training)

    def fit(self, X: ArrayLike, y: ArrayLike) -> Self:
        """Train on X (n_samples, n_features), a DataFrame or array, and y (n_samples,)."""
        columns, y = self._checked_columns(X, y, reset=True)
        check_classification_targets(y)
        names = self._input_names()
        model_spec, training_spec = _validated(*self.to_specs(feature_names=names))
        categorical = set(training_spec.preprocessing.categorical)
        inputs = [
            learn_column(name, values, categorical=name in categorical)
            for name, values in zip(names, columns, strict=True)
        ]
        rows = np.column_stack([codes for codes, _ in inputs])  # (n_samples, n_features)
        result = fit(rows, y, model_spec, training_spec, columns=[column for _, column in inputs])
        self.classes_ = np.unique(y)
        # The engine orders its probability columns by its own sorted labels (object labels
        # compared as str); mapping classes_ through its encoder keeps predict_proba in
        # classes_ order without relying on the two sorts agreeing.
        self._proba_columns = result.classifier.encoder.transform(self.classes_)
        # Where in X the columns the model reads (all but ``ignore``) lie, in its order.
        position = {name: j for j, name in enumerate(names)}
        self._positions = [position[column.name] for column in result.classifier.columns]
        self.is_categorical_ = np.array([column.kind == CATEGORICAL for _, column in inputs])
        self.result_ = result
        self.loss_curve_ = [metrics.train_loss for metrics in result.history]
        # One entry per epoch, NaN where an epoch had none (a diverged last epoch), so the
        # curve lines up with loss_curve_; empty when there is no validation split.
        self.validation_loss_curve_ = (
            [np.nan if m.val_loss is None else m.val_loss for m in result.history]
            if result.n_validation
            else []
        )
        self.n_iter_ = len(result.history)
        self.best_epoch_ = result.best_epoch
        self.stop_reason_ = result.stop_reason
        self.diagnostics_ = result.diagnostics
        if result.stop_reason == "diverged":
            # The other stop reasons are ordinary endings; this one leaves a poor model behind.
            warnings.warn(result.message, ConvergenceWarning, stacklevel=2)
        return self

    def predict_proba(self, X: ArrayLike) -> np.ndarray:
        """P(class | row) for rows X: (n_samples, n_classes), columns in ``classes_`` order."""
        check_is_fitted(self)
        columns, _ = self._checked_columns(X, reset=False)
        classifier = self.result_.classifier
        # (n_samples, n_in): the columns the model reads, coded as in training.
        rows = np.column_stack(
            [
                code_column(columns[j], column)
                for j, column in zip(self._positions, classifier.columns, strict=True)
            ]
        )
        return classifier.predict_proba(rows)[:, self._proba_columns]

    def predict(self, X: ArrayLike) -> np.ndarray:
        """The most probable label of each row of X, with the values and dtype of ``classes_``."""
        columns = self.predict_proba(X).argmax(axis=1)  # first, so it raises NotFittedError
        return self.classes_[columns]

    def _checked_columns(
        self, X: ArrayLike, y: ArrayLike | None = None, *, reset: bool
    ) -> tuple[list[Any], np.ndarray | None]:
        """X's columns (each (n_samples,): a pandas Series or a NumPy array) and y as a 1-D
        array, checked as scikit-learn checks an estimator's input, with its messages.

        ``reset`` (fit) records ``n_features_in_`` and, for a frame with string column
        names, ``feature_names_in_``; otherwise X must match them.
        """
        # The engine needs at least two rows to fit; asking for them here raises sklearn's
        # standard "Found array with 1 sample(s)" message, which its checks (and users) expect.
        min_samples = 2 if reset else 1
        if is_dataframe(X):
            # Names and width only: converting the frame to one array would lose each
            # column's dtype (a category's levels, text next to numbers).
            validate_data(self, X, skip_check_array=True, reset=reset)
            for axis, (minimum, what) in enumerate([(min_samples, "sample"), (1, "feature")]):
                if X.shape[axis] < minimum:
                    raise ValueError(
                        f"Found array with {X.shape[axis]} {what}(s) (shape={X.shape}) while a "
                        f"minimum of {minimum} is required."
                    )
            if y is not None:
                y = check_array(y, ensure_2d=False, dtype=None, input_name="y")
                y = column_or_1d(y, warn=True)  # a column vector warns, as check_X_y does
                check_consistent_length(X, y)
            return [X.iloc[:, j] for j in range(X.shape[1])], y
        # dtype=None keeps text and object arrays as they are (they are coded per column);
        # "allow-nan" lets missing cells through and still rejects infinities.
        checks = {
            "dtype": None,
            "ensure_all_finite": "allow-nan",
            "ensure_min_samples": min_samples,
        }
        if y is None:
            X = validate_data(self, X, reset=reset, **checks)
        else:
            X, y = validate_data(self, X, y, reset=reset, **checks)
        return [X[:, j] for j in range(X.shape[1])], y

    def _input_names(self) -> list[str]:
        """X's column names: a frame's own, or the engine's x0, x1, ... for an array."""
        if hasattr(self, "feature_names_in_"):
            return [str(name) for name in self.feature_names_in_]
        return [f"x{j}" for j in range(self.n_features_in_)]


def _early_stopping(value: object) -> EarlyStopping | None:
    """The ``early_stopping`` parameter as the engine's ``EarlyStopping`` or None (off)."""
    if value is None or value is False:
        return None
    if value is True:
        return EarlyStopping()
    if isinstance(value, EarlyStopping):  # engine users may pass the dataclass itself
        return value
    if isinstance(value, dict):
        unknown = sorted(set(value) - set(_EARLY_STOPPING_FIELDS))
        if unknown:
            raise SpecError(
                f"early_stopping.{unknown[0]}",
                f"unknown field; allowed: {list(_EARLY_STOPPING_FIELDS)}",
            )
        return EarlyStopping(**{name: _plain(item) for name, item in value.items()})
    raise SpecError(
        "early_stopping",
        f"must be True, False, None or a dict of EarlyStopping fields, got {value!r}",
    )


def _plain(value: object) -> object:
    """A NumPy scalar as the Python value the engine's spec checks expect.

    Search utilities hand out NumPy scalars (``GridSearchCV`` over ``np.arange``, scipy.stats
    distributions); the engine rejects ``np.int64(5)`` as "not an integer", so convert first.
    """
    return value.item() if isinstance(value, np.generic) else value


def _validated(model: ModelSpec, training: TrainingSpec) -> tuple[ModelSpec, TrainingSpec]:
    """The specs, validated. A SpecError names the estimator's parameter (``impute``), not
    the spec's path to it (``preprocessing.impute``)."""
    try:
        return model.validate(), training.validate()
    except SpecError as error:
        raise SpecError(_PARAMETER_OF_FIELD.get(error.field, error.field), error.message) from None


def _column_names(parameter: str, value: object, names: Sequence[str] | None) -> tuple[str, ...]:
    """``categorical_features`` or ``ignore`` as the spec's tuple of column names.

    None is no column; otherwise names (str) and positions (int) of X's columns. ``names``
    are X's; without them names are taken as given and position j is "x{j}".
    """
    if value is None:
        return ()
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise SpecError(
            parameter, f"must be None or a list of column names or positions, got {value!r}"
        )
    resolved = []
    for item in map(_plain, value):
        if isinstance(item, str):
            if names is not None and item not in names:
                raise SpecError(parameter, f"{item!r} is not a column of X")
            resolved.append(str(item))  # a NumPy array's np.str_ as the spec's str
        elif isinstance(item, int) and not isinstance(item, bool):
            if item < 0 or (names is not None and item >= len(names)):
                width = "" if names is None else f" (X has {len(names)} columns)"
                raise SpecError(parameter, f"{item} is not a column position{width}")
            resolved.append(f"x{item}" if names is None else names[item])
        else:
            raise SpecError(parameter, f"must list column names or positions, got {item!r}")
    return tuple(resolved)
