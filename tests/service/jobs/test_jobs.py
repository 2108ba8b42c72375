"""POST/GET /v1/jobs and cancel: validation against the engine, idempotency, filters, states.

No worker runs here: the tests play its part by writing Job and JobHistory
rows directly, as the worker does. The helpers below are shared with
test_job_history.py and test_job_events.py.
"""

import base64
import math
import re
import threading
import uuid
from dataclasses import asdict
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from engine import ACTIVATION_NAMES, HIDDEN_LAYER_FIELDS, ModelSpec, TrainingSpec
from engine.specs import model_spec_from_dict
from service.core.database import Database
from service.core.states import CANCELLED, CANCELLING, FAILED, QUEUED, RUNNING, SUCCEEDED
from service.core.tables import IdempotencyKey, Job, Model, utcnow
from service.jobs.schemas import CANONICAL_REQUEST
from service.jobs.service import STATUS_LIST_PATTERN
from service.jobs.specs import TrainingSpecIn, TwoLayerNetworkIn, default_model
from tests.service import live
from tests.service.factories import (
    add_dataset,
    add_history,
    add_job,
    assert_problem,
    history_row,
    set_job,
)

# A logistic regression's spec as the API shows it: the engine's, without a hidden layer.
LOGISTIC_SPEC = {
    name: value for name, value in asdict(ModelSpec()).items() if name not in HIDDEN_LAYER_FIELDS
}


# Helpers: rows as the datasets router and the worker would write them.


def count_jobs(database: Database) -> int:
    with database.reads() as session:
        return session.scalar(select(func.count()).select_from(Job))


def error_fields(body: dict[str, Any]) -> list[str]:
    return [error["field"] for error in body["errors"]]


# Creating jobs.


def test_post_with_only_a_dataset_id_queues_a_logistic_regression_with_every_default(
    client, database, settings
):
    dataset_id = add_dataset(database)
    response = client.post("/v1/jobs", json={"dataset_id": dataset_id})
    assert response.status_code == 202
    job = response.json()
    assert response.headers["location"] == f"/v1/jobs/{job['id']}"
    assert job["status"] == "queued"
    assert job["dataset_id"] == dataset_id
    assert job["model"] == LOGISTIC_SPEC
    assert job["model"]["type"] == "logistic_regression"
    assert job["training"] == TrainingSpec().to_dict()
    assert job["progress"] == {
        "epoch": 0,
        "epochs": TrainingSpec().epochs,
        "percent": 0.0,
        "train_loss": None,
        "val_loss": None,
        "train_accuracy": None,
        "val_accuracy": None,
        "best_epoch": None,
        "elapsed_seconds": 0.0,
        "remaining_seconds": None,
    }
    assert job["attempts"] == 0
    assert job["max_attempts"] == settings.max_attempts
    assert job["model_id"] is None
    assert job["stop_reason"] is job["error"] is job["error_code"] is None
    assert job["started_at"] is job["finished_at"] is job["heartbeat_at"] is None
    assert job["links"] == {
        "self": f"/v1/jobs/{job['id']}",
        "history": f"/v1/jobs/{job['id']}/history",
        "events": f"/v1/jobs/{job['id']}/events",
        "cancel": f"/v1/jobs/{job['id']}/cancel",
        "model": None,
    }
    assert client.get(job["links"]["self"]).json() == job


def test_stored_specs_are_complete_and_rebuild_the_engine_specs(client, database):
    dataset_id = add_dataset(database)
    body = {**CANONICAL_REQUEST, "dataset_id": dataset_id}
    response = client.post("/v1/jobs", json=body)
    assert response.status_code == 202
    with database.reads() as session:
        job = session.get(Job, response.json()["id"])
    # The contract with the worker: complete dicts that the engine's own readers rebuild.
    assert model_spec_from_dict(job.model_spec) == ModelSpec(
        type="two_layer_network", hidden_units=16, activation="tanh", init="random"
    )
    training = TrainingSpec.from_dict(job.training_spec)
    assert training.to_dict() == job.training_spec
    assert set(job.training_spec) == set(TrainingSpec().to_dict())
    assert training.optimizer == "gd"
    assert training.learning_rate == 0.5
    assert training.early_stopping.patience == 10
    assert training.early_stopping.restore_best is False  # the engine's default, filled in
    assert job.model_type == "two_layer_network"
    assert job.epochs == 200
    assert response.json()["training"]["early_stopping"] == {
        "patience": 10,
        "min_delta": 0.0,
        "restore_best": False,
    }


def test_request_schemas_carry_the_engines_defaults():
    assert default_model().to_engine() == ModelSpec()
    network = TwoLayerNetworkIn(type="two_layer_network")
    assert network.to_engine() == ModelSpec(type="two_layer_network")
    assert TrainingSpecIn().to_engine() == TrainingSpec()


def test_early_stopping_null_turns_it_off(client, database):
    dataset_id = add_dataset(database)
    body = {"dataset_id": dataset_id, "training": {"early_stopping": None}}
    response = client.post("/v1/jobs", json=body)
    assert response.status_code == 202
    assert response.json()["training"]["early_stopping"] is None


def test_unknown_activation_is_422_listing_the_allowed_names(client, database):
    dataset_id = add_dataset(database)
    body = {"dataset_id": dataset_id, "model": {"type": "two_layer_network", "activation": "swish"}}
    problem = assert_problem(client.post("/v1/jobs", json=body), 422)
    assert error_fields(problem) == ["model.activation"]
    for name in ACTIVATION_NAMES:
        assert repr(name) in problem["errors"][0]["message"]
    assert "model.activation" in problem["detail"]


def test_lbfgs_with_a_batch_size_is_422_on_training_batch_size(client, database):
    dataset_id = add_dataset(database)
    body = {"dataset_id": dataset_id, "training": {"optimizer": "lbfgs", "batch_size": 32}}
    problem = assert_problem(client.post("/v1/jobs", json=body), 422)
    assert problem["errors"] == [
        {
            "field": "training.batch_size",
            "message": "lbfgs is a full-batch method: batch_size must be null",
        }
    ]
    assert problem["detail"] == (
        "training.batch_size: lbfgs is a full-batch method: batch_size must be null"
    )


@pytest.mark.parametrize(
    ("spec", "field", "message"),
    [
        ({"training": {"validation_fraction": 0.7}}, "training.validation_fraction", "<= 0.5"),
        ({"training": {"learning_rate": 0.0}}, "training.learning_rate", "> 0.0"),
        ({"training": {"epochs": 0}}, "training.epochs", ">= 1"),
        ({"training": {"early_stopping": {"patience": 0}}}, "training.early_stopping.patience", ""),
        ({"training": {"beta2": 1.0}}, "training.beta2", "< 1.0"),
        (
            {"model": {"type": "two_layer_network", "hidden_units": 0}},
            "model.hidden_units",
            ">= 1",
        ),
        (
            {"model": {"type": "logistic_regression", "init_scale": -1.0}},
            "model.init_scale",
            "> 0.0",
        ),
    ],
)
def test_engine_range_checks_are_422_naming_the_field(client, database, spec, field, message):
    dataset_id = add_dataset(database)
    problem = assert_problem(client.post("/v1/jobs", json={"dataset_id": dataset_id, **spec}), 422)
    assert error_fields(problem) == [field]
    assert message in problem["errors"][0]["message"]


@pytest.mark.parametrize(
    ("body_extra", "field"),
    [
        ({"priority": 1}, "priority"),
        ({"model": {"type": "two_layer_network", "depth": 3}}, "model.depth"),
        ({"model": {"type": "logistic_regression", "hidden_units": 5}}, "model.hidden_units"),
        ({"model": {"type": "logistic_regression", "activation": "relu"}}, "model.activation"),
        ({"training": {"momentun": 0.9}}, "training.momentun"),
        ({"training": {"early_stopping": {"patient": 5}}}, "training.early_stopping.patient"),
    ],
)
def test_unknown_fields_are_422_naming_them(client, database, body_extra, field):
    dataset_id = add_dataset(database)
    response = client.post("/v1/jobs", json={"dataset_id": dataset_id, **body_extra})
    problem = assert_problem(response, 422)
    assert problem["errors"] == [{"field": field, "message": "Extra inputs are not permitted"}]


@pytest.mark.parametrize(
    ("training", "field"),
    [
        ({"epochs": "10"}, "training.epochs"),
        ({"epochs": 2.5}, "training.epochs"),
        ({"shuffle": "yes"}, "training.shuffle"),
        ({"learning_rate": True}, "training.learning_rate"),
        ({"optimizer": "rmsprop"}, "training.optimizer"),
        ({"dtype": "float16"}, "training.dtype"),
    ],
)
def test_wrong_types_and_names_are_422(client, database, training, field):
    dataset_id = add_dataset(database)
    body = {"dataset_id": dataset_id, "training": training}
    problem = assert_problem(client.post("/v1/jobs", json=body), 422)
    assert field in error_fields(problem)


def test_non_finite_numbers_are_422(client, database):
    dataset_id = add_dataset(database)
    content = '{"dataset_id": "DATASET", "training": {"l2": NaN}}'.replace("DATASET", dataset_id)
    response = client.post(
        "/v1/jobs", content=content, headers={"content-type": "application/json"}
    )
    problem = assert_problem(response, 422)
    assert problem["errors"][0]["field"] == "training.l2"


def test_hidden_units_over_the_limit_is_422_naming_the_limit(client, database, settings):
    dataset_id = add_dataset(database)
    units = settings.max_hidden_units + 1
    body = {"dataset_id": dataset_id, "model": {"type": "two_layer_network", "hidden_units": units}}
    problem = assert_problem(client.post("/v1/jobs", json=body), 422)
    assert error_fields(problem) == ["model.hidden_units"]
    assert problem["limit"] == settings.max_hidden_units
    assert problem["detail"] == (
        f"model.hidden_units: {units} is over this service's limit of "
        f"{settings.max_hidden_units} (BACKPROP_MAX_HIDDEN_UNITS)"
    )


def test_epochs_over_the_limit_is_422_naming_the_limit(client, database, settings):
    dataset_id = add_dataset(database)
    body = {"dataset_id": dataset_id, "training": {"epochs": settings.max_epochs + 1}}
    problem = assert_problem(client.post("/v1/jobs", json=body), 422)
    assert error_fields(problem) == ["training.epochs"]
    assert f"limit of {settings.max_epochs} (BACKPROP_MAX_EPOCHS)" in problem["detail"]


def test_unknown_dataset_is_a_422_problem_naming_dataset_id(client, database):
    missing = uuid.uuid4().hex
    problem = assert_problem(client.post("/v1/jobs", json={"dataset_id": missing}), 422)
    assert problem["detail"] == f"dataset_id: dataset '{missing}' does not exist"
    assert problem["errors"] == [
        {"field": "dataset_id", "message": f"dataset '{missing}' does not exist"}
    ]
    assert count_jobs(database) == 0


@pytest.mark.parametrize("dataset_id", ["nul\x00id", "x" * 500, ""])
def test_a_dataset_id_no_dataset_can_have_is_a_422_problem(client, dataset_id):
    assert_problem(client.post("/v1/jobs", json={"dataset_id": dataset_id}), 422)


def test_a_dataset_with_one_class_is_422(client, database):
    dataset_id = add_dataset(database, classes=("spam",))
    problem = assert_problem(client.post("/v1/jobs", json={"dataset_id": dataset_id}), 422)
    assert error_fields(problem) == ["dataset_id"]
    assert "a classifier needs at least 2" in problem["detail"]


def test_a_missing_body_is_422(client):
    problem = assert_problem(client.post("/v1/jobs"), 422)
    assert problem["errors"]


# Idempotency.


def test_same_idempotency_key_and_body_replays_the_first_response(client, database):
    dataset_id = add_dataset(database)
    body = {"dataset_id": dataset_id, "training": {"epochs": 50}}
    headers = {"Idempotency-Key": "order-1"}
    first = client.post("/v1/jobs", json=body, headers=headers)
    set_job(database, first.json()["id"], status=RUNNING, attempt=1)  # the job moves on
    again = client.post("/v1/jobs", json=body, headers=headers)
    assert first.status_code == again.status_code == 202
    assert again.json() == first.json()  # the first answer, not the job's state now
    assert again.headers["location"] == first.headers["location"]
    assert again.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert count_jobs(database) == 1


def test_a_body_spelling_out_the_defaults_is_the_same_request(client, database):
    dataset_id = add_dataset(database)
    headers = {"Idempotency-Key": "order-2"}
    first = client.post("/v1/jobs", json={"dataset_id": dataset_id}, headers=headers)
    spelled_out = {
        "dataset_id": dataset_id,
        "model": LOGISTIC_SPEC,
        "training": TrainingSpec().to_dict(),
    }
    again = client.post("/v1/jobs", json=spelled_out, headers=headers)
    assert again.status_code == 202
    assert again.json() == first.json()
    assert count_jobs(database) == 1


def test_same_idempotency_key_with_another_body_is_422(client, database):
    dataset_id = add_dataset(database)
    headers = {"Idempotency-Key": "order-3"}
    first = client.post("/v1/jobs", json={"dataset_id": dataset_id}, headers=headers)
    other = {"dataset_id": dataset_id, "training": {"epochs": 7}}
    problem = assert_problem(client.post("/v1/jobs", json=other, headers=headers), 422)
    assert error_fields(problem) == ["header.Idempotency-Key"]
    assert problem["detail"] == (
        f"header.Idempotency-Key: 'order-3' was already used with a different request "
        f"(which created job {first.json()['id']}); use a new key for a new request"
    )
    assert count_jobs(database) == 1


def test_different_keys_create_different_jobs(client, database):
    dataset_id = add_dataset(database)
    for key in ("a", "b"):
        response = client.post(
            "/v1/jobs", json={"dataset_id": dataset_id}, headers={"Idempotency-Key": key}
        )
        assert response.status_code == 202
    assert count_jobs(database) == 2


def test_an_idempotency_key_over_200_characters_is_422(client, database):
    dataset_id = add_dataset(database)
    response = client.post(
        "/v1/jobs", json={"dataset_id": dataset_id}, headers={"Idempotency-Key": "k" * 201}
    )
    problem = assert_problem(response, 422)
    assert error_fields(problem) == ["header.Idempotency-Key"]
    assert count_jobs(database) == 0


@pytest.mark.slow
def test_twenty_concurrent_posts_with_one_key_create_exactly_one_job(database_url, database):
    dataset_id = add_dataset(database)
    port = live.free_port()
    api = live.start_api(live.service_env(database_url), port)
    base_url = f"http://127.0.0.1:{port}"
    try:
        live.wait_until_ready(base_url)
        start = threading.Barrier(20)
        responses: list[httpx.Response] = []

        def post() -> None:
            with httpx.Client(base_url=base_url, timeout=60) as http:
                start.wait()
                responses.append(
                    http.post(
                        "/v1/jobs",
                        json={"dataset_id": dataset_id},
                        headers={"Idempotency-Key": "burst"},
                    )
                )

        threads = [threading.Thread(target=post) for _ in range(20)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        live.stop(api)
    assert [r.status_code for r in responses] == [202] * 20
    assert len({r.text for r in responses}) == 1
    assert len({r.headers["location"] for r in responses}) == 1
    assert sum(r.headers.get("idempotent-replayed") == "true" for r in responses) == 19
    assert count_jobs(database) == 1
    with database.reads() as session:
        assert session.scalar(select(func.count()).select_from(IdempotencyKey)) == 1


# Listing.


def test_list_filters_apply_before_the_limit(client, database):
    old_dataset, new_dataset = add_dataset(database), add_dataset(database, rows=30)
    # The one matching job is the oldest: filtering after a page of 2 would find nothing.
    target = add_job(
        database, old_dataset, status=RUNNING, model_type="two_layer_network", age_seconds=60
    )
    for age in range(5):
        add_job(database, new_dataset, age_seconds=age)
    for query in (
        {"status": "running"},
        {"dataset_id": old_dataset},
        {"model_type": "two_layer_network"},
        {"status": "running", "dataset_id": old_dataset, "model_type": "two_layer_network"},
    ):
        response = client.get("/v1/jobs", params={**query, "limit": 2})
        assert response.status_code == 200, response.text
        page = response.json()
        assert [job["id"] for job in page["data"]] == [target], query
        assert page["next_cursor"] is None


def test_list_accepts_several_statuses(client, database):
    dataset_id = add_dataset(database)
    ids = {
        status: add_job(database, dataset_id, status=status, age_seconds=age)
        for age, status in enumerate((QUEUED, RUNNING, SUCCEEDED, FAILED))
    }
    for params in ({"status": "queued,failed"}, [("status", "queued"), ("status", "failed")]):
        page = client.get("/v1/jobs", params=params).json()
        assert [job["id"] for job in page["data"]] == [ids[QUEUED], ids[FAILED]]


def test_list_pages_newest_first_with_a_cursor(client, database):
    dataset_id = add_dataset(database)
    other = add_dataset(database, rows=30)
    queued = [add_job(database, dataset_id, age_seconds=age) for age in range(5)]
    for age in range(3):  # interleaved jobs the filter leaves out
        add_job(database, other, age_seconds=age + 0.5)
    seen: list[str] = []
    pages = 0
    cursor = None
    while True:
        params = {"dataset_id": dataset_id, "limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = client.get("/v1/jobs", params=params).json()
        seen += [job["id"] for job in page["data"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == queued  # newest first, each once
    assert pages == 3


def test_list_default_page_size_is_50(client, database):
    dataset_id = add_dataset(database)
    with database.writes() as session:
        now = utcnow()
        for index in range(51):
            session.add(
                Job(
                    dataset_id=dataset_id,
                    status=QUEUED,
                    model_type="logistic_regression",
                    model_spec=asdict(ModelSpec()),
                    training_spec=TrainingSpec().to_dict(),
                    epochs=500,
                    created_at=now - timedelta(seconds=index),
                )
            )
        session.commit()
    page = client.get("/v1/jobs").json()
    assert len(page["data"]) == 50
    assert page["next_cursor"] is not None


# Well-formed, but with a naive time: not a cursor this service issued.
NAIVE_CURSOR = base64.urlsafe_b64encode(b'["2025-01-01T00:00:00", "abc"]').decode().rstrip("=")


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"status": "done"}, "query.status"),
        ({"status": "queued,paused"}, "query.status"),
        ({"model_type": "svm"}, "query.model_type"),
        ({"limit": 0}, "query.limit"),
        ({"limit": 101}, "query.limit"),
        ({"cursor": "not-a-cursor"}, "query.cursor"),
        ({"cursor": NAIVE_CURSOR}, "query.cursor"),
    ],
)
def test_bad_list_parameters_are_422(client, params, field):
    problem = assert_problem(client.get("/v1/jobs", params=params), 422)
    assert error_fields(problem) == [field]


def test_unknown_status_names_the_allowed_states(client):
    problem = assert_problem(client.get("/v1/jobs", params={"status": "done"}), 422)
    message = (
        "'done' is not one of "
        "['queued', 'running', 'cancelling', 'succeeded', 'failed', 'cancelled']"
    )
    assert problem["detail"] == f"query.status: {message}"
    assert problem["errors"] == [{"field": "query.status", "message": message}]


# Reading one job.


def test_get_an_unknown_job_is_a_404_problem(client):
    missing = uuid.uuid4().hex
    problem = assert_problem(client.get(f"/v1/jobs/{missing}"), 404)
    assert problem["detail"] == f"job '{missing}' does not exist"


@pytest.mark.parametrize("job_id", ["%00", "a%00b", "x" * 300])
def test_get_an_id_no_job_can_have_is_a_404_problem(client, job_id):
    assert_problem(client.get(f"/v1/jobs/{job_id}"), 404)
    assert_problem(client.post(f"/v1/jobs/{job_id}/cancel"), 404)


def test_progress_reports_percent_and_remaining_seconds(client, database):
    job_id = add_job(database, add_dataset(database), status=RUNNING, epochs=200)
    add_history(
        database,
        job_id,
        [history_row(epoch) for epoch in range(1, 51)],
        epoch=50,
        elapsed_seconds=10.0,
        train_loss=0.25,
        val_loss=0.3,
        train_accuracy=0.9,
        val_accuracy=0.85,
        best_epoch=48,
        started_at=utcnow(),
        heartbeat_at=utcnow(),
    )
    job = client.get(f"/v1/jobs/{job_id}").json()
    assert job["progress"] == {
        "epoch": 50,
        "epochs": 200,
        "percent": 25.0,
        "train_loss": 0.25,
        "val_loss": 0.3,
        "train_accuracy": 0.9,
        "val_accuracy": 0.85,
        "best_epoch": 48,
        "elapsed_seconds": 10.0,
        "remaining_seconds": pytest.approx(30.0),  # 0.2 s per epoch, 150 epochs to go
    }
    assert job["attempts"] == 1
    assert job["started_at"] is not None
    assert job["heartbeat_at"] is not None


def test_remaining_seconds_respects_the_time_limit(client, database):
    job_id = add_job(database, add_dataset(database), status=RUNNING, epochs=1000)
    with database.reads() as session:
        spec = session.get(Job, job_id).training_spec
    set_job(
        database,
        job_id,
        training_spec={**spec, "time_limit": 12.0},
        epoch=10,
        elapsed_seconds=10.0,
    )
    assert client.get(f"/v1/jobs/{job_id}").json()["progress"]["remaining_seconds"] == 2.0


def test_a_succeeded_job_is_100_percent_and_links_its_model(client, database):
    dataset_id = add_dataset(database)
    job_id = add_job(database, dataset_id, status=SUCCEEDED, epochs=200)
    set_job(
        database,
        job_id,
        epoch=80,
        elapsed_seconds=4.0,
        stop_reason="early_stopped",
        finished_at=utcnow(),
    )
    with database.writes() as session:
        model = Model(
            job_id=job_id,
            dataset_id=dataset_id,
            model_type="logistic_regression",
            metrics={"stop_reason": "early_stopped"},
            diagnostics={},
            artifact=b"npz",
        )
        session.add(model)
        session.commit()
        model_id = model.id
    job = client.get(f"/v1/jobs/{job_id}").json()
    assert job["progress"]["percent"] == 100.0
    assert job["progress"]["remaining_seconds"] == 0.0
    assert job["stop_reason"] == "early_stopped"
    assert job["model_id"] == model_id
    assert job["links"]["model"] == f"/v1/models/{model_id}"
    listed = client.get("/v1/jobs").json()["data"]
    assert listed[0]["model_id"] == model_id


def test_a_diverged_job_reports_null_losses_never_nan(client, database):
    job_id = add_job(database, add_dataset(database), status=SUCCEEDED)
    # PostgreSQL keeps a NaN a buggy writer might store; SQLite turns it into NULL.
    set_job(
        database,
        job_id,
        epoch=3,
        train_loss=math.nan,
        val_loss=math.inf,
        elapsed_seconds=0.3,
        stop_reason="diverged",
        finished_at=utcnow(),
    )
    response = client.get(f"/v1/jobs/{job_id}")
    assert "NaN" not in response.text
    assert "Infinity" not in response.text
    progress = response.json()["progress"]
    assert progress["train_loss"] is None
    assert progress["val_loss"] is None
    assert response.json()["stop_reason"] == "diverged"


def test_a_failed_job_reports_its_error(client, database):
    job_id = add_job(database, add_dataset(database), status=FAILED)
    set_job(
        database,
        job_id,
        attempt=3,
        error="the worker was lost 3 times",
        error_code="worker_lost",
        finished_at=utcnow(),
    )
    job = client.get(f"/v1/jobs/{job_id}").json()
    assert (job["status"], job["error_code"], job["attempts"]) == (FAILED, "worker_lost", 3)
    assert job["error"] == "the worker was lost 3 times"


# Cancelling.


def test_cancel_a_queued_job_cancels_it_at_once_and_repeating_is_harmless(client, database):
    job_id = add_job(database, add_dataset(database))
    first = client.post(f"/v1/jobs/{job_id}/cancel")
    assert first.status_code == 200
    job = first.json()
    assert job["status"] == CANCELLED
    assert job["stop_reason"] == "cancelled"
    assert job["finished_at"] is not None
    assert job["progress"]["remaining_seconds"] == 0.0
    again = client.post(f"/v1/jobs/{job_id}/cancel")
    assert again.status_code == 200
    assert again.json() == job
    assert client.get(f"/v1/jobs/{job_id}").json() == job


def test_cancel_a_running_job_sets_cancelling(client, database):
    job_id = add_job(database, add_dataset(database), status=RUNNING)
    first = client.post(f"/v1/jobs/{job_id}/cancel")
    assert first.status_code == 202
    assert first.json()["status"] == CANCELLING
    assert first.json()["finished_at"] is None
    assert first.json()["stop_reason"] is None  # the worker sets it when it stops
    again = client.post(f"/v1/jobs/{job_id}/cancel")
    assert again.status_code == 202
    assert again.json() == first.json()


@pytest.mark.parametrize("status", [SUCCEEDED, FAILED, CANCELLED])
def test_cancel_a_finished_job_changes_nothing(client, database, status):
    job_id = add_job(database, add_dataset(database), status=status)
    set_job(database, job_id, stop_reason="max_epochs", finished_at=utcnow())
    before = client.get(f"/v1/jobs/{job_id}").json()
    response = client.post(f"/v1/jobs/{job_id}/cancel")
    assert response.status_code == 200
    assert response.json() == before


def test_cancel_an_unknown_job_is_a_404_problem(client):
    assert_problem(client.post(f"/v1/jobs/{uuid.uuid4().hex}/cancel"), 404)


# The OpenAPI page.


def test_every_jobs_operation_has_examples_and_problem_responses(client):
    spec = client.get("/openapi.json").json()
    operations = {
        (method, path): operation
        for path, item in spec["paths"].items()
        if path.startswith("/v1/jobs")
        for method, operation in item.items()
    }
    assert len(operations) == 7
    for key, operation in operations.items():
        contents = [
            content
            for response in operation["responses"].values()
            for content in response.get("content", {}).values()
        ]
        assert any("example" in c or "examples" in c for c in contents), key
        assert any(code.startswith("4") for code in operation["responses"]), key
        assert operation["operationId"].startswith("jobs-"), key
    create = operations[("post", "/v1/jobs")]
    examples = create["requestBody"]["content"]["application/json"]["examples"]
    assert examples["canonical"]["value"] == CANONICAL_REQUEST
    assert any(p["name"] == "Idempotency-Key" for p in create["parameters"])
    events = operations[("get", "/v1/jobs/{job_id}/events")]
    assert "text/event-stream" in events["responses"]["200"]["content"]


# The status filter: the document's pattern is the parser's (jobs.service.STATUS_LIST_PATTERN).


@pytest.mark.parametrize("value", ["queued", "queued,running", " queued , failed ", "queued,,", ""])
def test_a_status_filter_matching_the_documented_pattern_is_a_page(client, value):
    assert re.fullmatch(STATUS_LIST_PATTERN, value)
    assert client.get("/v1/jobs", params={"status": value}).status_code == 200


@pytest.mark.parametrize("value", ["queued\t", "queued;running", "QUEUED", "done"])
def test_a_status_filter_outside_the_documented_pattern_is_422(client, value):
    assert not re.fullmatch(STATUS_LIST_PATTERN, value)
    problem = assert_problem(client.get("/v1/jobs", params={"status": value}), 422)
    assert error_fields(problem) == ["query.status"]
