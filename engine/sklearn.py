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

from collections.abc import Sequence
from typing import Any

from engine.sklearn_base import _MODEL, _PREPROCESSING, _TRAINING, _BackpropClassifier

__all__ = ["BackpropLogisticRegression", "BackpropMLPClassifier"]


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
        ``True``: early stopping with the ``EarlyStopping()`` defaults (patience 100, the
        last epoch's parameters kept). ``False`` or ``None``: off, train for ``epochs``. A dict such
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
        optimizer's default for a network, ``NETWORK_LEARNING_RATES``: Adam's is 0.005;
        ``batch_size=None`` is full batch; ``time_limit=None`` is none).
    early_stopping : bool, dict or None, default=True
        ``True``: early stopping with the ``EarlyStopping()`` defaults (patience 100, the
        last epoch's parameters kept). ``False`` or ``None``: off, train for ``epochs``. A dict such
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
