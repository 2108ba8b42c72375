"""Jobs: what to train (JobCreate), a job as clients see it (JobPublic), its loss history.

The allowed names (model types, activations, initializations, optimizers,
dtypes) and every default come from the engine's own tables and dataclasses,
so the API cannot drift from what the engine trains. Input models reject
unknown fields; the engine's ``validate()`` then checks ranges (see
service.jobs.service.engine_specs), so a bound lives in one place.
"""

from dataclasses import asdict, fields
from datetime import datetime
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
    INIT_NAMES,
    MODEL_BOUNDS,
    MODEL_TYPES,
    OPTIMIZER_NAMES,
    STOPPING_BOUNDS,
    TRAINING_BOUNDS,
    EarlyStopping,
    ModelSpec,
    TrainingSpec,
)
from service.core.bounds import ID_PATTERN, JsonInt, documented, in_range
from service.core.errors import register_tagged_union
from service.core.states import JOB_STATES

# Literal[("a", "b")] is Literal["a", "b"]: the enums in the OpenAPI schema are the engine's.
ModelType = Literal[MODEL_TYPES]  # type: ignore[valid-type]
ActivationName = Literal[ACTIVATION_NAMES]  # type: ignore[valid-type]
InitName = Literal[INIT_NAMES]  # type: ignore[valid-type]
OptimizerName = Literal[OPTIMIZER_NAMES]  # type: ignore[valid-type]
DtypeName = Literal[DTYPE_NAMES]  # type: ignore[valid-type]
JobStatus = Literal[JOB_STATES]  # type: ignore[valid-type]

# The engine's defaults, read once: the request schemas below never retype a number.
MODEL_DEFAULTS = ModelSpec()
TRAINING_DEFAULTS = TrainingSpec()
STOPPING_DEFAULTS = EarlyStopping()

STRICT_INPUT = ConfigDict(extra="forbid", allow_inf_nan=False)

EXAMPLE_DATASET_ID = "3f2a9c1e8b7d4e6fa0c5d2b1e9f8a7c6"
EXAMPLE_JOB_ID = "9b1d4e2f7a6c4d8e8f0a1b2c3d4e5f60"
EXAMPLE_MODEL_ID = "c0ffee1234abcd5678ef90123456789a"

# The canonical request's specs with every field filled in, as a job stores them.
EXAMPLE_MODEL_SPEC: dict[str, Any] = asdict(
    ModelSpec(type="two_layer_network", hidden_units=16, activation="tanh", init="random")
)
EXAMPLE_TRAINING_SPEC: dict[str, Any] = TrainingSpec(
    optimizer="gd", learning_rate=0.5, epochs=200, early_stopping=EarlyStopping(patience=10)
).to_dict()

# The request of issue 3, as written there.
CANONICAL_REQUEST: dict[str, Any] = {
    "dataset_id": EXAMPLE_DATASET_ID,
    "model": {
        "type": "two_layer_network",
        "hidden_units": 16,
        "activation": "tanh",
        "init": "random",
        "init_scale": 0.01,
    },
    "training": {
        "optimizer": "gd",
        "learning_rate": 0.5,
        "epochs": 200,
        "batch_size": None,
        "l2": 0.0,
        "validation_fraction": 0.2,
        "early_stopping": {"patience": 10, "min_delta": 0.0},
        "seed": 0,
        "dtype": "float64",
    },
}


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
            f"({', '.join(f'{name} {rate:g}' for name, rate in DEFAULT_LEARNING_RATES.items())})",
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

    def to_engine(self) -> TrainingSpec:
        return TrainingSpec.from_dict(self.model_dump())


class JobCreate(BaseModel):
    """A training job: a dataset, a model spec and a training spec (both optional)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [CANONICAL_REQUEST, {"dataset_id": EXAMPLE_DATASET_ID}]},
    )

    dataset_id: Annotated[str, documented(pattern=ID_PATTERN)] = Field(
        description="The dataset to train on (from POST /v1/datasets)"
    )
    model: ModelSpecIn = Field(
        default_factory=default_model,
        description="What to train (by `type`); none: a logistic regression with the defaults",
    )
    training: TrainingSpecIn = Field(default_factory=TrainingSpecIn)


# Bodies for the OpenAPI page's "try it out" menu.
CREATE_EXAMPLES: dict[str, dict[str, Any]] = {
    "canonical": {
        "summary": "The note's network, trained by plain gradient descent",
        "value": CANONICAL_REQUEST,
    },
    "minimal": {
        "summary": "Only a dataset: a logistic regression with the engine's defaults",
        "value": {"dataset_id": EXAMPLE_DATASET_ID},
    },
    "adam_minibatch": {
        "summary": "A ReLU network with Adam on mini-batches, no early stopping",
        "value": {
            "dataset_id": EXAMPLE_DATASET_ID,
            "model": {"type": "two_layer_network", "hidden_units": 64, "activation": "relu"},
            "training": {
                "optimizer": "adam",
                "epochs": 100,
                "batch_size": 64,
                "early_stopping": None,
                "l2": 0.001,
                "seed": 7,
            },
        },
    },
}


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


class Progress(BaseModel):
    epoch: int = Field(description="Epochs finished so far")
    epochs: int = Field(description="Epochs asked for (training may stop earlier)")
    percent: float = Field(description="epoch / epochs in percent; 100 once succeeded")
    train_loss: float | None = Field(description="Latest training loss; null if diverged")
    val_loss: float | None = Field(description="Latest validation loss; null without one")
    best_epoch: int | None = Field(description="Epoch of the lowest monitored loss so far")
    elapsed_seconds: float = Field(description="Training time so far")
    remaining_seconds: float | None = Field(
        description="Estimated from the time per epoch so far; 0 once finished, "
        "null while unknown (queued, or no epoch yet)"
    )


class JobLinks(BaseModel):
    self: str
    history: str
    events: str
    cancel: str
    model: str | None = Field(description="The fitted model, once the job succeeded")


JOB_EXAMPLE: dict[str, Any] = {
    "id": EXAMPLE_JOB_ID,
    "status": "running",
    "dataset_id": EXAMPLE_DATASET_ID,
    "model": EXAMPLE_MODEL_SPEC,
    "training": EXAMPLE_TRAINING_SPEC,
    "progress": {
        "epoch": 120,
        "epochs": 200,
        "percent": 60.0,
        "train_loss": 0.0731,
        "val_loss": 0.0912,
        "best_epoch": 118,
        "elapsed_seconds": 2.4,
        "remaining_seconds": 1.6,
    },
    "stop_reason": None,
    "error": None,
    "error_code": None,
    "attempts": 1,
    "max_attempts": 3,
    "model_id": None,
    "created_at": "2025-05-01T09:30:00.120000Z",
    "started_at": "2025-05-01T09:30:00.310000Z",
    "finished_at": None,
    "heartbeat_at": "2025-05-01T09:30:02.500000Z",
    "sweep_id": None,
    "trial": None,
    "links": {
        "self": f"/v1/jobs/{EXAMPLE_JOB_ID}",
        "history": f"/v1/jobs/{EXAMPLE_JOB_ID}/history",
        "events": f"/v1/jobs/{EXAMPLE_JOB_ID}/events",
        "cancel": f"/v1/jobs/{EXAMPLE_JOB_ID}/cancel",
        "model": None,
    },
}

QUEUED_JOB_EXAMPLE: dict[str, Any] = {
    **JOB_EXAMPLE,
    "status": "queued",
    "progress": {
        "epoch": 0,
        "epochs": 200,
        "percent": 0.0,
        "train_loss": None,
        "val_loss": None,
        "best_epoch": None,
        "elapsed_seconds": 0.0,
        "remaining_seconds": None,
    },
    "attempts": 0,
    "started_at": None,
    "heartbeat_at": None,
}

SUCCEEDED_JOB_EXAMPLE: dict[str, Any] = {
    **JOB_EXAMPLE,
    "status": "succeeded",
    "progress": {
        "epoch": 163,
        "epochs": 200,
        "percent": 100.0,
        "train_loss": 0.0604,
        "val_loss": 0.0871,
        "best_epoch": 153,
        "elapsed_seconds": 3.3,
        "remaining_seconds": 0.0,
    },
    "stop_reason": "early_stopped",
    "model_id": EXAMPLE_MODEL_ID,
    "finished_at": "2025-05-01T09:30:03.650000Z",
    "links": {**JOB_EXAMPLE["links"], "model": f"/v1/models/{EXAMPLE_MODEL_ID}"},
}


class JobPublic(BaseModel):
    """A job as clients see it: its specs, state, progress and links."""

    model_config = ConfigDict(json_schema_extra={"examples": [JOB_EXAMPLE]})

    id: str
    status: JobStatus
    dataset_id: str | None = Field(description="null once the dataset was deleted")
    model: ModelSpecPublic
    training: TrainingSpecPublic
    progress: Progress
    stop_reason: str | None = Field(
        description="Why training ended: converged, early_stopped, max_epochs, time_limit, "
        "cancelled, diverged"
    )
    error: str | None = Field(description="What went wrong, for people (failed jobs)")
    error_code: str | None = Field(description="What went wrong, for programs, e.g. worker_lost")
    attempts: int = Field(description="Claims by workers so far")
    max_attempts: int
    model_id: str | None = Field(description="The fitted model, once the job succeeded")
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    heartbeat_at: datetime | None = Field(description="The running worker's latest heartbeat")
    sweep_id: str | None = Field(description="The sweep this job is a trial of; null: none")
    trial: dict[str, Any] | None = Field(
        description="A sweep's trial: the values it set, by dimension, e.g. "
        '`{"learning_rate": 0.1, "activation": "relu"}`; null outside sweeps'
    )
    links: JobLinks


class JobsPublic(BaseModel):
    """A page of jobs, newest first."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"data": [JOB_EXAMPLE], "next_cursor": "WyIyMDI1LTA1LTAxVDA5OjMw"}]
        }
    )

    data: list[JobPublic]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null: last")


class HistoryPoint(BaseModel):
    """One epoch of training, as the engine measured it (null: not finite, or no validation)."""

    epoch: int
    train_loss: float | None
    val_loss: float | None
    train_accuracy: float | None
    val_accuracy: float | None
    grad_norm: float | None
    seconds: float | None = Field(description="Wall time of this epoch")


HISTORY_FIELDS = tuple(HistoryPoint.model_fields)

HISTORY_EXAMPLE: dict[str, Any] = {
    "job_id": EXAMPLE_JOB_ID,
    "points": [
        {
            "epoch": 1,
            "train_loss": 0.6931,
            "val_loss": 0.6929,
            "train_accuracy": 0.627,
            "val_accuracy": 0.628,
            "grad_norm": 0.2143,
            "seconds": 0.021,
        },
        {
            "epoch": 2,
            "train_loss": 0.6874,
            "val_loss": 0.6870,
            "train_accuracy": 0.901,
            "val_accuracy": 0.894,
            "grad_norm": 0.2101,
            "seconds": 0.019,
        },
    ],
    "next_since_epoch": 2,
}

HISTORY_CSV_EXAMPLE = (
    "epoch,train_loss,val_loss,train_accuracy,val_accuracy,grad_norm,seconds\r\n"
    "1,0.6931,0.6929,0.627,0.628,0.2143,0.021\r\n"
    "2,0.6874,0.687,0.901,0.894,0.2101,0.019\r\n"
)


class HistoryPublic(BaseModel):
    """A job's loss history after ``since_epoch``, perhaps down-sampled."""

    model_config = ConfigDict(json_schema_extra={"examples": [HISTORY_EXAMPLE]})

    job_id: str
    points: list[HistoryPoint]
    next_since_epoch: int | None = Field(
        description="Pass as `since_epoch` to get what comes next; null once the job has "
        "finished and every point up to its end was returned"
    )


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
    ):
        if set(schema.model_fields) != names:
            raise RuntimeError(f"{schema.__name__} fields differ from engine {spec.__name__}")
    members = {LogisticRegressionIn, TwoLayerNetworkIn}
    if {m.model_fields["type"].annotation.__args__[0] for m in members} != set(MODEL_TYPES):
        raise RuntimeError("the model spec union's members differ from engine MODEL_TYPES")


_check_field_names()
