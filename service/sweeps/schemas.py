"""Sweeps: a search over hyperparameters (SweepCreate), and a sweep with its leaderboard.

A sweep is a base job (dataset, model, training, as in POST /v1/jobs) and a
search: which values to try for which dimensions. The dimensions, which spec
each one sets and the values each may take come from service.sweeps.space.DIMENSIONS,
whose allowed names are the engine's own tables.

The search space is checked by service.sweeps.service rather than by pydantic, so that
an error names the exact value (``search.space.activation[1]``) and reads as
POST /v1/jobs would put it; its JSON schema here documents the same rules.
"""

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
)
from pydantic_core import PydanticCustomError

from engine import (
    OPTIMIZER_NAMES,
)
from service.core.bounds import ID_PATTERN, documented
from service.jobs.schemas import (
    EXAMPLE_DATASET_ID,
    EXAMPLE_JOB_ID,
    EXAMPLE_MODEL_ID,
    JOB_EXAMPLE,
    JobStatus,
)
from service.jobs.specs import (
    ModelSpecIn,
    ModelSpecPublic,
    TrainingSpecIn,
    TrainingSpecPublic,
    default_model,
)
from service.sweeps.space import DIMENSIONS, SearchIn, Strategy

# The hold-out a sweep's trials are ranked on when the request names none.
SWEEP_VALIDATION_FRACTION = 0.2

SweepStatus = Literal["queued", "running", "succeeded", "failed", "cancelled"]


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
        default_factory=lambda: TrainingSpecIn(validation_fraction=SWEEP_VALIDATION_FRACTION),
        description="The base training spec; each trial replaces the dimensions it searches. "
        "Trials are ranked by their validation loss, so `validation_fraction` is "
        f"{SWEEP_VALIDATION_FRACTION} unless given (and must not be 0)",
    )
    search: SearchIn

    @field_validator("training", mode="after")
    @classmethod
    def _held_out(cls, training: TrainingSpecIn) -> TrainingSpecIn:
        # A job trains on every row by default; a search must be judged on rows it never saw.
        if "validation_fraction" not in training.model_fields_set:
            return training.model_copy(
                update={"validation_fraction": SWEEP_VALIDATION_FRACTION},
                deep=True,
            )
        if training.validation_fraction == 0:
            raise PydanticCustomError(
                "no_validation",
                "a sweep ranks its trials by validation loss: give validation_fraction > 0 "
                "(or leave it out: 0.2)",
            )
        return training


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
