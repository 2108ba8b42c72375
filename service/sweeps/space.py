"""The search space of a sweep: its dimensions, their ranges, and the two strategies.

DIMENSIONS says which spec (model or training) each dimension sets and what values it may
take, from the engine's own tables and bounds; the request schemas of a grid or a random
search, and their JSON schema, are built from it.
"""

from dataclasses import dataclass, fields
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
from service.core.bounds import JsonInt, documented, range_keywords
from service.core.errors import register_tagged_union
from service.jobs.specs import (
    STRICT_INPUT,
)

MAX_TRIALS = 1_000  # child jobs one sweep may create (a grid's product, or n_trials)


MAX_SEED = int(TRAINING_BOUNDS["seed"].high or 0)  # the engine's bound on TrainingSpec.seed


STRATEGIES = ("grid", "random")


Strategy = Literal[STRATEGIES]  # type: ignore[valid-type]


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


def _check_dimensions() -> None:
    # A dimension is a field of the spec it names, so a renamed engine field fails at import.
    for name, dimension in DIMENSIONS.items():
        spec = ModelSpec if dimension.spec == "model" else TrainingSpec
        if name not in {f.name for f in fields(spec)}:
            raise RuntimeError(f"sweep dimension {name!r} is not a field of {spec.__name__}")


_check_dimensions()
