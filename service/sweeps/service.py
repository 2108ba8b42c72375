"""Sweeps: a grid or random search over hyperparameters, run as one child job per trial.

POST /v1/sweeps checks the whole search before writing anything: the base job
as POST /v1/jobs checks a job, then every value of every dimension, then every
trial (the base with the trial's values), each with service.jobs.service.engine_specs,
so the messages are the jobs API's and the field names the value at fault
(``search.space.activation[1]``). It then records the sweep and one queued job
per trial in one transaction. Workers train the children like any other job.

A sweep's status, counts and leaderboard are read from its children (SQL
aggregates over jobs and job_history), never stored.
"""

import itertools
import math
from datetime import timedelta
from typing import Any, NamedTuple

import numpy as np
from pydantic import TypeAdapter, ValidationError
from sqlalchemy import and_, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased

from engine import ModelSpec, TrainingSpec
from service.core.auth import current_api_key_id
from service.core.errors import (
    Unprocessable,
    field_path,
    field_problem,
    not_found,
    unknown_reference,
)
from service.core.limits import check_work, reserve_queue_room
from service.core.pagination import page
from service.core.settings import Settings
from service.core.states import (
    CANCELLED,
    FAILED,
    JOB_STATES,
    LIVE_STATES,
    QUEUED,
    RUNNING,
    SUCCEEDED,
)
from service.core.tables import Dataset, Job, JobHistory, Model, Sweep, utcnow
from service.jobs.schemas import JobCreate
from service.jobs.service import (
    cancel_jobs,
    could_be_id,
    engine_specs,
    queued_job,
    trainable_dataset,
)
from service.jobs.specs import MODEL_SPEC_IN, TrainingSpecIn
from service.queue.notify import notify_job_queued
from service.queue.results import finite_or_none
from service.sweeps.schemas import (
    DIMENSIONS,
    MAX_TRIALS,
    GridSearchIn,
    RangeIn,
    SearchPublic,
    SweepCounts,
    SweepCreate,
    SweepLinks,
    SweepPublic,
    SweepSummary,
    TrialPublic,
)

DEFAULT_SEED = 0  # random search without a seed draws the same trials every time
TRAINING_SPEC_IN = TypeAdapter(TrainingSpecIn)


class Trial(NamedTuple):
    """One combination to train: values by dimension, and where in the request each came from."""

    params: dict[str, Any]  # dimension -> value, in DIMENSIONS order
    sources: dict[str, str]  # dimension -> field path, e.g. "search.space.activation[1]"


Values = list[Any] | RangeIn  # one dimension of a checked space


# Checking one combination: the base with some dimensions replaced.


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


# The search space.


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


# Trials.


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


# Creating a sweep.


def create_sweep(*, session: Session, sweep_in: SweepCreate, settings: Settings) -> Sweep:
    """Check the search, then record the sweep and its queued jobs and wake workers; commits.

    The children are created a microsecond apart in trial order: the queue takes the
    oldest job first, so the trials run in order, and the leaderboard breaks ties so.
    As for POST /v1/jobs, each trial must fit the work budget (422), and the caller's
    key must have room for every trial among its queued jobs (429); the children
    record the key's id.
    """
    base = JobCreate(
        dataset_id=sweep_in.dataset_id, model=sweep_in.model, training=sweep_in.training
    )
    engine_specs(base, settings)  # the base must be a valid job on its own
    trials, search = plan_trials(sweep_in, settings)
    specs = [trial_specs(sweep_in, trial, settings) for trial in trials]
    dataset = trainable_dataset(session, sweep_in.dataset_id)
    for _, training_spec in specs:
        check_work(epochs=training_spec.epochs, rows=dataset.rows, settings=settings)
    api_key_id = current_api_key_id()
    reserve_queue_room(
        session=session, settings=settings, api_key_id=api_key_id, adding=len(trials)
    )

    now = utcnow()
    sweep = Sweep(
        dataset_id=dataset.id,
        model_spec=sweep_in.model.model_dump(mode="json"),
        training_spec=sweep_in.training.model_dump(mode="json"),
        search=search.model_dump(mode="json"),
        created_at=now,
    )
    try:
        session.add(sweep)
        session.flush()  # the sweep's id, for its children
        session.add_all(
            queued_job(
                dataset_id=dataset.id,
                model_spec=model_spec,
                training_spec=training_spec,
                settings=settings,
                created_at=now + timedelta(microseconds=index),
                sweep_id=sweep.id,
                trial=trial.params,
                api_key_id=api_key_id,
            )
            for index, (trial, (model_spec, training_spec)) in enumerate(
                zip(trials, specs, strict=True)
            )
        )
        notify_job_queued(session)
        session.commit()
    except IntegrityError:
        session.rollback()
        if session.get(Dataset, sweep_in.dataset_id) is None:  # deleted meanwhile
            raise unknown_reference("dataset_id", "dataset", sweep_in.dataset_id) from None
        raise
    return sweep


# Reading sweeps.


def get_sweep(*, session: Session, sweep_id: str) -> Sweep:
    """The sweep, or a 404 problem."""
    sweep = session.get(Sweep, sweep_id) if could_be_id(sweep_id) else None
    if sweep is None:
        raise not_found("sweep", sweep_id)
    return sweep


def list_sweeps(
    *, session: Session, limit: int, cursor: str | None = None
) -> tuple[list[Sweep], str | None]:
    """One page of sweeps, newest first."""
    return page(session, select(Sweep), Sweep, limit, cursor)


def status_counts(*, session: Session, sweep_ids: list[str]) -> dict[str, dict[str, int]]:
    """sweep id -> {job state: how many of its children are in it} (every state present)."""
    counts = {sweep_id: dict.fromkeys(JOB_STATES, 0) for sweep_id in sweep_ids}
    if sweep_ids:
        statement = (
            select(Job.sweep_id, Job.status, func.count())
            .where(Job.sweep_id.in_(sweep_ids))
            .group_by(Job.sweep_id, Job.status)
        )
        for sweep_id, status, count in session.execute(statement):
            counts[sweep_id][status] = count
    return counts


def sweep_status(counts: dict[str, int]) -> str:
    """The sweep's state from its children's (see SweepSummary.status).

    queued: every child queued. running: some child live (queued, running or
    cancelling) and some not queued. Once none is live: failed if any failed,
    else cancelled if any was cancelled, else succeeded.
    """
    total = sum(counts.values())
    if any(counts[state] for state in LIVE_STATES):
        return QUEUED if counts[QUEUED] == total else RUNNING
    if counts[FAILED]:
        return FAILED
    if counts[CANCELLED]:
        return CANCELLED
    return SUCCEEDED


def leaderboard(*, session: Session, sweep_id: str) -> list[TrialPublic]:
    """Every child, ranked by its lowest validation loss (none: last; ties: creation order).

    One statement of grouped aggregates over the children's history: MIN(val_loss) and
    MAX(epoch) per job; the best epoch is the first epoch at that minimum, the final
    training loss the one at the last epoch (a primary key lookup). Window functions
    would say the same in one pass, but SQLite sorts them some 40 times slower.
    """
    children = select(Job.id).where(Job.sweep_id == sweep_id)
    per_job = (
        select(
            JobHistory.job_id,
            func.min(JobHistory.val_loss).label("best_val_loss"),
            func.max(JobHistory.epoch).label("last_epoch"),
        )
        .where(JobHistory.job_id.in_(children))
        .group_by(JobHistory.job_id)
        .subquery()
    )
    best_epoch = (
        select(JobHistory.job_id, func.min(JobHistory.epoch).label("epoch"))
        .join(
            per_job,
            and_(
                JobHistory.job_id == per_job.c.job_id,
                JobHistory.val_loss == per_job.c.best_val_loss,
            ),
        )
        .group_by(JobHistory.job_id)
        .subquery()
    )
    last = aliased(JobHistory)
    statement = (
        select(
            Job.id,
            Job.status,
            Job.trial,
            per_job.c.best_val_loss,
            best_epoch.c.epoch,
            last.train_loss,
            Model.id,
        )
        .outerjoin(per_job, per_job.c.job_id == Job.id)
        .outerjoin(best_epoch, best_epoch.c.job_id == Job.id)
        .outerjoin(last, and_(last.job_id == Job.id, last.epoch == per_job.c.last_epoch))
        .outerjoin(Model, Model.job_id == Job.id)
        .where(Job.sweep_id == sweep_id)
        .order_by(per_job.c.best_val_loss.asc().nulls_last(), Job.created_at, Job.id)
    )
    return [
        TrialPublic(
            rank=rank,
            job_id=job_id,
            status=status,
            trial=finite_or_none(trial or {}),
            best_val_loss=finite_or_none(best_val_loss),
            best_epoch=best_epoch,
            final_train_loss=finite_or_none(final_train_loss),
            model_id=model_id,
        )
        for rank, (
            job_id,
            status,
            trial,
            best_val_loss,
            best_epoch,
            final_train_loss,
            model_id,
        ) in enumerate(session.execute(statement), start=1)
    ]


# Cancelling.


def cancel_sweep(*, session: Session, sweep_id: str) -> Sweep:
    """Cancel every child at once, idempotently; commits.

    One UPDATE makes the transition POST /v1/jobs/{id}/cancel makes for one job
    (service.jobs.service.cancel_job): queued -> cancelled (finished, stop_reason
    "cancelled"), running -> cancelling (its worker stops at the next epoch);
    cancelling and finished children stay as they are.
    """
    sweep = get_sweep(session=session, sweep_id=sweep_id)
    cancel_jobs(session, Job.sweep_id == sweep.id)
    session.commit()
    return sweep


# What clients see.


def sweep_summary(sweep: Sweep, counts: dict[str, int]) -> SweepSummary:
    base = f"/v1/sweeps/{sweep.id}"
    return SweepSummary(
        id=sweep.id,
        status=sweep_status(counts),
        dataset_id=sweep.dataset_id,
        model=finite_or_none(sweep.model_spec),
        training=finite_or_none(sweep.training_spec),
        search=finite_or_none(sweep.search),
        counts=SweepCounts(total=sum(counts.values()), **counts),
        created_at=sweep.created_at,
        links=SweepLinks(self=base, cancel=f"{base}/cancel", jobs=f"/v1/jobs?sweep_id={sweep.id}"),
    )


def sweep_public(*, session: Session, sweep: Sweep) -> SweepPublic:
    """The sweep with its counts and leaderboard, as they are now."""
    counts = status_counts(session=session, sweep_ids=[sweep.id])[sweep.id]
    summary = sweep_summary(sweep, counts)
    return SweepPublic(
        **summary.model_dump(), leaderboard=leaderboard(session=session, sweep_id=sweep.id)
    )


def sweep_summaries(*, session: Session, sweeps: list[Sweep]) -> list[SweepSummary]:
    """Summaries of ``sweeps``, their counts from one grouped query."""
    counts = status_counts(session=session, sweep_ids=[sweep.id for sweep in sweeps])
    return [sweep_summary(sweep, counts[sweep.id]) for sweep in sweeps]
