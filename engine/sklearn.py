"""scikit-learn estimators over the engine (the optional extra ``backprop-service[sklearn]``).

    from engine.sklearn import BackpropMLPClassifier
    BackpropMLPClassifier(hidden_units=16).fit(X_train, y_train).score(X_test, y_test)

Importing this module imports scikit-learn; ``import engine`` never imports
this module, so the engine itself runs without scikit-learn installed.

The constructor parameters are the fields of ``ModelSpec`` and ``TrainingSpec``
with the same names and the same defaults, read from the dataclasses below so
that they cannot drift apart. The one exception is ``early_stopping``: an
sklearn default must be a plain value, so the ``EarlyStopping()`` default is
spelled ``True`` (see the class docstrings).
"""

import warnings
from dataclasses import fields
from typing import Any, ClassVar, Self

import numpy as np
from numpy.typing import ArrayLike
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from engine.specs import EarlyStopping, ModelSpec, SpecError, TrainingSpec
from engine.training import fit

__all__ = ["BackpropLogisticRegression", "BackpropMLPClassifier"]

# The engine's defaults, the single source of every constructor default below.
_MODEL = ModelSpec()
_TRAINING = TrainingSpec()

# Spec fields an estimator parameter can set; ``type`` is fixed by the estimator class.
_MODEL_FIELDS = tuple(f.name for f in fields(ModelSpec) if f.name != "type")
_TRAINING_FIELDS = tuple(f.name for f in fields(TrainingSpec))
_EARLY_STOPPING_FIELDS = tuple(f.name for f in fields(EarlyStopping))


class _BackpropClassifier(ClassifierMixin, BaseEstimator):
    """What both estimators share: specs from parameters, fit, predict, fitted attributes."""

    _model_type: ClassVar[str]

    def to_specs(self) -> tuple[ModelSpec, TrainingSpec]:
        """The engine's ``(ModelSpec, TrainingSpec)`` these parameters describe.

        The specs are not validated here; ``fit`` validates them and raises
        ``ValueError`` (the engine's ``SpecError``) naming the bad field.
        """
        params = self.get_params(deep=False)
        model = {name: _plain(params[name]) for name in _MODEL_FIELDS if name in params}
        training = {
            name: _plain(params[name])
            for name in _TRAINING_FIELDS
            if name in params and name != "early_stopping"
        }
        training["early_stopping"] = _early_stopping(params["early_stopping"])
        return ModelSpec(type=self._model_type, **model), TrainingSpec(**training)

    def fit(self, X: ArrayLike, y: ArrayLike) -> Self:
        """Train on rows X (n_samples, n_features) with labels y (n_samples,)."""
        model_spec, training_spec = self.to_specs()
        # The engine needs at least two rows; asking for them here raises sklearn's standard
        # "Found array with 1 sample(s)" message, which its checks (and users) expect.
        X, y = validate_data(self, X, y, ensure_min_samples=2)
        check_classification_targets(y)
        result = fit(
            X,
            y,
            model_spec,
            training_spec,
            # Set by validate_data only when X is a dataframe with string column names.
            feature_names=getattr(self, "feature_names_in_", None),
        )
        self.classes_ = np.unique(y)
        # The engine orders its probability columns by its own sorted labels (object labels
        # compared as str); mapping classes_ through its encoder keeps predict_proba in
        # classes_ order without relying on the two sorts agreeing.
        self._proba_columns = result.classifier.encoder.transform(self.classes_)
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
        X = validate_data(self, X, reset=False)
        return self.result_.classifier.predict_proba(X)[:, self._proba_columns]

    def predict(self, X: ArrayLike) -> np.ndarray:
        """The most probable label of each row of X, with the values and dtype of ``classes_``."""
        columns = self.predict_proba(X).argmax(axis=1)  # first, so it raises NotFittedError
        return self.classes_[columns]


class BackpropLogisticRegression(_BackpropClassifier):
    """The seed note's logistic regression (softmax for more than two classes), by gradient descent.

    ``ModelSpec(type="logistic_regression")`` trained by ``engine.fit``. Features are
    standardized on the training split by the engine, so no scaler is needed.

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

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (n_features_in_,); only when fitted on a dataframe
        with string column names.
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


class BackpropMLPClassifier(_BackpropClassifier):
    """The seed note's two-layer network (one hidden layer), trained by backpropagation.

    ``ModelSpec(type="two_layer_network")`` trained by ``engine.fit``. Features are
    standardized on the training split by the engine, so no scaler is needed.

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

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (n_features_in_,); only when fitted on a dataframe
        with string column names.
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
