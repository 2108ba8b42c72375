"""scikit-learn estimators over the engine (the optional extra ``backprop-service[sklearn]``).

    from engine.sklearn import BackpropMLPClassifier
    BackpropMLPClassifier(hidden_units=16).fit(X_train, y_train).score(X_test, y_test)

X is a pandas DataFrame or a 2-D array and may hold what real tables hold: missing cells
(NaN, None, pd.NA) and columns of categories. Each column of the training X is typed once:

* numbers are **numeric**: a missing cell is filled as ``impute`` says;
* anything else is **categorical**, one-hot encoded by the engine: text, booleans, pandas
  ``category`` (its levels are the dtype's categories), other objects. The levels are
  those of the training X; at prediction a level it did not hold is all zeros.
  ``categorical_features`` makes numeric columns categorical too (store ids);
* an ``object`` column whose cells are all numbers is numeric, as scikit-learn reads an
  object array "as numeric if possible".

A frame given to ``predict`` must have the training frame's columns in the same order:
scikit-learn's rule (``check_estimator`` asserts it), with its messages naming the columns
that are missing, unexpected or out of order; ``X[estimator.feature_names_in_]`` reorders.

Importing this module imports scikit-learn; ``import engine`` never imports this module,
so the engine itself runs without scikit-learn installed. pandas is never imported here:
X is taken for a frame when pandas is loaded and X is one of its DataFrames.

The constructor parameters are the fields of ``ModelSpec``, ``TrainingSpec`` and its
``PreprocessingSpec`` (flat, as scikit-learn estimators take them: ``impute="median"``),
with the same names and the same defaults, read from the dataclasses below so that they
cannot drift apart. The exceptions, because an sklearn default must be a plain value or
because scikit-learn already has a name for it:

* ``early_stopping``: the ``EarlyStopping()`` default is spelled ``True``;
* ``categorical_features`` (HistGradientBoostingClassifier's name) is
  ``PreprocessingSpec.categorical``; it and ``ignore`` take column names or positions and
  default to ``None`` (no column) rather than ``()``.
"""

import math
import sys
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

from engine.columns import CATEGORICAL, NUMERIC, UNSEEN_CODE, InputColumn, level_key
from engine.specs import EarlyStopping, ModelSpec, PreprocessingSpec, SpecError, TrainingSpec
from engine.training import fit

__all__ = ["BackpropLogisticRegression", "BackpropMLPClassifier"]

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
            _learn_column(name, values, categorical=name in categorical)
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
                _code_column(columns[j], column)
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
        if _is_dataframe(X):
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


class BackpropLogisticRegression(_BackpropClassifier):
    """The seed note's logistic regression (softmax for more than two classes), by gradient descent.

    ``ModelSpec(type="logistic_regression")`` trained by ``engine.fit``. Features are
    standardized on the training split by the engine, so no scaler is needed;
    categorical columns are one-hot encoded and missing cells imputed by it too (see the
    module docstring).

    Parameters
    ----------
    init, init_scale :
        ``ModelSpec`` fields: weight initialization ("zeros", "random", "xavier", "he") and the
        standard deviation of "random".
    optimizer, learning_rate, epochs, batch_size, shuffle, l2, validation_fraction, tolerance, \
seed, dtype, time_limit, momentum, beta1, beta2, epsilon :
        ``TrainingSpec`` fields, with its defaults and meanings (``learning_rate=None`` takes the
        optimizer's default; ``batch_size=None`` is full batch; ``time_limit=None`` is none).
    early_stopping : bool, dict or None, default=True
        ``True``: early stopping with the ``EarlyStopping()`` defaults (which restore the
        best epoch's parameters). ``False`` or ``None``: off, train for ``epochs``. A dict such
        as ``{"patience": 5, "min_delta": 0.0}`` sets those ``EarlyStopping`` fields and keeps
        the defaults of the others. The monitored loss is the validation loss, or the training
        loss when ``validation_fraction=0``.
    impute, fill_value, missing_indicator, max_categories, min_frequency, standardize :
        ``PreprocessingSpec`` fields, statistics from the training split: a numeric column's
        missing cells get its ``"mean"``, ``"median"`` or ``fill_value`` (``"constant"``),
        and with ``missing_indicator`` a 0/1 feature of their own; a categorical column keeps
        at most ``max_categories`` levels, each seen ``min_frequency`` times (the rest share
        an "(infrequent)" feature); ``standardize=False`` leaves numbers unscaled.
    categorical_features : list of str or int, or None, default=None
        ``PreprocessingSpec.categorical``: columns of numbers to treat as categories (store
        ids), by name or position. Columns that do not hold numbers are categorical anyway.
    ignore : list of str or int, or None, default=None
        ``PreprocessingSpec.ignore``: columns to leave out, by name or position; ``predict``
        still takes X with every column.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (n_features_in_,); only when fitted on a dataframe
        with string column names.
    is_categorical_ : ndarray of bool, shape (n_features_in_,)
        Which columns of X were categorical (one-hot encoded).
    loss_curve_ : list of float
        Training loss J (with the L2 penalty) of each epoch; ``len(loss_curve_) == n_iter_``.
    validation_loss_curve_ : list of float
        Validation loss of each epoch (NaN for a diverged epoch); empty without a validation
        split.
    n_iter_ : int
        Epochs run (L-BFGS: iterations).
    best_epoch_ : int or None
        The 1-based epoch with the lowest monitored loss.
    stop_reason_ : str
        One of ``engine.STOP_REASONS``; ``result_.message`` says more.
    diagnostics_ : engine.Diagnostics
    result_ : engine.FitResult
        The engine's whole result; ``result_.classifier`` can be saved with ``engine.save``.
    """

    _model_type = "logistic_regression"

    def __init__(
        self,
        *,
        init: str = _MODEL.init,
        init_scale: float = _MODEL.init_scale,
        optimizer: str = _TRAINING.optimizer,
        learning_rate: float | None = _TRAINING.learning_rate,
        epochs: int = _TRAINING.epochs,
        batch_size: int | None = _TRAINING.batch_size,
        shuffle: bool = _TRAINING.shuffle,
        l2: float = _TRAINING.l2,
        validation_fraction: float = _TRAINING.validation_fraction,
        early_stopping: bool | dict[str, Any] | None = True,
        tolerance: float = _TRAINING.tolerance,
        seed: int = _TRAINING.seed,
        dtype: str = _TRAINING.dtype,
        time_limit: float | None = _TRAINING.time_limit,
        momentum: float = _TRAINING.momentum,
        beta1: float = _TRAINING.beta1,
        beta2: float = _TRAINING.beta2,
        epsilon: float = _TRAINING.epsilon,
        impute: str = _PREPROCESSING.impute,
        fill_value: float = _PREPROCESSING.fill_value,
        missing_indicator: bool = _PREPROCESSING.missing_indicator,
        max_categories: int = _PREPROCESSING.max_categories,
        min_frequency: int = _PREPROCESSING.min_frequency,
        standardize: bool = _PREPROCESSING.standardize,
        categorical_features: Sequence[str | int] | None = None,
        ignore: Sequence[str | int] | None = None,
    ):
        self.init = init
        self.init_scale = init_scale
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.epochs = epochs
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.l2 = l2
        self.validation_fraction = validation_fraction
        self.early_stopping = early_stopping
        self.tolerance = tolerance
        self.seed = seed
        self.dtype = dtype
        self.time_limit = time_limit
        self.momentum = momentum
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        self.impute = impute
        self.fill_value = fill_value
        self.missing_indicator = missing_indicator
        self.max_categories = max_categories
        self.min_frequency = min_frequency
        self.standardize = standardize
        self.categorical_features = categorical_features
        self.ignore = ignore


class BackpropMLPClassifier(_BackpropClassifier):
    """The seed note's two-layer network (one hidden layer), trained by backpropagation.

    ``ModelSpec(type="two_layer_network")`` trained by ``engine.fit``. Features are
    standardized on the training split by the engine, so no scaler is needed;
    categorical columns are one-hot encoded and missing cells imputed by it too (see the
    module docstring).

    Parameters
    ----------
    hidden_units, activation, init, init_scale :
        ``ModelSpec`` fields: the hidden layer's width n[1] and activation g ("sigmoid",
        "tanh", "relu", "leaky_relu"), weight initialization ("zeros", "random", "xavier",
        "he") and the standard deviation of "random".
    optimizer, learning_rate, epochs, batch_size, shuffle, l2, validation_fraction, tolerance, \
seed, dtype, time_limit, momentum, beta1, beta2, epsilon :
        ``TrainingSpec`` fields, with its defaults and meanings (``learning_rate=None`` takes the
        optimizer's default; ``batch_size=None`` is full batch; ``time_limit=None`` is none).
    early_stopping : bool, dict or None, default=True
        ``True``: early stopping with the ``EarlyStopping()`` defaults (which restore the
        best epoch's parameters). ``False`` or ``None``: off, train for ``epochs``. A dict such
        as ``{"patience": 5, "min_delta": 0.0}`` sets those ``EarlyStopping`` fields and keeps
        the defaults of the others. The monitored loss is the validation loss, or the training
        loss when ``validation_fraction=0``.
    impute, fill_value, missing_indicator, max_categories, min_frequency, standardize :
        ``PreprocessingSpec`` fields, statistics from the training split: a numeric column's
        missing cells get its ``"mean"``, ``"median"`` or ``fill_value`` (``"constant"``),
        and with ``missing_indicator`` a 0/1 feature of their own; a categorical column keeps
        at most ``max_categories`` levels, each seen ``min_frequency`` times (the rest share
        an "(infrequent)" feature); ``standardize=False`` leaves numbers unscaled.
    categorical_features : list of str or int, or None, default=None
        ``PreprocessingSpec.categorical``: columns of numbers to treat as categories (store
        ids), by name or position. Columns that do not hold numbers are categorical anyway.
    ignore : list of str or int, or None, default=None
        ``PreprocessingSpec.ignore``: columns to leave out, by name or position; ``predict``
        still takes X with every column.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (n_features_in_,); only when fitted on a dataframe
        with string column names.
    is_categorical_ : ndarray of bool, shape (n_features_in_,)
        Which columns of X were categorical (one-hot encoded).
    loss_curve_ : list of float
        Training loss J (with the L2 penalty) of each epoch; ``len(loss_curve_) == n_iter_``.
    validation_loss_curve_ : list of float
        Validation loss of each epoch (NaN for a diverged epoch); empty without a validation
        split.
    n_iter_ : int
        Epochs run (L-BFGS: iterations).
    best_epoch_ : int or None
        The 1-based epoch with the lowest monitored loss.
    stop_reason_ : str
        One of ``engine.STOP_REASONS``; ``result_.message`` says more.
    diagnostics_ : engine.Diagnostics
        Gradient norms per layer, identical hidden units, dead ReLU units.
    result_ : engine.FitResult
        The engine's whole result; ``result_.classifier`` can be saved with ``engine.save``.
    """

    _model_type = "two_layer_network"

    def __init__(
        self,
        *,
        hidden_units: int = _MODEL.hidden_units,
        activation: str = _MODEL.activation,
        init: str = _MODEL.init,
        init_scale: float = _MODEL.init_scale,
        optimizer: str = _TRAINING.optimizer,
        learning_rate: float | None = _TRAINING.learning_rate,
        epochs: int = _TRAINING.epochs,
        batch_size: int | None = _TRAINING.batch_size,
        shuffle: bool = _TRAINING.shuffle,
        l2: float = _TRAINING.l2,
        validation_fraction: float = _TRAINING.validation_fraction,
        early_stopping: bool | dict[str, Any] | None = True,
        tolerance: float = _TRAINING.tolerance,
        seed: int = _TRAINING.seed,
        dtype: str = _TRAINING.dtype,
        time_limit: float | None = _TRAINING.time_limit,
        momentum: float = _TRAINING.momentum,
        beta1: float = _TRAINING.beta1,
        beta2: float = _TRAINING.beta2,
        epsilon: float = _TRAINING.epsilon,
        impute: str = _PREPROCESSING.impute,
        fill_value: float = _PREPROCESSING.fill_value,
        missing_indicator: bool = _PREPROCESSING.missing_indicator,
        max_categories: int = _PREPROCESSING.max_categories,
        min_frequency: int = _PREPROCESSING.min_frequency,
        standardize: bool = _PREPROCESSING.standardize,
        categorical_features: Sequence[str | int] | None = None,
        ignore: Sequence[str | int] | None = None,
    ):
        self.hidden_units = hidden_units
        self.activation = activation
        self.init = init
        self.init_scale = init_scale
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.epochs = epochs
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.l2 = l2
        self.validation_fraction = validation_fraction
        self.early_stopping = early_stopping
        self.tolerance = tolerance
        self.seed = seed
        self.dtype = dtype
        self.time_limit = time_limit
        self.momentum = momentum
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        self.impute = impute
        self.fill_value = fill_value
        self.missing_indicator = missing_indicator
        self.max_categories = max_categories
        self.min_frequency = min_frequency
        self.standardize = standardize
        self.categorical_features = categorical_features
        self.ignore = ignore


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


# -- X's columns as the engine's coded table (engine.columns) ------------------------------------
# A column arrives as a pandas Series (from a frame) or a NumPy array (a column of an array),
# and leaves as (n_samples,) float64: numbers with NaN, or level codes with NaN (missing) and
# UNSEEN_CODE (a level the training data did not hold).


def _learn_column(name: str, values: Any, *, categorical: bool) -> tuple[np.ndarray, InputColumn]:
    """(codes (n_samples,), its InputColumn) of one training column: typed as the module
    docstring says, the levels those the column holds."""
    kind = values.dtype.kind
    if kind == "c":
        raise ValueError(f"Complex data not supported (column {name!r})")
    if _is_category(values):
        levels = _distinct(level_key(level) for level in values.cat.categories.tolist())
        column = InputColumn(name, CATEGORICAL, levels)
        return _category_codes(values, column), column
    if kind in "iuf" and not categorical:
        return _numbers(values, name), InputColumn(name)
    cells = _cells(values)
    if values.dtype == np.dtype(object) and not categorical and _all_numbers(cells):
        return _numbers(values, name), InputColumn(name)
    keys = [level_key(cell) for cell in cells]
    column = InputColumn(name, CATEGORICAL, tuple(sorted({k for k in keys if k is not None})))
    return _key_codes(keys, column), column


def _code_column(values: Any, column: InputColumn) -> np.ndarray:
    """(n_samples,) codes of a column of X for the training ``column`` it stands in for."""
    if column.kind == NUMERIC:
        return _numbers(values, column.name)
    if _is_category(values):
        return _category_codes(values, column)
    return _key_codes([level_key(cell) for cell in _cells(values)], column)


def _numbers(values: Any, name: str) -> np.ndarray:
    """(n_samples,) float64 of a numeric column, NaN where a cell is missing."""
    if values.dtype.kind in "iufb" and not _is_category(values):
        if hasattr(values, "to_numpy"):  # a Series: nullable dtypes have pd.NA for missing
            return values.to_numpy(dtype=np.float64, na_value=np.nan)
        return np.asarray(values, dtype=np.float64)
    numbers = np.full(len(values), np.nan)
    for i, cell in enumerate(_cells(values)):
        if cell is None:
            continue
        if not _is_number(cell):
            raise ValueError(f"column {name!r} held numbers in fit, but a cell holds {cell!r}")
        numbers[i] = cell
    return numbers


def _category_codes(values: Any, column: InputColumn) -> np.ndarray:
    """(n_samples,) codes of a pandas ``category`` column: its categories are looked up by
    level name once, so its own codes need not be the training frame's."""
    index = _level_index(column)
    lookup = [_code(level_key(level), index) for level in values.cat.categories.tolist()]
    lookup.append(math.nan)  # the category code -1 is a missing cell
    return np.array(lookup, dtype=np.float64)[values.cat.codes.to_numpy()]


def _key_codes(keys: list[str | None], column: InputColumn) -> np.ndarray:
    """(n_samples,) codes of level names (None: a missing cell)."""
    index = _level_index(column)
    return np.fromiter((_code(key, index) for key in keys), dtype=np.float64, count=len(keys))


def _level_index(column: InputColumn) -> dict[str, int]:
    return {level: code for code, level in enumerate(column.levels or ())}


def _code(key: str | None, index: dict[str, int]) -> float:
    return math.nan if key is None else float(index.get(key, UNSEEN_CODE))


def _cells(values: Any) -> list[object]:
    """The column's cells as Python objects, None where one is missing (NaN, None, pd.NA)."""
    if hasattr(values, "to_numpy"):  # a Series
        return values.to_numpy(dtype=object, na_value=None).tolist()
    cells = np.asarray(values, dtype=object)
    pandas = sys.modules.get("pandas")
    if pandas is not None:  # an array from a frame's to_numpy() may hold pd.NA
        cells = np.where(pandas.isna(cells), None, cells)
    return [None if _is_nan(cell) else cell for cell in cells.tolist()]


def _all_numbers(cells: list[object]) -> bool:
    """Whether the cells hold numbers and nothing else but missing cells (None)."""
    present = [cell for cell in cells if cell is not None]
    return bool(present) and all(_is_number(cell) for cell in present)


def _is_number(cell: object) -> bool:
    """A real number; not a boolean, which is a category ("true", "false")."""
    return isinstance(cell, int | float | np.integer | np.floating) and not isinstance(
        cell, bool | np.bool_
    )


def _is_nan(cell: object) -> bool:
    return isinstance(cell, float | np.floating) and math.isnan(cell)


def _is_category(values: Any) -> bool:
    """Whether ``values`` is a pandas Series of ``category`` dtype."""
    return getattr(values.dtype, "name", None) == "category" and hasattr(values, "cat")


def _is_dataframe(X: object) -> bool:
    """Whether X is a pandas DataFrame; pandas is not imported unless the caller did."""
    pandas = sys.modules.get("pandas")
    return pandas is not None and isinstance(X, pandas.DataFrame)


def _distinct(keys: Iterable[str | None]) -> tuple[str, ...]:
    """The level names, each once, in order; None (a missing category) left out."""
    return tuple(dict.fromkeys(key for key in keys if key is not None))
