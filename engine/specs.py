"""What to train and how: frozen dataclasses with commented defaults.

The service's request schemas and the scikit-learn adapter carry these same
names and defaults. The defaults train a good model on standardized data with
no tuning: Adam, full batch, up to 500 epochs on every row (no hold-out) with
an L2 penalty of 1, as scikit-learn's LogisticRegression (C=1). They were chosen
by measurement (benchmarks/defaults_study.md): over nine real sets and 5 splits
each, a hold-out of 10-20% made early stopping a lottery (which few rows are held
out decided the epoch), and cost the model those rows; training on every row met
scikit-learn's own estimators. A validation split remains one field away.
"""

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from engine.activations import ACTIVATION_NAMES
from engine.initializers import INIT_NAMES

MODEL_TYPES = ("logistic_regression", "two_layer_network")
OPTIMIZER_NAMES = ("gd", "momentum", "adam", "lbfgs")
DTYPE_NAMES = ("float64", "float32")
IMPUTE_NAMES = ("mean", "median", "constant")

# The step size each optimizer gets when learning_rate is null, and a two-layer network's
# where it differs: with Adam's 0.01 a network overfits small tables in its 500 epochs
# (benchmarks/defaults_study.md, "The network's step"); a logistic regression at 0.005
# would stop short of its optimum (iris: -7 points).
DEFAULT_LEARNING_RATES = {"gd": 0.5, "momentum": 0.1, "adam": 0.01, "lbfgs": 1.0}
NETWORK_LEARNING_RATES = {**DEFAULT_LEARNING_RATES, "adam": 0.005}

# The model fields only the two-layer network has (a logistic regression ignores them).
HIDDEN_LAYER_FIELDS = ("hidden_units", "activation")


class SpecError(ValueError):
    """A spec field holds a value the engine cannot train with; ``field`` names it."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class Bounds:
    """The range a numeric spec field must lie in: each end closed, open, or absent.

    ``validate()`` checks the fields against these tables, and the service's JSON Schema
    states them (minimum, exclusiveMinimum, ...): one source for both.
    """

    low: float | None = None
    high: float | None = None
    low_open: bool = False  # > low rather than >= low
    high_open: bool = False  # < high rather than <= high
    integer: bool = False

    def check(self, name: str, value: object) -> None:
        """SpecError naming ``name`` unless ``value`` is a number (an integer if so) in range."""
        if self.integer:
            _integer(name, value, low=int(self.low or 0), high=_int_or_none(self.high))
        else:
            _number(name, value, self.low or 0.0, self.high, self.low_open, self.high_open)


def _int_or_none(value: float | None) -> int | None:
    return None if value is None else int(value)


MODEL_BOUNDS = {
    "hidden_units": Bounds(low=1, integer=True),
    "init_scale": Bounds(low=0.0, low_open=True),
}
STOPPING_BOUNDS = {
    "patience": Bounds(low=1, integer=True),
    "min_delta": Bounds(low=0.0),
}
PREPROCESSING_BOUNDS = {
    "max_categories": Bounds(low=1, integer=True),
    "min_frequency": Bounds(low=1, integer=True),
}
# learning_rate, batch_size and time_limit may also be null (the default); no bound applies then.
TRAINING_BOUNDS = {
    "learning_rate": Bounds(low=0.0, low_open=True),
    "epochs": Bounds(low=1, integer=True),
    "batch_size": Bounds(low=1, integer=True),
    "l2": Bounds(low=0.0),
    "validation_fraction": Bounds(low=0.0, high=0.5),
    "tolerance": Bounds(low=0.0),
    "seed": Bounds(low=0, high=2**63 - 1, integer=True),
    "time_limit": Bounds(low=0.0, low_open=True),
    "momentum": Bounds(low=0.0, high=1.0, high_open=True),
    "beta1": Bounds(low=0.0, high=1.0, high_open=True),
    "beta2": Bounds(low=0.0, high=1.0, high_open=True),
    "epsilon": Bounds(low=0.0, low_open=True),
}


@dataclass(frozen=True)
class ModelSpec:
    type: str = "logistic_regression"  # or "two_layer_network"
    hidden_units: int = 32  # n[1], two_layer_network only
    activation: str = "tanh"  # hidden g: sigmoid, tanh, relu, leaky_relu
    init: str = "xavier"  # zeros, random (the note's), xavier, he
    init_scale: float = 0.01  # std of "random" init, the note's small number

    def validate(self) -> "ModelSpec":
        _choice("type", self.type, MODEL_TYPES)
        _choice("activation", self.activation, ACTIVATION_NAMES)
        _choice("init", self.init, INIT_NAMES)
        for name, bounds in MODEL_BOUNDS.items():
            bounds.check(name, getattr(self, name))
        return self


@dataclass(frozen=True)
class EarlyStopping:
    patience: int = 100  # epochs without improvement of the monitored loss before stopping
    min_delta: float = 0.0  # an improvement smaller than this does not count
    # End with the best epoch's parameters. Off: the best of a small hold-out is noise
    # (benchmarks/defaults_study.md: the last epoch did better in every comparison).
    restore_best: bool = False

    def validate(self) -> "EarlyStopping":
        for name, bounds in STOPPING_BOUNDS.items():
            bounds.check(f"early_stopping.{name}", getattr(self, name))
        _boolean("early_stopping.restore_best", self.restore_best)
        return self


@dataclass(frozen=True)
class PreprocessingSpec:
    """How input columns become the network's features; statistics from the training split."""

    impute: str = "mean"  # a numeric column's missing cells: mean, median or constant
    fill_value: float = 0.0  # what impute="constant" fills in
    missing_indicator: bool = False  # add a 0/1 column "name=(missing)" per numeric column
    max_categories: int = 1000  # one-hot columns per categorical, most frequent levels first
    min_frequency: int = 1  # rarer levels (and those past max_categories) share "(infrequent)"
    standardize: bool = True  # numeric features to mean 0, standard deviation 1
    categorical: tuple[str, ...] = ()  # numeric columns to treat as categories (store ids)
    ignore: tuple[str, ...] = ()  # columns to leave out

    def validate(self) -> "PreprocessingSpec":
        _choice("preprocessing.impute", self.impute, IMPUTE_NAMES)
        fill = self.fill_value
        if isinstance(fill, bool) or not isinstance(fill, int | float) or not math.isfinite(fill):
            raise SpecError("preprocessing.fill_value", f"must be a finite number, got {fill!r}")
        _boolean("preprocessing.missing_indicator", self.missing_indicator)
        _boolean("preprocessing.standardize", self.standardize)
        for name, bounds in PREPROCESSING_BOUNDS.items():
            bounds.check(f"preprocessing.{name}", getattr(self, name))
        for name in ("categorical", "ignore"):
            names = getattr(self, name)
            if not isinstance(names, tuple) or not all(isinstance(n, str) for n in names):
                raise SpecError(f"preprocessing.{name}", "must be a list of column names")
        both = sorted(set(self.categorical) & set(self.ignore))
        if both:
            raise SpecError("preprocessing.categorical", f"{both} are also in ignore")
        return self

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "PreprocessingSpec":
        data = dict(_known(cls, data))
        for name in ("categorical", "ignore"):
            if isinstance(data.get(name), list):
                data[name] = tuple(data[name])
        return cls(**data)


@dataclass(frozen=True)
class TrainingSpec:
    optimizer: str = "adam"  # gd (the note's), momentum, adam, lbfgs
    learning_rate: float | None = None  # None: the optimizer's default for the model type
    epochs: int = 500  # passes over the training split (lbfgs: iterations)
    batch_size: int | None = None  # None: full batch, as in the note
    shuffle: bool = True  # reshuffle mini-batches every epoch
    l2: float = 1.0  # penalty l2/(2 m_train) Σ||W||², independent of batch size (C = 1/l2)
    # Stratified hold-out for val loss and early stopping; 0: train on every row, and early
    # stopping watches the training loss (see the module docstring for why it is the default).
    validation_fraction: float = 0.0
    early_stopping: EarlyStopping | None = field(default_factory=EarlyStopping)  # None: off
    tolerance: float = 1e-6  # stop as converged when the gradient norm falls below
    seed: int = 0  # seeds initialization, split and shuffling
    dtype: str = "float64"  # or float32, end to end
    time_limit: float | None = None  # seconds of training before stopping, None: no limit
    momentum: float = 0.9  # β of momentum
    beta1: float = 0.9  # Adam's first-moment decay
    beta2: float = 0.999  # Adam's second-moment decay
    epsilon: float = 1e-8  # Adam's denominator guard
    preprocessing: PreprocessingSpec = field(default_factory=PreprocessingSpec)

    def step_size(self, model_type: str) -> float:
        """The learning rate in force for ``model_type``: the given one or the default."""
        if self.learning_rate is None:
            network = model_type == "two_layer_network"
            return (NETWORK_LEARNING_RATES if network else DEFAULT_LEARNING_RATES)[self.optimizer]
        return self.learning_rate

    def validate(self) -> "TrainingSpec":
        _choice("optimizer", self.optimizer, OPTIMIZER_NAMES)
        _choice("dtype", self.dtype, DTYPE_NAMES)
        _boolean("shuffle", self.shuffle)
        for name, bounds in TRAINING_BOUNDS.items():
            value = getattr(self, name)
            if value is not None or name not in NULLABLE_TRAINING_FIELDS:
                bounds.check(name, value)
        if self.batch_size is not None and self.optimizer == "lbfgs":
            raise SpecError("batch_size", "lbfgs is a full-batch method: batch_size must be null")
        if self.early_stopping is not None:
            if not isinstance(self.early_stopping, EarlyStopping):
                raise SpecError("early_stopping", "must be an EarlyStopping or null")
            self.early_stopping.validate()
        if not isinstance(self.preprocessing, PreprocessingSpec):
            raise SpecError("preprocessing", "must be a PreprocessingSpec")
        self.preprocessing.validate()
        return self

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for name in ("categorical", "ignore"):  # JSON's lists
            data["preprocessing"][name] = list(data["preprocessing"][name])
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TrainingSpec":
        data = dict(data)
        stopping = data.get("early_stopping", EarlyStopping())
        if isinstance(stopping, dict):
            data["early_stopping"] = EarlyStopping(**stopping)
        if isinstance(data.get("preprocessing"), dict):
            data["preprocessing"] = PreprocessingSpec.from_dict(data["preprocessing"])
        return cls(**_known(cls, data))


NULLABLE_TRAINING_FIELDS = ("learning_rate", "batch_size", "time_limit")


def model_spec_from_dict(data: dict[str, Any]) -> ModelSpec:
    return ModelSpec(**_known(ModelSpec, data))


def _known(cls: type, data: dict[str, Any]) -> dict[str, Any]:
    names = {f.name for f in fields(cls)}
    unknown = set(data) - names
    if unknown:
        raise SpecError(sorted(unknown)[0], f"unknown field; allowed: {sorted(names)}")
    return data


def _choice(name: str, value: object, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise SpecError(name, f"{value!r} is not one of {list(allowed)}")


def _boolean(name: str, value: object) -> None:
    if not isinstance(value, bool):
        raise SpecError(name, f"must be true or false, got {value!r}")


def _integer(name: str, value: object, low: int, high: int | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise SpecError(name, f"must be an integer, got {value!r}")
    if value < low or (high is not None and value > high):
        bound = f">= {low}" if high is None else f"between {low} and {high}"
        raise SpecError(name, f"must be {bound}, got {value}")


def _number(
    name: str,
    value: object,
    low: float,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise SpecError(name, f"must be a finite number, got {value!r}")
    too_low = value <= low if low_open else value < low
    too_high = high is not None and (value >= high if high_open else value > high)
    if too_low or too_high:
        left = f"> {low}" if low_open else f">= {low}"
        right = "" if high is None else (f" and < {high}" if high_open else f" and <= {high}")
        raise SpecError(name, f"must be {left}{right}, got {value}")
