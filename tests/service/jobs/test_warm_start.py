"""POST /v1/jobs with `warm_start`: the parent checked in one 422, the lineage recorded.

Datasets are real CSV uploads; jobs are trained by the worker's own JobRun, in this
process, on the real database of each backend (SQLite, and PostgreSQL when configured).
"""

import threading

import numpy as np
import pytest
from sqlalchemy import delete

from service.core.tables import Model
from service.jobs.schemas import JobCreate
from service.jobs.service import request_sha256
from service.queue.claims import claim_job
from service.queue.job_run import JobRun
from tests.service.factories import assert_problem, history_epochs

NETWORK = {"type": "two_layer_network", "hidden_units": 8, "activation": "tanh"}
PREPROCESSING_DEFAULTS = {
    "impute": "mean",
    "fill_value": 0.0,
    "missing_indicator": False,
    "max_categories": 1000,
    "min_frequency": 1,
    "standardize": True,
    "categorical": [],
    "ignore": [],
}


def table_csv(rows: int, seed: int, *, header: str = "a,b,c,y", levels=("x", "y", "w")) -> bytes:
    """a and c numbers, b words; the label y (0/1) sits in a and b."""
    rng = np.random.default_rng(seed)
    lines = [header]
    for i in range(rows):
        label = i % 2
        word = levels[label] if rng.random() < 0.8 else levels[-1]
        lines.append(f"{rng.normal() + 2 * label:.4f},{word},{rng.normal():.4f},{label}")
    return ("\n".join(lines) + "\n").encode()


def upload(client, body: bytes, name: str, label: str = "y") -> str:
    response = client.post(
        "/v1/datasets",
        params={"name": name, "label": label},
        content=body,
        headers={"content-type": "text/csv"},
    )
    assert response.status_code in (200, 201), response.text
    return response.json()["id"]


def run_queued_job(database, settings) -> None:
    """Claim the oldest queued job and train it to its end, as a worker does."""
    claim = claim_job(database=database, worker_id="test-worker", settings=settings)
    assert claim is not None
    JobRun(database, settings, claim, threading.Event()).run()


def train(client, database, settings, body: dict) -> dict:
    """POST the job, run it, and return it as GET /v1/jobs/{id} shows it."""
    response = client.post("/v1/jobs", json=body)
    assert response.status_code == 202, response.text
    run_queued_job(database, settings)
    return client.get(f"/v1/jobs/{response.json()['id']}").json()


@pytest.fixture
def parent(client, database, settings) -> str:
    """A network trained on a CSV of a (numbers), b (words), c (numbers), label y."""
    dataset_id = upload(client, table_csv(60, seed=1), "parent")
    job = train(
        client,
        database,
        settings,
        {"dataset_id": dataset_id, "model": NETWORK, "training": {"epochs": 40}},
    )
    assert job["status"] == "succeeded", job
    return job["model_id"]


def test_a_child_fine_tunes_its_parent_and_the_model_names_its_lineage(
    client, database, settings, parent
):
    # The child's b lists its levels otherwise (no "w"): codes are mapped by name.
    child_data = upload(client, table_csv(50, seed=2, levels=("x", "y", "x")), "child")
    body = {
        "dataset_id": child_data,
        "model": NETWORK,
        "training": {"epochs": 5, "early_stopping": None},
        "warm_start": {"model_id": parent},
    }
    created = client.post("/v1/jobs", json=body)
    assert created.status_code == 202, created.text
    assert created.json()["warm_start"] == {"model_id": parent}
    assert created.json()["parent_model_id"] == parent
    parent_model = client.get(f"/v1/models/{parent}").json()
    assert created.json()["training"]["preprocessing"] == parent_model["training"]["preprocessing"]
    run_queued_job(database, settings)
    job = client.get(f"/v1/jobs/{created.json()['id']}").json()
    assert job["status"] == "succeeded", job

    child = client.get(f"/v1/models/{job['model_id']}").json()
    assert child["parent_model_id"] == parent
    assert child["lineage"] == [parent]
    assert child["links"]["parent"] == f"/v1/models/{parent}"
    assert child["columns"] == parent_model["columns"]  # the parent's encoding, not refitted
    assert parent_model["parent_model_id"] is None
    assert parent_model["lineage"] == []
    assert parent_model["links"]["parent"] is None

    grandchild_job = train(
        client, database, settings, {**body, "warm_start": {"model_id": child["id"]}}
    )
    grandchild = client.get(f"/v1/models/{grandchild_job['model_id']}").json()
    assert grandchild["lineage"] == [child["id"], parent]
    listed = client.get("/v1/models", params={"job_id": grandchild_job["id"]}).json()["data"]
    assert [m["lineage"] for m in listed] == [[child["id"], parent]]


def test_an_unknown_parent_is_422_at_warm_start_model_id(client, database):
    dataset_id = upload(client, table_csv(20, seed=3), "data")
    missing = "f" * 32
    body = {"dataset_id": dataset_id, "warm_start": {"model_id": missing}}
    problem = assert_problem(client.post("/v1/jobs", json=body), 422)
    assert problem["detail"] == f"warm_start.model_id: model '{missing}' does not exist"
    assert problem["errors"] == [
        {"field": "warm_start.model_id", "message": f"model '{missing}' does not exist"}
    ]


def test_every_difference_from_the_parent_is_listed_in_one_422(client, parent):
    # a holds words (a kind change), b is gone, d is new, the label column is z, class 2
    rng = np.random.default_rng(4)
    lines = ["a,c,d,z"] + [f"w{i % 3},{rng.normal():.3f},{i % 4 / 2},{i % 3}" for i in range(30)]
    dataset_id = upload(client, ("\n".join(lines) + "\n").encode(), "other", label="z")
    body = {
        "dataset_id": dataset_id,
        "model": {"type": "two_layer_network", "hidden_units": 4, "activation": "relu"},
        "training": {"preprocessing": {"impute": "median"}},
        "warm_start": {"model_id": parent},
    }
    problem = assert_problem(client.post("/v1/jobs", json=body), 422)
    shown = {**PREPROCESSING_DEFAULTS}
    messages = [
        "model.hidden_units: the parent model has 8, the request 4",
        "model.activation: the parent model has 'tanh', the request 'relu'",
        "missing columns: the data lacks the parent's input columns ['b']",
        "extra columns: the parent model was not trained on ['d']",
        "kind change: column 'a' is numeric in the parent model, categorical in the data",
        "new classes: labels [2] are not among the parent model's classes [0, 1]; "
        "a fixed output layer cannot learn a new class",
        f"label column: the parent model predicts 'y', dataset '{dataset_id}' labels 'z'",
    ]
    preprocessing = (
        "a warm start uses its parent's fitted preprocessing as it is: leave preprocessing "
        f"out, or give the parent's own {shown}"
    )
    assert problem["errors"] == [
        *({"field": "warm_start.model_id", "message": m} for m in messages),
        {"field": "training.preprocessing", "message": preprocessing},
    ]
    assert problem["detail"] == (
        f"model '{parent}' cannot be fine-tuned on this request: "
        + "; ".join(f"{e['field']}: {e['message']}" for e in problem["errors"])
    )


def test_another_model_type_is_422(client, parent):
    dataset_id = upload(client, table_csv(20, seed=5), "same columns")
    body = {
        "dataset_id": dataset_id,
        "model": {"type": "logistic_regression"},
        "warm_start": {"model_id": parent},
    }
    problem = assert_problem(client.post("/v1/jobs", json=body), 422)
    assert problem["errors"] == [
        {
            "field": "warm_start.model_id",
            "message": "model.type: the parent model has 'two_layer_network', "
            "the request 'logistic_regression'",
        }
    ]


def test_without_a_model_the_job_takes_the_parents_model_spec(client, parent):
    dataset_id = upload(client, table_csv(20, seed=9), "same columns")
    body = {"dataset_id": dataset_id, "warm_start": {"model_id": parent}}
    created = client.post("/v1/jobs", json=body)
    assert created.status_code == 202, created.text
    assert created.json()["model"] == client.get(f"/v1/models/{parent}").json()["model"]
    assert created.json()["model"]["hidden_units"] == 8


def test_the_parents_own_preprocessing_is_accepted(client, parent):
    dataset_id = upload(client, table_csv(20, seed=6), "same columns")
    body = {
        "dataset_id": dataset_id,
        "model": NETWORK,
        "training": {"preprocessing": PREPROCESSING_DEFAULTS},
        "warm_start": {"model_id": parent},
    }
    assert client.post("/v1/jobs", json=body).status_code == 202


def test_a_parent_deleted_before_training_fails_the_job_clearly(client, database, settings, parent):
    dataset_id = upload(client, table_csv(20, seed=7), "child")
    body = {"dataset_id": dataset_id, "model": NETWORK, "warm_start": {"model_id": parent}}
    created = client.post("/v1/jobs", json=body)
    assert created.status_code == 202, created.text
    with database.writes() as session, session.begin():
        session.execute(delete(Model).where(Model.id == parent))
    run_queued_job(database, settings)
    job = client.get(f"/v1/jobs/{created.json()['id']}").json()
    assert job["status"] == "failed"
    assert job["error_code"] == "parent_model_missing"
    assert job["error"] == f"the parent model {parent} was deleted before the job was trained"
    assert job["attempts"] == 1  # failed once, for good: no retry loop
    assert job["warm_start"] == {"model_id": parent}  # the request, kept
    assert job["parent_model_id"] is None  # the link, gone with the parent


def test_a_sweep_refuses_warm_start(client, parent):
    dataset_id = upload(client, table_csv(20, seed=8), "data")
    body = {
        "dataset_id": dataset_id,
        "search": {"strategy": "grid", "space": {"learning_rate": [0.01, 0.1]}},
        "warm_start": {"model_id": parent},
    }
    problem = assert_problem(client.post("/v1/sweeps", json=body), 422)
    assert problem["errors"] == [
        {"field": "warm_start", "message": "Extra inputs are not permitted"}
    ]


# request_sha256 of these bodies before warm_start existed (computed on the main branch).
HASHES_BEFORE = {
    "minimal": "59a68f12416e216d9ba528e19631e15b3bd63fe8540fe794fecbe07393a35e03",
    "network": "09c971f75ee850c999f3df812d56c879886f245cfa807d433ef8b6427af4edfc",
}


def test_a_request_without_warm_start_hashes_as_before():
    """Idempotency keys stored before warm_start existed still match their requests."""
    minimal = JobCreate(dataset_id="a" * 32)
    network = JobCreate(
        dataset_id="a" * 32, model={"type": "two_layer_network"}, training={"epochs": 7}
    )
    assert request_sha256(minimal) == HASHES_BEFORE["minimal"]
    assert request_sha256(network) == HASHES_BEFORE["network"]
    warm = JobCreate(dataset_id="a" * 32, warm_start={"model_id": "b" * 32})
    assert request_sha256(warm) != HASHES_BEFORE["minimal"]


def test_a_released_warm_start_resumes_from_its_checkpoint_to_the_same_model(
    client, database, settings, parent
):
    """A worker stopped mid-run (SIGTERM: checkpoint, release) and the next attempt, which
    resumes onto the same parent, end with the bits of an uninterrupted run."""
    dataset_id = upload(client, table_csv(40, seed=10), "child")
    training = {"epochs": 120, "early_stopping": None, "tolerance": 0.0, "batch_size": 16}
    body = {"dataset_id": dataset_id, "training": training, "warm_start": {"model_id": parent}}
    interrupted, whole = (client.post("/v1/jobs", json=body).json()["id"] for _ in range(2))

    stop = threading.Event()
    claim = claim_job(database=database, worker_id="stopped", settings=settings)
    assert claim.job_id == interrupted
    run = JobRun(database, settings, claim, stop)
    on_epoch = run.on_epoch

    def stop_at_epoch_50(progress) -> bool:
        if progress.epoch == 50:
            stop.set()  # what the worker's SIGTERM handler does
        return on_epoch(progress)

    run.on_epoch = stop_at_epoch_50
    run.run()
    released = client.get(f"/v1/jobs/{interrupted}").json()
    assert (released["status"], released["progress"]["epoch"]) == ("queued", 50)

    run_queued_job(database, settings)  # the interrupted job again, from epoch 50
    run_queued_job(database, settings)  # the whole one
    models = []
    for job_id in (interrupted, whole):
        job = client.get(f"/v1/jobs/{job_id}").json()
        assert job["status"] == "succeeded", job
        models.append(client.get(f"/v1/models/{job['model_id']}").json())
    assert models[0]["parameters"] == models[1]["parameters"]
    assert client.get(f"/v1/jobs/{interrupted}").json()["attempts"] == 2
    # Epochs 1-50 kept from the first attempt, 51-120 run by the second: it resumed.
    epochs = [(epoch, 1) for epoch in range(1, 51)] + [(epoch, 2) for epoch in range(51, 121)]
    assert history_epochs(database, interrupted) == epochs
