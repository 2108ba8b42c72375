"""Sweeps: a search over hyperparameters (SweepCreate), and a sweep with its leaderboard.

A sweep is a base job (dataset, model, training, as in POST /v1/jobs) and a
search: which values to try for which dimensions. The dimensions, which spec
each one sets and the values each may take come from DIMENSIONS below, whose
allowed names are the engine's own tables.

The search space is checked by service.sweeps.service rather than by pydantic, so that
an error names the exact value (``search.space.activation[1]``) and reads as
POST /v1/jobs would put it; its JSON schema here documents the same rules.
"""

from dataclasses import dataclass, fields
from datetime import datetime
from typing import Annotated, Any, Literal, NamedTuple

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    GetJsonSchemaHandler,
    StrictBool,
    StrictFloat,
    create_model,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

from engine import (
    ACTIVATION_NAMES,
    INIT_NAMES,
    MODEL_BOUNDS,
    OPTIMIZER_NAMES,
    TRAINING_BOUNDS,
    Bounds,
    ModelSpec,
    TrainingSpec,
)
from service.core.bounds import ID_PATTERN, JsonInt, documented, range_keywords
from service.core.errors import register_tagged_union
from service.jobs.schemas import (
    EXAMPLE_DATASET_ID,
    EXAMPLE_JOB_ID,
    EXAMPLE_MODEL_ID,
    JOB_EXAMPLE,
    JobStatus,
)
from service.jobs.specs import (
    STRICT_INPUT,
    ModelSpecIn,
    ModelSpecPublic,
    TrainingSpecIn,
    TrainingSpecPublic,
    default_model,
)

MAX_TRIALS = 1_000  # child jobs one sweep may create (a grid's product, or n_trials)
MAX_SEED = int(TRAINING_BOUNDS["seed"].high or 0)  # the engine's bound on TrainingSpec.seed

STRATEGIES = ("grid", "random")
Strategy = Literal[STRATEGIES]  # type: ignore[valid-type]
SweepStatus = Literal["queued", "running", "succeeded", "failed", "cancelled"]


class Dimension(NamedTuple):
    """A hyperparameter a sweep can vary: the field of the same name in one of the specs."""

    spec: Literal["model", "training"]
    value_schema: dict[str, Any]  # JSON schema of one value, for the docs
    ranged: bool = False  # random search may also sample it from {"low", "high", "log"}
    hidden_layer: bool = False  # only two_layer_network has it


def _values(bounds: Bounds, json_type: str | list[str]) -> dict[str, Any]:
    return {"type": json_type, **range_keywords(bounds)}


# The order here is the order of a trial's values and of a grid's nesting.
DIMENSIONS: dict[str, Dimension] = {
    "learning_rate": Dimension(
        "training", _values(TRAINING_BOUNDS["learning_rate"], ["number", "null"]), ranged=True
    ),
    "hidden_units": Dimension(
        "model", _values(MODEL_BOUNDS["hidden_units"], "integer"), hidden_layer=True
    ),
    "activation": Dimension("model", {"enum": list(ACTIVATION_NAMES)}, hidden_layer=True),
    "l2": Dimension("training", _values(TRAINING_BOUNDS["l2"], "number"), ranged=True),
    "init": Dimension("model", {"enum": list(INIT_NAMES)}),
    "optimizer": Dimension("training", {"enum": list(OPTIMIZER_NAMES)}),
}


def range_name(dimension: str) -> str:
    """The component name of a dimension's range: learning_rate -> LearningRateRange."""
    return "".join(word.capitalize() for word in dimension.split("_")) + "Range"


def _range_model(name: str, dimension: Dimension) -> type[BaseModel]:
    """A range of ``name``'s values, for the document: both ends within the engine's bounds."""
    end = {key: value for key, value in dimension.value_schema.items() if key != "type"}
    number = Annotated[StrictFloat, documented(**end)]
    return create_model(
        range_name(name),
        __config__=ConfigDict(
            extra="forbid",
            json_schema_extra={
                "description": f"Random search only: sample `{name}` uniformly from [low, "
                "high], or log-uniformly (uniform in log space; low > 0) with `log: true`; "
                "high must be > low",
                # A log range needs low > 0.
                "if": {"properties": {"log": {"const": True}}, "required": ["log"]},
                "then": {"properties": {"low": {"exclusiveMinimum": 0}}},
            },
        ),
        low=(number, ...),
        high=(number, ...),
        log=(StrictBool, False),
    )


# One component per ranged dimension, referenced by `$ref` (an inline schema repeated under
# one title made openapi-python-client drop POST /v1/sweeps).
RANGE_MODELS: dict[str, type[BaseModel]] = {
    name: _range_model(name, dimension)
    for name, dimension in DIMENSIONS.items()
    if dimension.ranged
}


def _dimension_schema(
    name: str, dimension: Dimension, strategy: str, ranges: dict[str, Any]
) -> dict[str, Any]:
    values = {
        "type": "array",
        "items": dimension.value_schema,
        "minItems": 1,
        "maxItems": MAX_TRIALS,
    }
    if strategy == "grid":
        values["uniqueItems"] = True  # a grid's values must differ
    target = f"`{dimension.spec}.{name}`"
    if dimension.hidden_layer:
        target += " (two_layer_network only)"
    if not (dimension.ranged and strategy == "random"):
        return {**values, "description": f"Values of {target}"}
    return {
        "description": f"Values of {target}: a list, or a range",
        "anyOf": [values, ranges[name]],
    }


def _space_schema(strategy: str, ranges: dict[str, Any]) -> dict[str, Any]:
    how = (
        "A grid runs every combination of the lists"
        if strategy == "grid"
        else "Random search draws each trial's value of each dimension from its list "
        "(uniformly, with replacement) or its range"
    )
    return {
        "type": "object",
        "title": f"{strategy.capitalize()}Space",
        "description": f"Dimension name -> the values to try (at least one dimension). {how}. "
        "Any other name is a 422.",
        "properties": {
            name: _dimension_schema(name, d, strategy, ranges) for name, d in DIMENSIONS.items()
        },
        "minProperties": 1,
        "additionalProperties": False,
    }


@dataclass(frozen=True)
class SpaceSchema:
    """Annotated metadata: the JSON Schema of a ``strategy`` search's space, ranges by $ref."""

    strategy: str

    def __get_pydantic_json_schema__(
        self, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        ranges = {
            name: handler(model.__pydantic_core_schema__) for name, model in RANGE_MODELS.items()
        }
        return _space_schema(self.strategy, ranges)


class RangeIn(BaseModel):
    """A range to sample a number from (random search; learning_rate and l2)."""

    model_config = STRICT_INPUT

    low: StrictFloat
    high: StrictFloat
    log: StrictBool = False


class GridSearchIn(BaseModel):
    """Every combination of the lists: their Cartesian product, in DIMENSIONS order."""

    model_config = STRICT_INPUT

    strategy: Literal["grid"] = Field(
        description="`grid`: the Cartesian product of the lists, in DIMENSIONS order (the "
        "last dimension varies fastest)"
    )
    # Checked by service.sweeps.service (see the module docstring); documented by the schema.
    space: Annotated[dict[str, Any], SpaceSchema("grid")]


class RandomSearchIn(BaseModel):
    """`n_trials` seeded draws from lists and ranges."""

    model_config = STRICT_INPUT

    strategy: Literal["random"] = Field(description="`random`: `n_trials` draws, seeded by `seed`")
    space: Annotated[dict[str, Any], SpaceSchema("random")]
    n_trials: JsonInt = Field(ge=1, le=MAX_TRIALS, description="Trials to draw")
    seed: JsonInt | None = Field(
        None,
        ge=0,
        le=MAX_SEED,
        description="Seeds numpy's Generator that draws the trials (default 0); the same "
        "request draws the same trials",
    )


# What to try: a union discriminated by `strategy`; only random search takes n_trials and seed.
SearchIn = Annotated[GridSearchIn | RandomSearchIn, Field(discriminator="strategy")]
register_tagged_union("search", STRATEGIES)


GRID_REQUEST: dict[str, Any] = {
    "dataset_id": EXAMPLE_DATASET_ID,
    "model": {"type": "two_layer_network", "hidden_units": 16},
    "training": {"optimizer": "gd", "epochs": 200, "seed": 0},
    "search": {
        "strategy": "grid",
        "space": {"learning_rate": [0.01, 0.1, 0.5], "activation": ["tanh", "relu"]},
    },
}

RANDOM_REQUEST: dict[str, Any] = {
    "dataset_id": EXAMPLE_DATASET_ID,
    "model": {"type": "two_layer_network"},
    "training": {"optimizer": "adam", "epochs": 300},
    "search": {
        "strategy": "random",
        "space": {
            "learning_rate": {"low": 0.0001, "high": 0.1, "log": True},
            "hidden_units": [8, 16, 32, 64],
            "l2": {"low": 0.0, "high": 0.01},
        },
        "n_trials": 20,
        "seed": 7,
    },
}

CREATE_EXAMPLES: dict[str, dict[str, Any]] = {
    "grid": {
        "summary": "Three learning rates by two activations: six trials",
        "value": GRID_REQUEST,
    },
    "random": {
        "summary": "Twenty seeded draws: a log-uniform learning rate, a width, an L2 range",
        "value": RANDOM_REQUEST,
    },
}


def _property_path(names: tuple[str, ...], schema: Any) -> dict[str, Any]:
    """``{"properties": {names[0]: {"properties": ... schema}}}``."""
    for name in reversed(names):
        schema = {"properties": {name: schema}}
    return schema


# Rules between the base spec and the search, each an anyOf of plain shapes (no `not`,
# no if/then, which schema-driven generators find hard to satisfy).

# Only two_layer_network has a hidden layer for a search to vary: either the base model
# is one, or the space has none of the hidden-layer dimensions.
HIDDEN_LAYER_RULE: dict[str, Any] = {
    "anyOf": [
        {
            **_property_path(("model", "type"), {"const": "two_layer_network"}),
            "required": ["model"],
        },
        _property_path(
            ("search", "space"),
            {"properties": {n: {"not": {}} for n, d in DIMENSIONS.items() if d.hidden_layer}},
        ),
    ]
}

# lbfgs is a full-batch method (engine.specs): either the base batch_size is null (or
# left out), or no trial switches the optimizer to lbfgs.
FULL_BATCH_RULE: dict[str, Any] = {
    "anyOf": [
        _property_path(("training", "batch_size"), {"type": "null"}),
        _property_path(
            ("search", "space", "optimizer"),
            {"items": {"enum": [name for name in OPTIMIZER_NAMES if name != "lbfgs"]}},
        ),
    ]
}


class SweepCreate(BaseModel):
    """A sweep: a base job (as for POST /v1/jobs) and the search over it."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [GRID_REQUEST],
            "allOf": [HIDDEN_LAYER_RULE, FULL_BATCH_RULE],
        },
    )

    dataset_id: Annotated[str, documented(pattern=ID_PATTERN)] = Field(
        description="The dataset every trial trains on"
    )
    model: ModelSpecIn = Field(
        default_factory=default_model,
        description="The base model spec; each trial replaces the dimensions it searches",
    )
    training: TrainingSpecIn = Field(
        default_factory=TrainingSpecIn,
        description="The base training spec; each trial replaces the dimensions it searches",
    )
    search: SearchIn


# Output.


class RangePublic(BaseModel):
    low: float
    high: float
    log: bool


class SearchPublic(BaseModel):
    strategy: Strategy
    space: dict[str, list[Any] | RangePublic] = Field(
        description="The dimensions searched, in DIMENSIONS order, with their values"
    )
    n_trials: int | None = Field(description="Random search: trials drawn; grid: null")
    seed: int | None = Field(description="Random search: the seed in force; grid: null")


class SweepCounts(BaseModel):
    """How many of the sweep's trials (child jobs) are in each state."""

    total: int
    queued: int
    running: int
    cancelling: int
    succeeded: int
    failed: int
    cancelled: int


class SweepLinks(BaseModel):
    self: str
    cancel: str
    jobs: str = Field(description="The child jobs: GET /v1/jobs?sweep_id=...")


class TrialPublic(BaseModel):
    """One trial on the leaderboard: its job, its values and how well it did."""

    rank: int = Field(description="1 is the lowest best validation loss")
    job_id: str
    status: JobStatus
    trial: dict[str, Any] = Field(description="The values this trial set, by dimension")
    best_val_loss: float | None = Field(
        description="Lowest validation loss in the job's history; null: none yet (or no "
        "validation split); such trials rank last"
    )
    best_epoch: int | None = Field(description="The epoch of best_val_loss (the first, on ties)")
    final_train_loss: float | None = Field(description="Training loss of the latest epoch")
    model_id: str | None = Field(description="The fitted model, once the job succeeded")


EXAMPLE_SWEEP_ID = "5e6f7a8b9c0d4e1fa2b3c4d5e6f7a8b9"

SWEEP_EXAMPLE: dict[str, Any] = {
    "id": EXAMPLE_SWEEP_ID,
    "status": "running",
    "dataset_id": EXAMPLE_DATASET_ID,
    "model": JOB_EXAMPLE["model"],
    "training": JOB_EXAMPLE["training"],
    "search": {
        "strategy": "grid",
        "space": {"learning_rate": [0.01, 0.1, 0.5], "activation": ["tanh", "relu"]},
        "n_trials": None,
        "seed": None,
    },
    "counts": {
        "total": 6,
        "queued": 2,
        "running": 1,
        "cancelling": 0,
        "succeeded": 3,
        "failed": 0,
        "cancelled": 0,
    },
    "created_at": "2025-05-01T09:30:00.120000Z",
    "links": {
        "self": f"/v1/sweeps/{EXAMPLE_SWEEP_ID}",
        "cancel": f"/v1/sweeps/{EXAMPLE_SWEEP_ID}/cancel",
        "jobs": f"/v1/jobs?sweep_id={EXAMPLE_SWEEP_ID}",
    },
    "leaderboard": [
        {
            "rank": rank,
            "job_id": job_id,
            "status": status,
            "trial": {"learning_rate": learning_rate, "activation": activation},
            "best_val_loss": best_val_loss,
            "best_epoch": best_epoch,
            "final_train_loss": final_train_loss,
            "model_id": model_id,
        }
        for rank, (
            job_id,
            status,
            learning_rate,
            activation,
            best_val_loss,
            best_epoch,
            final_train_loss,
            model_id,
        ) in enumerate(
            [
                (EXAMPLE_JOB_ID, "succeeded", 0.5, "tanh", 0.0871, 153, 0.0604, EXAMPLE_MODEL_ID),
                (f"{'1' * 31}a", "succeeded", 0.1, "tanh", 0.1033, 200, 0.0912, f"{'2' * 31}b"),
                (f"{'3' * 31}c", "running", 0.5, "relu", 0.1342, 60, 0.1207, None),
                (f"{'4' * 31}d", "succeeded", 0.01, "tanh", 0.5517, 200, 0.5489, f"{'5' * 31}e"),
                (f"{'6' * 31}f", "queued", 0.01, "relu", None, None, None, None),
                (f"{'7' * 31}a", "queued", 0.1, "relu", None, None, None, None),
            ],
            start=1,
        )
    ],
}

SWEEP_SUMMARY_EXAMPLE: dict[str, Any] = {
    key: value for key, value in SWEEP_EXAMPLE.items() if key != "leaderboard"
}


class SweepSummary(BaseModel):
    """A sweep without its leaderboard, as listings show it."""

    model_config = ConfigDict(json_schema_extra={"examples": [SWEEP_SUMMARY_EXAMPLE]})

    id: str
    status: SweepStatus = Field(
        description="From the trials: `queued` while every trial is queued; `running` while "
        "any trial is queued, running or cancelling (and one has started); then `failed` if "
        "any trial failed, else `cancelled` if any was cancelled, else `succeeded`"
    )
    dataset_id: str | None = Field(description="null once the dataset was deleted")
    model: ModelSpecPublic = Field(description="The base model spec")
    training: TrainingSpecPublic = Field(description="The base training spec")
    search: SearchPublic
    counts: SweepCounts
    created_at: datetime
    links: SweepLinks


class SweepPublic(SweepSummary):
    """A sweep, with every trial ranked by its best validation loss."""

    model_config = ConfigDict(json_schema_extra={"examples": [SWEEP_EXAMPLE]})

    leaderboard: list[TrialPublic] = Field(
        description="Every trial, by best_val_loss ascending (trials without one last), "
        "ties in the order the trials were created"
    )


class SweepsPublic(BaseModel):
    """A page of sweeps, newest first."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"data": [SWEEP_SUMMARY_EXAMPLE], "next_cursor": None}],
        }
    )

    data: list[SweepSummary]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null: last")


def _check_dimensions() -> None:
    # A dimension is a field of the spec it names, so a renamed engine field fails at import.
    for name, dimension in DIMENSIONS.items():
        spec = ModelSpec if dimension.spec == "model" else TrainingSpec
        if name not in {f.name for f in fields(spec)}:
            raise RuntimeError(f"sweep dimension {name!r} is not a field of {spec.__name__}")


_check_dimensions()
