"""What to train: the model and training specs as requests take them and jobs show them.

Every allowed name and default comes from the engine (engine.specs): the schemas here
state them for the OpenAPI document and check a request's shape; the engine's own
``validate()`` checks the ranges and words the messages.
"""

from dataclasses import asdict, fields
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    TypeAdapter,
)

from engine import (
    ACTIVATION_NAMES,
    DEFAULT_LEARNING_RATES,
    DTYPE_NAMES,
    HIDDEN_LAYER_FIELDS,
    IMPUTE_NAMES,
    INIT_NAMES,
    MODEL_BOUNDS,
    MODEL_TYPES,
    NETWORK_LEARNING_RATES,
    OPTIMIZER_NAMES,
    PREPROCESSING_BOUNDS,
    STOPPING_BOUNDS,
    TRAINING_BOUNDS,
    EarlyStopping,
    ModelSpec,
    PreprocessingSpec,
    TrainingSpec,
)
from service.core.bounds import JsonInt, in_range
from service.core.errors import register_tagged_union

# Literal[("a", "b")] is Literal["a", "b"]: the enums in the OpenAPI schema are the engine's.
ModelType = Literal[MODEL_TYPES]  # type: ignore[valid-type]


ActivationName = Literal[ACTIVATION_NAMES]  # type: ignore[valid-type]


InitName = Literal[INIT_NAMES]  # type: ignore[valid-type]


OptimizerName = Literal[OPTIMIZER_NAMES]  # type: ignore[valid-type]


DtypeName = Literal[DTYPE_NAMES]  # type: ignore[valid-type]


ImputeName = Literal[IMPUTE_NAMES]  # type: ignore[valid-type]


# The engine's defaults, read once: the request schemas below never retype a number.
MODEL_DEFAULTS = ModelSpec()


TRAINING_DEFAULTS = TrainingSpec()


STOPPING_DEFAULTS = EarlyStopping()


PREPROCESSING_DEFAULTS = PreprocessingSpec()

# A column name as the dataset's schema holds it (datasets.name columns are 200 long too).
ColumnName = Annotated[str, Field(min_length=1, max_length=200)]


STRICT_INPUT = ConfigDict(extra="forbid", allow_inf_nan=False)


# The canonical request's specs with every field filled in, as a job stores them.
EXAMPLE_MODEL_SPEC: dict[str, Any] = asdict(
    ModelSpec(type="two_layer_network", hidden_units=16, activation="tanh", init="random")
)


EXAMPLE_TRAINING_SPEC: dict[str, Any] = TrainingSpec(
    optimizer="gd", learning_rate=0.5, epochs=200, early_stopping=EarlyStopping(patience=10)
).to_dict()


class _ModelSpecFields(BaseModel):
    """What every model has: its weight initialization."""

    model_config = STRICT_INPUT

    init: InitName = Field(
        MODEL_DEFAULTS.init,
        description="Weight initialization; `random` is the note's small Gaussian",
    )
    init_scale: Annotated[StrictFloat, in_range(MODEL_BOUNDS["init_scale"])] = Field(
        MODEL_DEFAULTS.init_scale, description="Standard deviation of `random` init"
    )

    def to_engine(self) -> ModelSpec:
        return ModelSpec(**self.model_dump())


class LogisticRegressionIn(_ModelSpecFields):
    """The note's logistic regression: no hidden layer, so no hidden_units or activation."""

    type: Literal["logistic_regression"] = Field(description="Which model to train")


class TwoLayerNetworkIn(_ModelSpecFields):
    """The note's two-layer network: a hidden layer of `hidden_units` units with `activation`."""

    type: Literal["two_layer_network"] = Field(description="Which model to train")
    hidden_units: Annotated[JsonInt, in_range(MODEL_BOUNDS["hidden_units"])] = Field(
        MODEL_DEFAULTS.hidden_units,
        description="n[1], units of the hidden layer; at most BACKPROP_MAX_HIDDEN_UNITS",
    )
    activation: ActivationName = Field(MODEL_DEFAULTS.activation, description="Hidden-layer g")


# What to train: a union discriminated by `type`, each member with only its own fields.
ModelSpecIn = Annotated[LogisticRegressionIn | TwoLayerNetworkIn, Field(discriminator="type")]


register_tagged_union("model", MODEL_TYPES)
MODEL_SPEC_IN: TypeAdapter[LogisticRegressionIn | TwoLayerNetworkIn] = TypeAdapter(ModelSpecIn)


def default_model() -> LogisticRegressionIn:
    """The model of a request that names none: a logistic regression with the defaults."""
    return LogisticRegressionIn(type="logistic_regression")


class EarlyStoppingIn(BaseModel):
    """Stop when the monitored loss (validation, else training) stops improving."""

    model_config = STRICT_INPUT

    patience: Annotated[JsonInt, in_range(STOPPING_BOUNDS["patience"])] = Field(
        STOPPING_DEFAULTS.patience, description="Epochs without improvement before stopping"
    )
    min_delta: Annotated[StrictFloat, in_range(STOPPING_BOUNDS["min_delta"])] = Field(
        STOPPING_DEFAULTS.min_delta, description="An improvement smaller than this does not count"
    )
    restore_best: StrictBool = Field(
        STOPPING_DEFAULTS.restore_best, description="End with the best epoch's parameters"
    )


class PreprocessingIn(BaseModel):
    """How input columns become features; every statistic comes from the training split."""

    model_config = STRICT_INPUT

    impute: ImputeName = Field(
        PREPROCESSING_DEFAULTS.impute,
        description="What fills a numeric column's missing cells: the training split's "
        "`mean` or `median`, or `constant` (`fill_value`)",
    )
    fill_value: StrictFloat = Field(
        PREPROCESSING_DEFAULTS.fill_value, description="The fill of `impute: constant`"
    )
    missing_indicator: StrictBool = Field(
        PREPROCESSING_DEFAULTS.missing_indicator,
        description="Add a 0/1 feature `name=(missing)` for each numeric column with missing "
        "cells in the training split",
    )
    max_categories: Annotated[JsonInt, in_range(PREPROCESSING_BOUNDS["max_categories"])] = Field(
        PREPROCESSING_DEFAULTS.max_categories,
        description="One-hot features per categorical column, most frequent levels first; "
        "the rest share one `(infrequent)` feature",
    )
    min_frequency: Annotated[JsonInt, in_range(PREPROCESSING_BOUNDS["min_frequency"])] = Field(
        PREPROCESSING_DEFAULTS.min_frequency,
        description="Levels seen in fewer training rows share the `(infrequent)` feature",
    )
    standardize: StrictBool = Field(
        PREPROCESSING_DEFAULTS.standardize,
        description="Scale numeric features to mean 0 and standard deviation 1",
    )
    categorical: list[ColumnName] = Field(
        default_factory=list,
        max_length=10_000,
        description="Numeric columns to treat as categories (an integer store id)",
    )
    ignore: list[ColumnName] = Field(
        default_factory=list, max_length=10_000, description="Columns to leave out"
    )


class TrainingSpecIn(BaseModel):
    """How to train: the engine's TrainingSpec, field for field, with its defaults."""

    model_config = ConfigDict(
        **STRICT_INPUT,
        json_schema_extra={
            # The engine's one cross-field rule: lbfgs is a full-batch method.
            "if": {"properties": {"optimizer": {"const": "lbfgs"}}, "required": ["optimizer"]},
            "then": {"properties": {"batch_size": {"type": "null"}}},
        },
    )

    optimizer: OptimizerName = Field(
        TRAINING_DEFAULTS.optimizer, description="`gd` is the note's gradient descent"
    )
    learning_rate: Annotated[StrictFloat, in_range(TRAINING_BOUNDS["learning_rate"])] | None = (
        Field(
            TRAINING_DEFAULTS.learning_rate,
            description="Step size (> 0); null: the optimizer's default "
            f"({', '.join(f'{name} {rate:g}' for name, rate in DEFAULT_LEARNING_RATES.items())}; "
            f"a two_layer_network's adam {NETWORK_LEARNING_RATES['adam']:g})",
        )
    )
    epochs: Annotated[JsonInt, in_range(TRAINING_BOUNDS["epochs"])] = Field(
        TRAINING_DEFAULTS.epochs,
        description="Passes over the training split (lbfgs: iterations); "
        "at most BACKPROP_MAX_EPOCHS",
    )
    batch_size: Annotated[JsonInt, in_range(TRAINING_BOUNDS["batch_size"])] | None = Field(
        TRAINING_DEFAULTS.batch_size,
        description="Rows per mini-batch; null: full batch, as in the note (lbfgs: must be null)",
    )
    shuffle: StrictBool = Field(
        TRAINING_DEFAULTS.shuffle, description="Reshuffle mini-batches every epoch"
    )
    l2: Annotated[StrictFloat, in_range(TRAINING_BOUNDS["l2"])] = Field(
        TRAINING_DEFAULTS.l2, description="L2 penalty λ (>= 0)"
    )
    validation_fraction: Annotated[
        StrictFloat, in_range(TRAINING_BOUNDS["validation_fraction"])
    ] = Field(
        TRAINING_DEFAULTS.validation_fraction,
        description="Stratified hold-out for validation loss and early stopping (0 to 0.5)",
    )
    early_stopping: EarlyStoppingIn | None = Field(
        default_factory=EarlyStoppingIn, description="null: train all epochs"
    )
    tolerance: Annotated[StrictFloat, in_range(TRAINING_BOUNDS["tolerance"])] = Field(
        TRAINING_DEFAULTS.tolerance,
        description="Stop as converged when the gradient norm falls below this",
    )
    seed: Annotated[JsonInt, in_range(TRAINING_BOUNDS["seed"])] = Field(
        TRAINING_DEFAULTS.seed, description="Seeds initialization, split and shuffling"
    )
    dtype: DtypeName = Field(TRAINING_DEFAULTS.dtype, description="Floating type, end to end")
    time_limit: Annotated[StrictFloat, in_range(TRAINING_BOUNDS["time_limit"])] | None = Field(
        TRAINING_DEFAULTS.time_limit, description="Seconds of training before stopping; null: none"
    )
    momentum: Annotated[StrictFloat, in_range(TRAINING_BOUNDS["momentum"])] = Field(
        TRAINING_DEFAULTS.momentum, description="β of momentum"
    )
    beta1: Annotated[StrictFloat, in_range(TRAINING_BOUNDS["beta1"])] = Field(
        TRAINING_DEFAULTS.beta1, description="Adam's first-moment decay"
    )
    beta2: Annotated[StrictFloat, in_range(TRAINING_BOUNDS["beta2"])] = Field(
        TRAINING_DEFAULTS.beta2, description="Adam's second-moment decay"
    )
    epsilon: Annotated[StrictFloat, in_range(TRAINING_BOUNDS["epsilon"])] = Field(
        TRAINING_DEFAULTS.epsilon, description="Adam's denominator guard"
    )
    preprocessing: PreprocessingIn = Field(
        default_factory=PreprocessingIn,
        description="Missing cells, categorical columns and scaling",
    )

    def to_engine(self) -> TrainingSpec:
        return TrainingSpec.from_dict(self.model_dump())


# Output: the stored specs, complete (defaults filled in), as the worker trains them.
# Stored specs of logistic regressions (before issue 10) hold hidden_units and activation
# too; the output models ignore fields they do not have, so those rows render as they should.
class LogisticRegressionPublic(BaseModel):
    """A logistic regression's spec: no hidden layer."""

    type: Literal["logistic_regression"]
    init: str
    init_scale: float | None


class TwoLayerNetworkPublic(BaseModel):
    """A two-layer network's spec."""

    type: Literal["two_layer_network"]
    hidden_units: int
    activation: str
    init: str
    init_scale: float | None


ModelSpecPublic = Annotated[
    LogisticRegressionPublic | TwoLayerNetworkPublic, Field(discriminator="type")
]


MODEL_SPEC_PUBLIC: TypeAdapter[LogisticRegressionPublic | TwoLayerNetworkPublic] = TypeAdapter(
    ModelSpecPublic
)


def public_model_spec(stored: dict[str, Any]) -> dict[str, Any]:
    """A stored model spec as clients see it: only its type's fields."""
    return MODEL_SPEC_PUBLIC.validate_python(stored).model_dump()


class EarlyStoppingPublic(BaseModel):
    patience: int
    min_delta: float | None
    restore_best: bool


class PreprocessingPublic(BaseModel):
    impute: str
    fill_value: float
    missing_indicator: bool
    max_categories: int
    min_frequency: int
    standardize: bool
    categorical: list[str]
    ignore: list[str]


def _preprocessing_defaults() -> "PreprocessingPublic":
    return PreprocessingPublic(**TrainingSpec().to_dict()["preprocessing"])


class TrainingSpecPublic(BaseModel):
    optimizer: str
    learning_rate: float | None = Field(description="null: the optimizer's default step size")
    epochs: int
    batch_size: int | None
    shuffle: bool
    l2: float | None
    validation_fraction: float | None
    early_stopping: EarlyStoppingPublic | None
    tolerance: float | None
    seed: int
    dtype: str
    time_limit: float | None
    momentum: float | None
    beta1: float | None
    beta2: float | None
    epsilon: float | None
    # Jobs stored before issue 12 have none: they trained with these defaults' numeric part.
    preprocessing: PreprocessingPublic = Field(default_factory=_preprocessing_defaults)


def _check_field_names() -> None:
    # A new engine field must appear here too: fail at import rather than drop it silently.
    engine_names = {f.name for f in fields(ModelSpec)}
    logistic_names = engine_names - set(HIDDEN_LAYER_FIELDS)
    for schema, spec, names in (
        (LogisticRegressionIn, ModelSpec, logistic_names),
        (TwoLayerNetworkIn, ModelSpec, engine_names),
        (LogisticRegressionPublic, ModelSpec, logistic_names),
        (TwoLayerNetworkPublic, ModelSpec, engine_names),
        (TrainingSpecIn, TrainingSpec, {f.name for f in fields(TrainingSpec)}),
        (EarlyStoppingIn, EarlyStopping, {f.name for f in fields(EarlyStopping)}),
        (TrainingSpecPublic, TrainingSpec, {f.name for f in fields(TrainingSpec)}),
        (EarlyStoppingPublic, EarlyStopping, {f.name for f in fields(EarlyStopping)}),
        (PreprocessingIn, PreprocessingSpec, {f.name for f in fields(PreprocessingSpec)}),
        (PreprocessingPublic, PreprocessingSpec, {f.name for f in fields(PreprocessingSpec)}),
    ):
        if set(schema.model_fields) != names:
            raise RuntimeError(f"{schema.__name__} fields differ from engine {spec.__name__}")
    members = {LogisticRegressionIn, TwoLayerNetworkIn}
    if {m.model_fields["type"].annotation.__args__[0] for m in members} != set(MODEL_TYPES):
        raise RuntimeError("the model spec union's members differ from engine MODEL_TYPES")


_check_field_names()
