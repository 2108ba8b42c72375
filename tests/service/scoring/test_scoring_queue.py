"""The scoring queue on the real databases: claims, fencing, a lost worker's task taken
again (a batch prediction resuming after its last stored block), and what the API says
while a task waits. Tasks are run by the worker's own TaskRun, in this process."""

import threading
from datetime import timedelta

import numpy as np
from sqlalchemy import select, update

import engine
from service.core.settings import Settings
from service.core.tables import Dataset, Model, ScoringBlock, ScoringTask, utcnow
from service.datasets.storage import load_arrays
from service.models import scoring
from service.models.service import ModelCache
from service.queue.scoring import TaskRun, decode_block, encode_block
from service.queue.scoring_claims import claim_task, record_rows, store_block, sweep_expired_tasks
from tests.service.factories import add_dataset, add_model, assert_problem

ROWS, BLOCK = 300, 64


def queue_batch(database, settings, kind: str = "batch") -> tuple[str, str, str]:
    """(model id, dataset id, task id) of a queued batch prediction (or evaluation)."""
    model_id = add_model(database)  # features x0, x1; classes 0, 1
    dataset_id = add_dataset(database, rows=ROWS, features=2, seed=7)
    create = scoring.create_batch_prediction if kind == "batch" else scoring.create_evaluation
    task = create(
        database=database,
        cache=ModelCache(),
        model_id=model_id,
        dataset_id=dataset_id,
        settings=settings.model_copy(
            update={"scoring_block_rows": BLOCK, "inline_evaluation_rows": 0}
        ),
    )
    return model_id, dataset_id, task.id


def expire(database, task_id: str) -> None:
    with database.writes() as session, session.begin():
        past = utcnow() - timedelta(seconds=1)
        session.execute(
            update(ScoringTask).where(ScoringTask.id == task_id).values(lease_expires_at=past)
        )


def stored(database, model_id: str, dataset_id: str) -> tuple[engine.Classifier, np.ndarray]:
    with database.reads() as session:
        classifier = engine.load(session.get(Model, model_id).artifact)
        X, _ = load_arrays(session, session.get(Dataset, dataset_id))
    return classifier, X


def test_a_lost_workers_batch_prediction_resumes_after_its_last_block(database, settings):
    model_id, dataset_id, task_id = queue_batch(database, settings)
    first = claim_task(database=database, worker_id="a", settings=settings)
    assert (first.task_id, first.attempt, first.rows_done, first.block_rows) == (
        task_id,
        1,
        0,
        BLOCK,
    )
    assert claim_task(database=database, worker_id="b", settings=settings) is None  # held
    classifier, X = stored(database, model_id, dataset_id)
    block = encode_block(classifier.predict_proba(X[:BLOCK]))
    fence = {"database": database, "task_id": task_id, "settings": settings}
    assert store_block(**fence, attempt=1, index=0, rows=BLOCK, data=block)

    expire(database, task_id)  # worker a stalls past its lease
    assert sweep_expired_tasks(database=database, settings=settings) == 1
    second = claim_task(database=database, worker_id="b", settings=settings)
    assert (second.attempt, second.rows_done) == (2, BLOCK)  # resumes at block 1
    assert not store_block(**fence, attempt=1, index=1, rows=BLOCK, data=block)  # fenced out
    TaskRun(database, settings, second, threading.Event()).run()

    with database.reads() as session:
        task = session.get(ScoringTask, task_id)
        blocks = session.execute(
            select(ScoringBlock.index, ScoringBlock.rows, ScoringBlock.data)
            .where(ScoringBlock.task_id == task_id)
            .order_by(ScoringBlock.index)
        ).all()
    assert (task.status, task.rows_done, task.attempt, task.worker) == ("succeeded", ROWS, 2, "b")
    assert [(b.index, b.rows) for b in blocks] == [(0, 64), (1, 64), (2, 64), (3, 64), (4, 44)]
    probabilities = np.concatenate([decode_block(b.data, 2) for b in blocks])  # (ROWS, 2)
    np.testing.assert_array_equal(probabilities, classifier.predict_proba(X))


def test_a_task_lost_on_its_last_attempt_fails_as_worker_lost(database, settings):
    _, _, task_id = queue_batch(database, settings)
    for attempt in (1, 2, 3):
        claim = claim_task(database=database, worker_id="a", settings=settings)
        assert claim.attempt == attempt
        expire(database, task_id)
        assert sweep_expired_tasks(database=database, settings=settings) == 1
    with database.reads() as session:
        task = session.get(ScoringTask, task_id)
    assert (task.status, task.error_code) == ("failed", "worker_lost")
    assert task.error.endswith("on its last allowed attempt (attempt 3 of 3)")
    assert claim_task(database=database, worker_id="a", settings=settings) is None


def test_an_evaluation_taken_again_starts_over(database, settings):
    _, _, task_id = queue_batch(database, settings, kind="evaluation")
    claim = claim_task(database=database, worker_id="a", settings=settings)
    assert record_rows(
        database=database, task_id=task_id, attempt=1, rows_done=128, settings=settings
    )
    expire(database, task_id)
    sweep_expired_tasks(database=database, settings=settings)
    again = claim_task(database=database, worker_id="b", settings=settings)
    assert (claim.kind, again.attempt, again.rows_done) == ("evaluation", 2, 0)
    TaskRun(database, settings, again, threading.Event()).run()
    with database.reads() as session:
        task = session.get(ScoringTask, task_id)
    assert (task.status, task.rows_done, task.result["rows"]) == ("succeeded", ROWS, ROWS)


def test_a_stopping_worker_gives_its_task_back(database, settings):
    _, _, task_id = queue_batch(database, settings)
    claim = claim_task(database=database, worker_id="a", settings=settings)
    stop = threading.Event()
    stop.set()  # SIGTERM before the first block
    TaskRun(database, settings, claim, stop).run()
    with database.reads() as session:
        task = session.get(ScoringTask, task_id)
    assert (task.status, task.worker, task.rows_done, task.max_attempts) == ("queued", None, 0, 4)


def test_a_result_asked_for_before_it_is_ready_is_409(client, database, settings):
    model_id = add_model(database)
    dataset_id = add_dataset(database, rows=ROWS, features=2)
    response = client.post(
        f"/v1/models/{model_id}/batch-predictions", json={"dataset_id": dataset_id}
    )
    assert response.status_code == 202, response.text
    body = response.json()
    assert (body["status"], body["rows_done"], body["rows_total"], body["attempts"]) == (
        "queued",
        0,
        ROWS,
        0,
    )
    body = assert_problem(client.get(f"{response.headers['location']}/result"), 409)
    assert body["detail"] == (
        f"batch prediction {response.json()['id']!r} is queued (0 of {ROWS} rows scored): "
        "its result downloads once it has succeeded"
    )


def test_a_dataset_with_a_column_the_model_never_saw_is_422(client, database):
    model_id = add_model(database)  # x0, x1
    dataset_id = add_dataset(database, rows=20, features=3)
    response = client.post(
        f"/v1/models/{model_id}/batch-predictions", json={"dataset_id": dataset_id}
    )
    body = assert_problem(response, 422)
    assert body["detail"] == (
        f"dataset_id: dataset {dataset_id!r} has features the model was not trained on ['x2']"
    )


def test_unknown_body_fields_are_422_naming_them(client, database):
    model_id = add_model(database)
    response = client.post(f"/v1/models/{model_id}/evaluations", json={"dataset": "x"})
    body = assert_problem(response, 422)
    assert {e["field"] for e in body["errors"]} == {"dataset_id", "dataset"}


def test_by_default_evaluations_of_up_to_100000_rows_answer_at_once_and_blocks_hold_65536():
    assert Settings().inline_evaluation_rows == 100_000
    assert Settings().scoring_block_rows == 65_536
