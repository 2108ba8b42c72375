"""The trials of a sweep: its search space checked value by value, then a grid or random draw.

Each trial is the base job with some dimensions replaced, checked as POST /v1/jobs checks
a job, so that an error names the exact value (``search.space.activation[1]``).
"""

import itertools
import math
from typing import Any, NamedTuple

import numpy as np
from pydantic import TypeAdapter, ValidationError

from engine import ModelSpec, TrainingSpec
from service.core.errors import (
    Unprocessable,
    field_path,
    field_problem,
)
from service.core.settings import Settings
from service.jobs.schemas import JobCreate
from service.jobs.service import (
    engine_specs,
)
from service.jobs.specs import MODEL_SPEC_IN, TrainingSpecIn
from service.sweeps.schemas import (
    SearchPublic,
    SweepCreate,
)
from service.sweeps.space import DIMENSIONS, MAX_TRIALS, GridSearchIn, RangeIn

DEFAULT_SEED = 0  # random search without a seed draws the same trials every time


TRAINING_SPEC_IN = TypeAdapter(TrainingSpecIn)


class Trial(NamedTuple):
    """One combination to train: values by dimension, and where in the request each came from."""

    params: dict[str, Any]  # dimension -> value, in DIMENSIONS order
    sources: dict[str, str]  # dimension -> field path, e.g. "search.space.activation[1]"


Values = list[Any] | RangeIn  # one dimension of a checked space


def trial_specs(
    sweep_in: SweepCreate, trial: Trial, settings: Settings
) -> tuple[ModelSpec, TrainingSpec]:
    """The engine specs of the base with ``trial``'s values, checked as POST /v1/jobs checks.

    An error about a dimension the trial set names its source in the request; any other
    field keeps its name (``training.batch_size``) and the message says which values
    of the trial it clashed with.
    """
    specs_in: dict[str, Any] = {}
    for prefix, base, schema in (
        ("model", sweep_in.model, MODEL_SPEC_IN),
        ("training", sweep_in.training, TRAINING_SPEC_IN),
    ):
        mine = {n: v for n, v in trial.params.items() if DIMENSIONS[n].spec == prefix}
        try:
            specs_in[prefix] = schema.validate_python({**base.model_dump(), **mine})
        except ValidationError as error:
            first = error.errors()[0]
            path = field_path((prefix, *first["loc"]))  # without the model type's tag
            raise _trial_problem(path, first["msg"], trial) from None
    job_in = JobCreate(
        dataset_id=sweep_in.dataset_id, model=specs_in["model"], training=specs_in["training"]
    )
    try:
        return engine_specs(job_in, settings)
    except Unprocessable as error:
        first = error.extra["errors"][0]
        extra = {k: v for k, v in error.extra.items() if k != "errors"}
        raise _trial_problem(first["field"], first["message"], trial, **extra) from None


def _trial_problem(field: str, message: str, trial: Trial, **extra: Any) -> Unprocessable:
    name = field.split(".", 1)[1]  # "model.activation" -> "activation"
    if name in trial.sources:
        return field_problem(trial.sources[name], message, **extra)
    clash = ", ".join(f"{trial.sources[n]} = {v!r}" for n, v in trial.params.items())
    return field_problem(field, f"{message} (with {clash})" if clash else message, **extra)


def check_space(sweep_in: SweepCreate, settings: Settings) -> dict[str, Values]:
    """The requested dimensions in DIMENSIONS order, every value checked against the base.

    Lists keep their order; values come back as the specs hold them (1 -> 1.0 for a
    learning rate). Ranges are checked at both ends: what lies between is valid too.
    """
    search = sweep_in.search
    unknown = [name for name in search.space if name not in DIMENSIONS]
    if unknown:
        message = f"not a dimension a sweep can search; allowed: {list(DIMENSIONS)}"
        errors = [{"field": f"search.space.{name}", "message": message} for name in unknown]
        raise Unprocessable(f"search.space.{unknown[0]}: {message}", errors=errors)
    if not search.space:
        raise field_problem(
            "search.space", f"name at least one dimension to search: {list(DIMENSIONS)}"
        )
    space: dict[str, Values] = {}
    for name, dimension in DIMENSIONS.items():
        if name not in search.space:
            continue
        field = f"search.space.{name}"
        if dimension.hidden_layer and sweep_in.model.type != "two_layer_network":
            raise field_problem(
                field,
                f"only two_layer_network has a hidden layer to vary; model.type is "
                f"{sweep_in.model.type!r}",
            )
        value = search.space[name]
        if isinstance(value, dict) and dimension.ranged and search.strategy == "random":
            space[name] = _checked_range(sweep_in, name, value, settings)
        elif isinstance(value, list):
            space[name] = _checked_list(sweep_in, name, value, settings)
        else:
            raise field_problem(field, _shape_message(name, value, search.strategy))
    return space


def _shape_message(name: str, value: Any, strategy: str) -> str:
    if isinstance(value, dict) and DIMENSIONS[name].ranged:
        return "a grid takes a list of values; a range {low, high, log} needs strategy random"
    if DIMENSIONS[name].ranged and strategy == "random":
        return f"must be a list of values or a range {{low, high, log}}, got {value!r}"
    return f"must be a list of values, got {value!r}"


def _checked_list(
    sweep_in: SweepCreate, name: str, values: list[Any], settings: Settings
) -> list[Any]:
    field = f"search.space.{name}"
    if not 1 <= len(values) <= MAX_TRIALS:
        raise field_problem(field, f"must list 1 to {MAX_TRIALS} values, got {len(values)}")
    checked: list[Any] = []
    for index, value in enumerate(values):
        source = f"{field}[{index}]"
        checked.append(_checked_value(sweep_in, name, value, source, settings))
        if sweep_in.search.strategy == "grid" and checked[-1] in checked[:-1]:
            first = checked.index(checked[-1])
            raise field_problem(
                source, f"repeats {field}[{first}] ({value!r}); a grid's values must differ"
            )
    return checked


def _checked_range(
    sweep_in: SweepCreate, name: str, value: dict[str, Any], settings: Settings
) -> RangeIn:
    field = f"search.space.{name}"
    try:
        bounds = RangeIn.model_validate(value)
    except ValidationError as error:
        first = error.errors()[0]
        path = ".".join(str(part) for part in first["loc"])
        raise field_problem(f"{field}.{path}", first["msg"]) from None
    if bounds.log and bounds.low <= 0.0:
        raise field_problem(f"{field}.low", f"a log range needs low > 0, got {bounds.low}")
    if bounds.high <= bounds.low:
        raise field_problem(f"{field}.high", f"must be > low ({bounds.low}), got {bounds.high}")
    for end in ("low", "high"):
        _checked_value(sweep_in, name, getattr(bounds, end), f"{field}.{end}", settings)
    return bounds


def _checked_value(
    sweep_in: SweepCreate, name: str, value: Any, source: str, settings: Settings
) -> Any:
    """``value`` as the spec holds it, once the base with it passes every job check."""
    model_spec, training_spec = trial_specs(
        sweep_in, Trial({name: value}, {name: source}), settings
    )
    spec = model_spec if DIMENSIONS[name].spec == "model" else training_spec
    return getattr(spec, name)


def plan_trials(sweep_in: SweepCreate, settings: Settings) -> tuple[list[Trial], SearchPublic]:
    """Every trial of the search, in order, and the search as it is recorded.

    Grid: the Cartesian product of the lists in DIMENSIONS order (learning_rate,
    hidden_units, activation, l2, init, optimizer), the last dimension varying
    fastest. Random: ``n_trials`` trials; for each trial in turn, each dimension in
    DIMENSIONS order draws from numpy's Generator seeded by ``seed``: a list by
    ``integers(len)`` (uniform, with replacement), a range by ``uniform(low, high)``
    or, for a log range, ``exp(uniform(log low, log high))``. Same request, same trials.
    """
    search = sweep_in.search
    space = check_space(sweep_in, settings)
    if isinstance(search, GridSearchIn):  # n_trials and seed are random search's only
        trials = _grid(space)
        recorded = SearchPublic(strategy="grid", space=_recorded(space), n_trials=None, seed=None)
        return trials, recorded
    seed = DEFAULT_SEED if search.seed is None else search.seed
    trials = _random(space, search.n_trials, seed)
    recorded = SearchPublic(
        strategy="random", space=_recorded(space), n_trials=search.n_trials, seed=seed
    )
    return trials, recorded


def _grid(space: dict[str, Values]) -> list[Trial]:
    lists = {name: values for name, values in space.items() if isinstance(values, list)}
    count = math.prod(len(values) for values in lists.values())
    if count > MAX_TRIALS:
        sizes = " x ".join(f"{len(values)} {name}" for name, values in lists.items())
        raise field_problem(
            "search.space",
            f"the grid has {count} trials ({sizes}), over the limit of {MAX_TRIALS}",
            limit=MAX_TRIALS,
        )
    trials = []
    for indexes in itertools.product(*(range(len(values)) for values in lists.values())):
        chosen = dict(zip(lists, indexes, strict=True))  # dimension -> index in its list
        params = {name: lists[name][i] for name, i in chosen.items()}
        sources = {name: f"search.space.{name}[{i}]" for name, i in chosen.items()}
        trials.append(Trial(params, sources))
    return trials


def _random(space: dict[str, Values], n_trials: int, seed: int) -> list[Trial]:
    rng = np.random.default_rng(seed)
    trials = []
    for _ in range(n_trials):
        params: dict[str, Any] = {}
        sources: dict[str, str] = {}
        for name, values in space.items():
            if isinstance(values, RangeIn):
                params[name] = _draw(rng, values)
                sources[name] = f"search.space.{name}"
            else:
                index = int(rng.integers(len(values)))
                params[name] = values[index]
                sources[name] = f"search.space.{name}[{index}]"
        trials.append(Trial(params, sources))
    return trials


def _draw(rng: np.random.Generator, bounds: RangeIn) -> float:
    if bounds.log:
        value = math.exp(rng.uniform(math.log(bounds.low), math.log(bounds.high)))
    else:
        value = rng.uniform(bounds.low, bounds.high)
    return min(max(float(value), bounds.low), bounds.high)  # exp(log x) may round past x


def _recorded(space: dict[str, Values]) -> dict[str, Any]:
    return {
        name: values.model_dump() if isinstance(values, RangeIn) else values
        for name, values in space.items()
    }
