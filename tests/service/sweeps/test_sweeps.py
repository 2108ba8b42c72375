"""Sweeps: grid and random search as child jobs, their validation, leaderboard and cancellation.

Most tests play the worker's part by writing job states and history rows
directly (tests/service/factories.py); the last one drains a real sweep with
a real worker process. One test checks that migration 0002 keeps every
existing job's rows, on both databases.
"""

import itertools
import math
import time
import uuid
from dataclasses import asdict
from typing import Any

import numpy as np
import pytest
from sqlalchemy import MetaData, Table, create_engine, func, insert, select, text

from engine import ACTIVATION_NAMES, ModelSpec, TrainingSpec
from service.core.database import Database
from service.core.migrate import downgrade, upgrade
from service.core.settings import Settings
from service.core.states import CANCELLED, CANCELLING, FAILED, QUEUED, RUNNING, SUCCEEDED
from service.core.tables import Job, Model, Sweep, utcnow
from service.sweeps.schemas import CREATE_EXAMPLES, SweepCreate
from service.sweeps.space import DIMENSIONS, MAX_TRIALS
from service.sweeps.trials import plan_trials
from tests.conftest import POSTGRES_URL, create_postgres_database, drop_postgres_database
from tests.service.factories import (
    add_dataset,
    add_history,
    add_job,
    assert_problem,
    get_job,
    history_row,
    set_job,
)
from tests.service.live import service_env, start_worker, stop

BASE = {
    "model": {"type": "two_layer_network", "hidden_units": 8},
    "training": {"optimizer": "gd", "epochs": 50, "seed": 3},
}
GRID_3X2 = {
    "strategy": "grid",
    "space": {"learning_rate": [0.01, 0.1, 0.5], "activation": ["tanh", "relu"]},
}
RANDOM_5 = {
    "strategy": "random",
    "space": {
        "learning_rate": {"low": 0.0001, "high": 1.0, "log": True},
        "hidden_units": [4, 8, 16],
        "l2": {"low": 0.0, "high": 0.01},
        "activation": ["tanh", "relu", "sigmoid"],
    },
    "n_trials": 5,
    "seed": 42,
}


# Helpers.


def sweep_body(dataset_id: str, search: dict[str, Any], **base: Any) -> dict[str, Any]:
    return {"dataset_id": dataset_id, **BASE, **base, "search": search}


def post_sweep(client, dataset_id: str, search: dict[str, Any], **base: Any) -> dict[str, Any]:
    response = client.post("/v1/sweeps", json=sweep_body(dataset_id, search, **base))
    assert response.status_code == 202, response.text
    sweep = response.json()
    assert response.headers["location"] == f"/v1/sweeps/{sweep['id']}"
    return sweep


def children(database: Database, sweep_id: str) -> list[Job]:
    """The sweep's jobs in trial order."""
    with database.reads() as session:
        statement = select(Job).where(Job.sweep_id == sweep_id).order_by(Job.created_at)
        return list(session.scalars(statement))


def count_rows(database: Database, table: type) -> int:
    with database.reads() as session:
        return session.scalar(select(func.count()).select_from(table))


def add_model(database: Database, job_id: str, dataset_id: str) -> str:
    with database.writes() as session:
        model = Model(
            job_id=job_id,
            dataset_id=dataset_id,
            model_type="two_layer_network",
            metrics={},
            diagnostics={},
            artifact=b"npz",
        )
        session.add(model)
        session.commit()
        return model.id


# Creating a grid.


def test_grid_of_three_learning_rates_by_two_activations_queues_six_jobs_with_merged_specs(
    client, database
):
    dataset_id = add_dataset(database)
    sweep = post_sweep(client, dataset_id, GRID_3X2)

    assert sweep["status"] == "queued"
    assert sweep["counts"] == {
        "total": 6,
        "queued": 6,
        "running": 0,
        "cancelling": 0,
        "succeeded": 0,
        "failed": 0,
        "cancelled": 0,
    }
    assert sweep["search"] == {**GRID_3X2, "n_trials": None, "seed": None}
    assert sweep["dataset_id"] == dataset_id
    assert sweep["model"] == asdict(ModelSpec(type="two_layer_network", hidden_units=8))
    assert (
        sweep["training"]
        == TrainingSpec(optimizer="gd", epochs=50, seed=3, validation_fraction=0.2).to_dict()
    )
    assert sweep["links"] == {
        "self": f"/v1/sweeps/{sweep['id']}",
        "cancel": f"/v1/sweeps/{sweep['id']}/cancel",
        "jobs": f"/v1/jobs?sweep_id={sweep['id']}",
    }

    # Trial order: the Cartesian product, learning_rate outer, activation inner.
    expected = list(itertools.product([0.01, 0.1, 0.5], ["tanh", "relu"]))
    jobs = children(database, sweep["id"])
    assert len(jobs) == 6
    assert count_rows(database, Job) == 6
    for job, (learning_rate, activation) in zip(jobs, expected, strict=True):
        assert job.status == QUEUED
        assert job.sweep_id == sweep["id"]
        assert job.dataset_id == dataset_id
        assert job.trial == {"learning_rate": learning_rate, "activation": activation}
        # The data contract with the worker: complete specs, base merged with the trial.
        model = ModelSpec(type="two_layer_network", hidden_units=8, activation=activation)
        training = TrainingSpec(
            optimizer="gd", epochs=50, seed=3, learning_rate=learning_rate, validation_fraction=0.2
        )
        assert job.model_spec == asdict(model)
        assert job.training_spec == training.to_dict()
        assert job.model_type == "two_layer_network"
        assert job.epochs == 50
        assert job.attempt == 0

    # Nothing trained yet: the leaderboard is every trial, in trial order.
    board = sweep["leaderboard"]
    assert [entry["job_id"] for entry in board] == [job.id for job in jobs]
    assert [entry["rank"] for entry in board] == [1, 2, 3, 4, 5, 6]
    assert [tuple(entry["trial"].values()) for entry in board] == expected
    for entry in board:
        assert entry["status"] == "queued"
        assert entry["best_val_loss"] is entry["best_epoch"] is entry["final_train_loss"] is None
        assert entry["model_id"] is None
    assert client.get(f"/v1/sweeps/{sweep['id']}").json() == sweep


def test_grid_nests_dimensions_in_their_documented_order_not_the_requests(client, database):
    dataset_id = add_dataset(database)
    space = {"optimizer": ["gd", "adam"], "activation": ["tanh", "relu"], "hidden_units": [4, 8]}
    sweep = post_sweep(client, dataset_id, {"strategy": "grid", "space": space})
    # DIMENSIONS order: hidden_units, activation, optimizer; the last varies fastest.
    assert list(DIMENSIONS).index("hidden_units") < list(DIMENSIONS).index("optimizer")
    expected = [
        {"hidden_units": h, "activation": a, "optimizer": o}
        for h, a, o in itertools.product([4, 8], ["tanh", "relu"], ["gd", "adam"])
    ]
    trials = [job.trial for job in children(database, sweep["id"])]
    assert trials == expected
    assert [list(trial) for trial in trials] == [list(expected[0])] * 8
    assert list(sweep["search"]["space"]) == ["hidden_units", "activation", "optimizer"]


def test_a_child_job_shows_its_sweep_and_trial(client, database):
    dataset_id = add_dataset(database)
    sweep = post_sweep(client, dataset_id, GRID_3X2)
    first = sweep["leaderboard"][0]
    job = client.get(f"/v1/jobs/{first['job_id']}").json()
    assert job["sweep_id"] == sweep["id"]
    assert job["trial"] == {"learning_rate": 0.01, "activation": "tanh"}
    assert job["training"]["learning_rate"] == 0.01
    assert job["model"]["activation"] == "tanh"

    plain = add_job(database, dataset_id)
    assert client.get(f"/v1/jobs/{plain}").json()["sweep_id"] is None
    assert client.get(f"/v1/jobs/{plain}").json()["trial"] is None


def test_an_integer_learning_rate_is_recorded_as_the_spec_holds_it(client, database):
    dataset_id = add_dataset(database)
    search = {"strategy": "grid", "space": {"learning_rate": [1, None]}}
    sweep = post_sweep(client, dataset_id, search)
    assert sweep["search"]["space"] == {"learning_rate": [1.0, None]}
    trials = [job.trial for job in children(database, sweep["id"])]
    assert trials == [{"learning_rate": 1.0}, {"learning_rate": None}]  # null: gd's default


# Random search.


def draw_trials(search: dict[str, Any]) -> list[dict[str, Any]]:
    """The documented procedure, written out: per trial, per dimension in DIMENSIONS order."""
    rng = np.random.default_rng(search.get("seed", 0))
    space = search["space"]
    trials = []
    for _ in range(search["n_trials"]):
        trial = {}
        for name in (name for name in DIMENSIONS if name in space):
            values = space[name]
            if isinstance(values, list):
                trial[name] = values[int(rng.integers(len(values)))]
            elif values.get("log"):
                low, high = math.log(values["low"]), math.log(values["high"])
                trial[name] = math.exp(rng.uniform(low, high))
            else:
                trial[name] = float(rng.uniform(values["low"], values["high"]))
        trials.append(trial)
    return trials


def test_random_search_with_a_seed_draws_the_same_trials_within_the_ranges(client, database):
    dataset_id = add_dataset(database)
    first = post_sweep(client, dataset_id, RANDOM_5)
    again = post_sweep(client, dataset_id, RANDOM_5)
    other = post_sweep(client, dataset_id, {**RANDOM_5, "seed": 43})

    trials = [job.trial for job in children(database, first["id"])]
    assert len(trials) == 5
    assert [job.trial for job in children(database, again["id"])] == trials
    assert [job.trial for job in children(database, other["id"])] != trials
    assert trials == draw_trials(RANDOM_5)
    for trial in trials:
        assert list(trial) == ["learning_rate", "hidden_units", "activation", "l2"]
        assert 0.0001 <= trial["learning_rate"] <= 1.0
        assert 0.0 <= trial["l2"] <= 0.01
        assert trial["hidden_units"] in (4, 8, 16)
        assert trial["activation"] in ("tanh", "relu", "sigmoid")
    for job, trial in zip(children(database, first["id"]), trials, strict=True):
        assert job.training_spec["learning_rate"] == trial["learning_rate"]
        assert job.training_spec["l2"] == trial["l2"]
        assert job.model_spec["hidden_units"] == trial["hidden_units"]
    assert first["search"] == {
        "strategy": "random",
        "space": {
            "learning_rate": {"low": 0.0001, "high": 1.0, "log": True},
            "hidden_units": [4, 8, 16],
            "activation": ["tanh", "relu", "sigmoid"],
            "l2": {"low": 0.0, "high": 0.01, "log": False},
        },
        "n_trials": 5,
        "seed": 42,
    }


def test_random_search_without_a_seed_uses_seed_zero(client, database):
    dataset_id = add_dataset(database)
    search = {"strategy": "random", "space": {"hidden_units": [2, 4, 8, 16]}, "n_trials": 6}
    sweep = post_sweep(client, dataset_id, search)
    assert sweep["search"]["seed"] == 0
    trials = [job.trial for job in children(database, sweep["id"])]
    assert trials == draw_trials({**search, "seed": 0})


def test_log_ranges_are_sampled_log_uniformly_and_plain_ranges_uniformly():
    # Many draws through the planner itself: log10 of a log-uniform learning rate on
    # [1e-4, 1] is uniform on [-4, 0] (mean -2); a plain range on [0, 1] has mean 0.5.
    sweep_in = SweepCreate.model_validate(
        {
            "dataset_id": uuid.uuid4().hex,
            **BASE,
            "search": {
                "strategy": "random",
                "space": {
                    "learning_rate": {"low": 1e-4, "high": 1.0, "log": True},
                    "l2": {"low": 0.0, "high": 1.0},
                },
                "n_trials": MAX_TRIALS,
                "seed": 7,
            },
        }
    )
    trials, _ = plan_trials(sweep_in, Settings(database_url="sqlite://"))
    exponents = np.log10([trial.params["learning_rate"] for trial in trials])
    l2 = np.array([trial.params["l2"] for trial in trials])
    assert exponents.min() >= -4.0
    assert exponents.max() <= 0.0
    assert abs(exponents.mean() - (-2.0)) < 0.15
    assert 0.2 < np.mean(exponents < -3.0) < 0.3  # a quarter of the decades lie below 1e-3
    assert abs(l2.mean() - 0.5) < 0.05
    assert np.mean(l2 < 0.01) < 0.03  # uniform: about 1% below 0.01, not a quarter


# Validation: 422 naming the field, nothing written.


def test_a_bad_activation_is_422_on_its_place_in_the_list_with_the_jobs_message(client, database):
    dataset_id = add_dataset(database)
    search = {"strategy": "grid", "space": {"activation": ["tanh", "swish"]}}
    problem = assert_problem(client.post("/v1/sweeps", json=sweep_body(dataset_id, search)), 422)
    job_problem = assert_problem(
        client.post(
            "/v1/jobs",
            json={"dataset_id": dataset_id, "model": {**BASE["model"], "activation": "swish"}},
        ),
        422,
    )
    message = job_problem["errors"][0]["message"]  # what POST /v1/jobs says of "swish"
    assert problem["errors"] == [{"field": "search.space.activation[1]", "message": message}]
    assert problem["detail"] == f"search.space.activation[1]: {message}"
    for name in ACTIVATION_NAMES:
        assert repr(name) in message
    assert count_rows(database, Sweep) == count_rows(database, Job) == 0


def test_an_unknown_dimension_is_422_listing_the_allowed_ones(client, database):
    dataset_id = add_dataset(database)
    search = {"strategy": "grid", "space": {"momentum": [0.9], "learning_rate": [0.1]}}
    problem = assert_problem(client.post("/v1/sweeps", json=sweep_body(dataset_id, search)), 422)
    message = (
        "not a dimension a sweep can search; allowed: "
        "['learning_rate', 'hidden_units', 'activation', 'l2', 'init', 'optimizer']"
    )
    assert problem["errors"] == [{"field": "search.space.momentum", "message": message}]
    assert count_rows(database, Sweep) == count_rows(database, Job) == 0


def test_random_search_without_n_trials_is_422(client, database):
    dataset_id = add_dataset(database)
    search = {"strategy": "random", "space": {"activation": ["tanh", "relu"]}}
    problem = assert_problem(client.post("/v1/sweeps", json=sweep_body(dataset_id, search)), 422)
    assert problem["errors"] == [{"field": "search.n_trials", "message": "Field required"}]


def test_a_grid_of_more_than_max_trials_is_422_naming_the_limit(client, database):
    dataset_id = add_dataset(database)
    space = {"learning_rate": [0.1 * i for i in range(1, 12)], "hidden_units": list(range(1, 101))}
    problem = assert_problem(
        client.post(
            "/v1/sweeps", json=sweep_body(dataset_id, {"strategy": "grid", "space": space})
        ),
        422,
    )
    assert problem["errors"] == [
        {
            "field": "search.space",
            "message": "the grid has 1100 trials (11 learning_rate x 100 hidden_units), "
            "over the limit of 1000",
        }
    ]
    assert problem["limit"] == MAX_TRIALS
    assert count_rows(database, Sweep) == count_rows(database, Job) == 0


def test_random_search_of_more_than_max_trials_is_422(client, database):
    dataset_id = add_dataset(database)
    search = {"strategy": "random", "space": {"init": ["he"]}, "n_trials": MAX_TRIALS + 1}
    problem = assert_problem(client.post("/v1/sweeps", json=sweep_body(dataset_id, search)), 422)
    assert [error["field"] for error in problem["errors"]] == ["search.n_trials"]
    assert "1000" in problem["errors"][0]["message"]


@pytest.mark.parametrize(
    ("search", "base", "field", "message"),
    [
        (
            {"strategy": "grid", "space": {"learning_rate": [0.1, 0.0]}},
            {},
            "search.space.learning_rate[1]",
            "must be > 0.0, got 0.0",
        ),
        (
            {"strategy": "grid", "space": {"hidden_units": [8, 5000]}},
            {},
            "search.space.hidden_units[1]",
            "5000 is over this service's limit of 4096 (BACKPROP_MAX_HIDDEN_UNITS)",
        ),
        (
            {"strategy": "grid", "space": {"hidden_units": [8, 2.5]}},
            {},
            "search.space.hidden_units[1]",
            "Input should be a valid integer",
        ),
        (
            {"strategy": "grid", "space": {"init": ["he", "he"]}},
            {},
            "search.space.init[1]",
            "repeats search.space.init[0] ('he'); a grid's values must differ",
        ),
        (
            {"strategy": "grid", "space": {"init": []}},
            {},
            "search.space.init",
            "must list 1 to 1000 values, got 0",
        ),
        (
            {"strategy": "grid", "space": {"init": "he"}},
            {},
            "search.space.init",
            "must be a list of values, got 'he'",
        ),
        (
            {"strategy": "grid", "space": {}},
            {},
            "search.space",
            "name at least one dimension to search: "
            "['learning_rate', 'hidden_units', 'activation', 'l2', 'init', 'optimizer']",
        ),
        (
            {"strategy": "grid", "space": {"l2": {"low": 0.0, "high": 0.1}}},
            {},
            "search.space.l2",
            "a grid takes a list of values; a range {low, high, log} needs strategy random",
        ),
        (
            {"strategy": "grid", "space": {"init": ["he"]}, "seed": 1},
            {},
            "search.seed",
            "Extra inputs are not permitted",  # only random search takes it
        ),
        (
            {"strategy": "grid", "space": {"init": ["he"]}, "n_trials": 3},
            {},
            "search.n_trials",
            "Extra inputs are not permitted",  # only random search takes it
        ),
        (
            {
                "strategy": "random",
                "space": {"learning_rate": {"low": 0.0, "high": 0.1, "log": True}},
                "n_trials": 3,
            },
            {},
            "search.space.learning_rate.low",
            "a log range needs low > 0, got 0.0",
        ),
        (
            {
                "strategy": "random",
                "space": {"learning_rate": {"low": 0.0, "high": 0.1}},
                "n_trials": 3,
            },
            {},
            "search.space.learning_rate.low",
            "must be > 0.0, got 0.0",
        ),
        (
            {"strategy": "random", "space": {"l2": {"low": 0.1, "high": 0.1}}, "n_trials": 3},
            {},
            "search.space.l2.high",
            "must be > low (0.1), got 0.1",
        ),
        (
            {"strategy": "random", "space": {"l2": {"low": 0.0}}, "n_trials": 3},
            {},
            "search.space.l2.high",
            "Field required",
        ),
        (
            {"strategy": "random", "space": {"activation": {"low": 0, "high": 1}}, "n_trials": 3},
            {},
            "search.space.activation",
            "must be a list of values, got {'low': 0, 'high': 1}",
        ),
        (
            {"strategy": "grid", "space": {"activation": ["tanh", "relu"]}},
            {"model": {"type": "logistic_regression"}},
            "search.space.activation",
            "only two_layer_network has a hidden layer to vary; model.type is "
            "'logistic_regression'",
        ),
        (
            {"strategy": "grid", "space": {"optimizer": ["adam", "lbfgs"]}},
            {"training": {"batch_size": 16}},
            "training.batch_size",
            "lbfgs is a full-batch method: batch_size must be null "
            "(with search.space.optimizer[1] = 'lbfgs')",
        ),
        (
            {"strategy": "grid", "space": {"learning_rate": [0.1]}},
            {"training": {"epochs": 0}},
            "training.epochs",
            "must be >= 1, got 0",
        ),
    ],
)
def test_search_errors_are_422_naming_the_field(client, database, search, base, field, message):
    dataset_id = add_dataset(database)
    response = client.post("/v1/sweeps", json=sweep_body(dataset_id, search, **base))
    problem = assert_problem(response, 422)
    assert problem["errors"] == [{"field": field, "message": message}]
    assert problem["detail"] == f"{field}: {message}"
    assert count_rows(database, Sweep) == count_rows(database, Job) == 0


@pytest.mark.parametrize(
    ("search", "field"),
    [
        ({"strategy": "bayesian", "space": {"init": ["he"]}}, "search.strategy"),
        ({"strategy": "grid"}, "search.space"),
        ({"strategy": "random", "space": {"init": ["he"]}, "n_trials": 0}, "search.n_trials"),
        (
            {"strategy": "random", "space": {"init": ["he"]}, "n_trials": 2, "seed": -1},
            "search.seed",
        ),
        ({"strategy": "grid", "space": {"init": ["he"]}, "budget": 3}, "search.budget"),
    ],
)
def test_malformed_searches_are_422_naming_the_field(client, database, search, field):
    dataset_id = add_dataset(database)
    problem = assert_problem(client.post("/v1/sweeps", json=sweep_body(dataset_id, search)), 422)
    assert [error["field"] for error in problem["errors"]] == [field]


def test_a_non_finite_range_bound_is_422(client, database):
    dataset_id = add_dataset(database)
    content = (
        f'{{"dataset_id": "{dataset_id}", "search": {{"strategy": "random", "n_trials": 2, '
        '"space": {"l2": {"low": 0.0, "high": Infinity}}}}'
    )
    response = client.post(
        "/v1/sweeps", content=content, headers={"content-type": "application/json"}
    )
    problem = assert_problem(response, 422)
    assert problem["errors"] == [
        {"field": "search.space.l2.high", "message": "Input should be a finite number"}
    ]


def test_an_unknown_dataset_is_a_422_problem_and_creates_nothing(client, database):
    missing = uuid.uuid4().hex
    problem = assert_problem(client.post("/v1/sweeps", json=sweep_body(missing, GRID_3X2)), 422)
    assert problem["detail"] == f"dataset_id: dataset '{missing}' does not exist"
    assert problem["errors"] == [
        {"field": "dataset_id", "message": f"dataset '{missing}' does not exist"}
    ]
    assert count_rows(database, Sweep) == count_rows(database, Job) == 0


def test_the_documented_examples_create_sweeps(client, database):
    dataset_id = add_dataset(database)
    for name, trials in (("grid", 6), ("random", 20)):
        body = {**CREATE_EXAMPLES[name]["value"], "dataset_id": dataset_id}
        response = client.post("/v1/sweeps", json=body)
        assert response.status_code == 202, (name, response.text)
        assert response.json()["counts"]["total"] == trials


# The leaderboard.


def test_leaderboard_ranks_trials_by_best_validation_loss_with_no_history_last(client, database):
    dataset_id = add_dataset(database)
    sweep = post_sweep(client, dataset_id, GRID_3X2)
    jobs = [job.id for job in children(database, sweep["id"])]
    # Per child (in trial order): (val_loss, train_loss) per epoch; None: not measured.
    histories = {
        jobs[0]: [(0.9, 0.8), (0.5, 0.45), (0.6, 0.4)],  # best 0.5 at epoch 2
        jobs[1]: [(0.4, 0.5), (0.3, 0.3), (0.35, 0.2), (0.32, 0.1)],  # best 0.3 at 2
        jobs[2]: [(None, 0.9), (0.7, 0.6)],  # best 0.7 at 2
        # jobs[3]: no history at all
        jobs[4]: [(0.3, 0.9), (0.3, 0.7)],  # 0.3 at 1 and 2: epoch 1; ties jobs[1], made later
        jobs[5]: [(None, 0.5), (None, 0.25)],  # no validation split: no best
    }
    for job_id, rows in histories.items():
        add_history(
            database,
            job_id,
            [
                history_row(epoch, val_loss=val, train_loss=train)
                for epoch, (val, train) in enumerate(rows, start=1)
            ],
            status=RUNNING,
            attempt=1,
        )
    set_job(database, jobs[1], status=SUCCEEDED, finished_at=utcnow())
    model_id = add_model(database, jobs[1], dataset_id)

    board = client.get(f"/v1/sweeps/{sweep['id']}").json()["leaderboard"]
    assert [entry["job_id"] for entry in board] == [
        jobs[1],
        jobs[4],
        jobs[0],
        jobs[2],
        jobs[3],
        jobs[5],
    ]
    summary = [
        (e["rank"], e["best_val_loss"], e["best_epoch"], e["final_train_loss"]) for e in board
    ]
    assert summary == [
        (1, 0.3, 2, 0.1),
        (2, 0.3, 1, 0.7),
        (3, 0.5, 2, 0.4),
        (4, 0.7, 2, 0.6),
        (5, None, None, None),
        (6, None, None, 0.25),
    ]
    assert board[0]["status"] == SUCCEEDED
    assert board[0]["model_id"] == model_id
    assert board[0]["trial"] == {"learning_rate": 0.01, "activation": "relu"}
    assert [entry["model_id"] for entry in board[1:]] == [None] * 5
    assert board[4]["status"] == QUEUED

    # The same order, from the histories as GET /v1/jobs/{id}/history serves them.
    def best(job_id: str) -> float:
        points = client.get(f"/v1/jobs/{job_id}/history").json()["points"]
        losses = [p["val_loss"] for p in points if p["val_loss"] is not None]
        return min(losses) if losses else math.inf

    assert [best(entry["job_id"]) for entry in board] == sorted(best(job) for job in jobs)


def test_sweep_status_follows_its_trials(client, database):
    dataset_id = add_dataset(database)
    sweep = post_sweep(client, dataset_id, GRID_3X2)
    jobs = [job.id for job in children(database, sweep["id"])]

    def state() -> tuple[str, dict[str, int]]:
        body = client.get(f"/v1/sweeps/{sweep['id']}").json()
        counts = {k: v for k, v in body["counts"].items() if v and k != "total"}
        return body["status"], counts

    def set_all(*statuses: str) -> None:
        for job_id, status in zip(jobs, statuses, strict=True):
            set_job(database, job_id, status=status)

    assert state() == ("queued", {"queued": 6})
    set_all(RUNNING, QUEUED, QUEUED, QUEUED, QUEUED, QUEUED)
    assert state() == ("running", {"running": 1, "queued": 5})
    set_all(SUCCEEDED, SUCCEEDED, QUEUED, QUEUED, QUEUED, QUEUED)  # between two trials
    assert state() == ("running", {"succeeded": 2, "queued": 4})
    set_all(SUCCEEDED, SUCCEEDED, SUCCEEDED, CANCELLED, CANCELLED, CANCELLING)
    assert state() == ("running", {"succeeded": 3, "cancelled": 2, "cancelling": 1})
    set_all(SUCCEEDED, SUCCEEDED, SUCCEEDED, CANCELLED, CANCELLED, CANCELLED)
    assert state() == ("cancelled", {"succeeded": 3, "cancelled": 3})
    set_all(SUCCEEDED, FAILED, SUCCEEDED, CANCELLED, CANCELLED, CANCELLED)
    assert state() == ("failed", {"succeeded": 2, "failed": 1, "cancelled": 3})
    set_all(*[SUCCEEDED] * 6)
    assert state() == ("succeeded", {"succeeded": 6})


# Cancelling.


def test_cancel_reaches_every_trial_and_repeating_it_changes_nothing(client, database):
    dataset_id = add_dataset(database)
    sweep = post_sweep(client, dataset_id, GRID_3X2)
    other = post_sweep(client, dataset_id, GRID_3X2)  # another sweep's trials stay queued
    jobs = [job.id for job in children(database, sweep["id"])]
    set_job(database, jobs[0], status=RUNNING, attempt=1, started_at=utcnow())
    finished = utcnow()
    set_job(database, jobs[1], status=SUCCEEDED, finished_at=finished, stop_reason="converged")

    response = client.post(f"/v1/sweeps/{sweep['id']}/cancel")
    assert response.status_code == 202  # a trial is still running: it stops at its next epoch
    body = response.json()
    assert body["status"] == "running"
    assert body["counts"]["cancelling"] == 1
    assert body["counts"]["succeeded"] == 1
    assert body["counts"]["cancelled"] == 4
    statuses = {entry["job_id"]: entry["status"] for entry in body["leaderboard"]}
    assert statuses == {
        jobs[0]: CANCELLING,
        jobs[1]: SUCCEEDED,
        **{job_id: CANCELLED for job_id in jobs[2:]},
    }
    running = get_job(database, jobs[0])
    assert running.finished_at is None
    assert running.stop_reason is None
    done = get_job(database, jobs[1])
    assert done.stop_reason == "converged"
    assert done.finished_at == finished
    cancelled = [get_job(database, job_id) for job_id in jobs[2:]]
    for job in cancelled:
        assert job.stop_reason == "cancelled"
        assert job.finished_at is not None
        assert client.get(f"/v1/jobs/{job.id}").json()["status"] == CANCELLED
    assert {job.status for job in children(database, other["id"])} == {QUEUED}

    again = client.post(f"/v1/sweeps/{sweep['id']}/cancel")
    assert again.status_code == 202
    assert again.json()["counts"] == body["counts"]
    assert [get_job(database, job_id).finished_at for job_id in jobs[2:]] == [
        job.finished_at for job in cancelled
    ]

    # The worker notices and ends the running trial; cancelling again is a plain 200.
    set_job(database, jobs[0], status=CANCELLED, stop_reason="cancelled", finished_at=utcnow())
    last = client.post(f"/v1/sweeps/{sweep['id']}/cancel")
    assert last.status_code == 200
    assert last.json()["status"] == "cancelled"
    assert last.json()["counts"]["cancelled"] == 5


def test_cancel_a_queued_sweep_cancels_every_trial_at_once(client, database):
    dataset_id = add_dataset(database)
    sweep = post_sweep(client, dataset_id, GRID_3X2)
    response = client.post(f"/v1/sweeps/{sweep['id']}/cancel")
    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
    assert response.json()["counts"]["cancelled"] == 6
    assert {job.status for job in children(database, sweep["id"])} == {CANCELLED}


# Listing and reading.


def test_jobs_can_be_listed_by_sweep(client, database):
    dataset_id = add_dataset(database)
    sweep = post_sweep(client, dataset_id, GRID_3X2)
    other = post_sweep(client, dataset_id, {"strategy": "grid", "space": {"init": ["he"]}})
    add_job(database, dataset_id)

    listed = client.get("/v1/jobs", params={"sweep_id": sweep["id"]}).json()
    assert sorted(job["id"] for job in listed["data"]) == sorted(
        entry["job_id"] for entry in sweep["leaderboard"]
    )
    assert {job["sweep_id"] for job in listed["data"]} == {sweep["id"]}
    assert {job["trial"]["activation"] for job in listed["data"]} == {"tanh", "relu"}
    assert listed["next_cursor"] is None

    paged = client.get("/v1/jobs", params={"sweep_id": sweep["id"], "limit": 4}).json()
    assert len(paged["data"]) == 4
    assert paged["next_cursor"] is not None

    assert len(client.get("/v1/jobs", params={"sweep_id": other["id"]}).json()["data"]) == 1
    assert len(client.get("/v1/jobs").json()["data"]) == 8
    for unknown in (uuid.uuid4().hex, "nul\x00id", "x" * 300):
        response = client.get("/v1/jobs", params={"sweep_id": unknown})
        assert response.status_code == 200
        assert response.json()["data"] == []


def test_list_sweeps_pages_newest_first_with_their_counts(client, database):
    dataset_id = add_dataset(database)
    made = [
        post_sweep(client, dataset_id, {"strategy": "grid", "space": {"hidden_units": units}})
        for units in ([4], [4, 8], [4, 8, 16])
    ]
    first = client.get("/v1/sweeps", params={"limit": 2}).json()
    assert [s["id"] for s in first["data"]] == [made[2]["id"], made[1]["id"]]
    assert [s["counts"]["total"] for s in first["data"]] == [3, 2]
    assert "leaderboard" not in first["data"][0]
    summary = {key: value for key, value in made[2].items() if key != "leaderboard"}
    assert first["data"][0] == summary
    second = client.get("/v1/sweeps", params={"limit": 2, "cursor": first["next_cursor"]}).json()
    assert [s["id"] for s in second["data"]] == [made[0]["id"]]
    assert second["next_cursor"] is None


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": 0}, "query.limit"),
        ({"limit": 101}, "query.limit"),
        ({"cursor": "nope"}, "query.cursor"),
    ],
)
def test_bad_list_parameters_are_422(client, params, field):
    problem = assert_problem(client.get("/v1/sweeps", params=params), 422)
    assert [error["field"] for error in problem["errors"]] == [field]


@pytest.mark.parametrize(
    ("path", "sweep_id"),
    [("0" * 32, "0" * 32), ("nul%00id", "nul\x00id"), ("x" * 300, "x" * 300)],
)
def test_an_unknown_sweep_is_a_404_problem(client, path, sweep_id):
    problem = assert_problem(client.get(f"/v1/sweeps/{path}"), 404)
    assert problem["detail"] == f"sweep {sweep_id!r} does not exist"
    assert_problem(client.post(f"/v1/sweeps/{path}/cancel"), 404)


def test_every_sweeps_operation_has_examples_and_problem_responses(client):
    paths = client.get("/openapi.json").json()["paths"]
    documented = {
        ("post", "/v1/sweeps"): ("202", {"422", "503"}),
        ("get", "/v1/sweeps"): ("200", {"422", "503"}),
        ("get", "/v1/sweeps/{sweep_id}"): ("200", {"404", "503"}),
        ("post", "/v1/sweeps/{sweep_id}/cancel"): ("200", {"404", "503"}),
    }
    for (method, path), (success, problems) in documented.items():
        operation = paths[path][method]
        assert operation["summary"], path
        assert operation["description"], path
        assert operation["operationId"].startswith("sweeps-"), path
        assert "example" in operation["responses"][success]["content"]["application/json"]
        for code in problems:
            assert list(operation["responses"][code]["content"]) == ["application/problem+json"]
    create = paths["/v1/sweeps"]["post"]["requestBody"]["content"]["application/json"]
    assert set(create["examples"]) == {"grid", "random"}


# Migration 0002 on a database with rows in it.


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh_database_url(request, tmp_path):
    """A database of its own, with no tables yet."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'upgrade.db'}"
        return
    if not POSTGRES_URL:
        pytest.skip("PostgreSQL tests need BACKPROP_TEST_POSTGRES_URL")
    url = create_postgres_database(prefix="backprop_sweeps_upgrade")
    yield url
    drop_postgres_database(url)


def test_migration_0002_keeps_every_job_with_its_history_checkpoint_and_model(
    fresh_database_url,
):
    # On SQLite, adding the foreign key rebuilds the jobs table; dropping the old table
    # with foreign keys on would take every child row with it (ON DELETE CASCADE).
    url = fresh_database_url
    upgrade(url, "0001")
    engine = create_engine(url)
    now = utcnow()
    tables = ("jobs", "job_history", "checkpoints", "models", "idempotency_keys")
    table = {name: Table(name, MetaData(), autoload_with=engine) for name in tables}  # as at 0001
    job = {
        "id": "a" * 32,
        "dataset_id": None,
        "status": SUCCEEDED,
        "model_type": "logistic_regression",
        "model_spec": asdict(ModelSpec()),
        "training_spec": TrainingSpec().to_dict(),
        "attempt": 1,
        "max_attempts": 3,
        "epoch": 2,
        "epochs": 2,
        "elapsed_seconds": 0.1,
        "created_at": now,
        "updated_at": now,
    }
    with engine.begin() as connection:
        connection.execute(insert(table["jobs"]).values(job))
        connection.execute(
            insert(table["job_history"]),
            [{"job_id": job["id"], **history_row(epoch)} for epoch in (1, 2)],
        )
        connection.execute(
            insert(table["checkpoints"]).values(
                job_id=job["id"], attempt=1, epoch=2, data=b"ckpt", created_at=now
            )
        )
        connection.execute(
            insert(table["models"]).values(
                id="b" * 32,
                job_id=job["id"],
                model_type="logistic_regression",
                metrics={},
                diagnostics={},
                artifact=b"npz",
                created_at=now,
            )
        )
        connection.execute(
            insert(table["idempotency_keys"]).values(
                key="k",
                request_sha256="0" * 64,
                job_id=job["id"],
                status_code=202,
                response={},
                created_at=now,
            )
        )

    def counts() -> dict[str, int]:
        with engine.connect() as connection:
            return {
                t: connection.execute(text(f"SELECT count(*) FROM {t}")).scalar() for t in tables
            }

    before = counts()
    assert before == {
        "jobs": 1,
        "job_history": 2,
        "checkpoints": 1,
        "models": 1,
        "idempotency_keys": 1,
    }
    upgrade(url, "0002")
    assert counts() == before
    with engine.connect() as connection:
        row = connection.execute(text("SELECT status, sweep_id, trial FROM jobs")).one()
    assert tuple(row) == (SUCCEEDED, None, None)
    downgrade(url, "0001")
    assert counts() == before
    upgrade(url, "head")
    assert counts() == before
    engine.dispose()


# A real worker drains a sweep.


@pytest.mark.slow
def test_a_worker_drains_a_two_by_two_grid_and_the_leaderboard_follows_the_histories(
    client, database, database_url
):
    dataset_id = add_dataset(database, rows=80)
    search = {
        "strategy": "grid",
        "space": {"learning_rate": [0.05, 0.5], "activation": ["tanh", "relu"]},
    }
    base = {
        "model": {"type": "two_layer_network", "hidden_units": 4},
        "training": {
            "optimizer": "gd",
            "epochs": 25,
            "early_stopping": None,
            "validation_fraction": 0.25,
        },
    }
    sweep = post_sweep(client, dataset_id, search, **base)
    worker = start_worker(
        service_env(database_url, poll_seconds=0.05, flush_seconds=0.05, heartbeat_seconds=0.5)
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            body = client.get(f"/v1/sweeps/{sweep['id']}").json()
            if body["status"] not in ("queued", "running"):
                break
            time.sleep(0.1)
    finally:
        stop(worker)

    assert body["status"] == "succeeded", body["counts"]
    assert body["counts"]["succeeded"] == 4
    best = {}
    for entry in body["leaderboard"]:
        assert entry["status"] == SUCCEEDED
        assert entry["model_id"] is not None
        points = client.get(f"/v1/jobs/{entry['job_id']}/history").json()["points"]
        assert [p["epoch"] for p in points] == list(range(1, 26))
        val_losses = [p["val_loss"] for p in points]
        best[entry["job_id"]] = min(val_losses)
        assert entry["best_val_loss"] == best[entry["job_id"]]
        assert entry["best_epoch"] == 1 + val_losses.index(best[entry["job_id"]])
        assert entry["final_train_loss"] == points[-1]["train_loss"]
    ranked = [entry["job_id"] for entry in body["leaderboard"]]
    assert ranked == sorted(best, key=best.get)
    assert len(set(best.values())) == 4  # distinct trials, distinct curves


def test_a_sweep_holds_out_a_fifth_unless_told_and_refuses_none(client, database):
    """Trials are ranked by validation loss: a job trains on every row by default, a sweep
    does not."""
    dataset_id = add_dataset(database)
    body = {
        "dataset_id": dataset_id,
        "training": {"epochs": 5},
        "search": {"strategy": "grid", "space": {"learning_rate": [0.1, 0.5]}},
    }
    response = client.post("/v1/sweeps", json=body)
    assert response.status_code == 202, response.text
    assert response.json()["training"]["validation_fraction"] == 0.2
    body["training"]["validation_fraction"] = 0.0
    problem = client.post("/v1/sweeps", json=body).json()
    assert problem["status"] == 422
    assert problem["errors"][0]["field"] == "training"
    assert "validation_fraction > 0" in problem["errors"][0]["message"]
