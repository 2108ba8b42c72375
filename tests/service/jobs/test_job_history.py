"""GET /v1/jobs/{id}/history: incremental polling, paging, down-sampling, CSV, no NaN."""

import csv
import io
import itertools
import uuid

import pytest

from service.core.states import CANCELLED, RUNNING, SUCCEEDED
from service.jobs.history import sample_epochs
from tests.service import factories


def running_job(database, epochs: int, total: int = 500, **job_values) -> str:
    job_id = factories.add_job(
        database, factories.add_dataset(database), status=RUNNING, epochs=total
    )
    factories.add_history(
        database, job_id, [factories.history_row(e) for e in range(1, epochs + 1)], epoch=epochs
    )
    if job_values:
        factories.set_job(database, job_id, **job_values)
    return job_id


def epochs_of(body) -> list[int]:
    return [point["epoch"] for point in body["points"]]


def pages_of(client, job_id: str, *, limit: int) -> list[list[int]]:
    """The epochs of each page, following next_since_epoch to the end."""
    pages, since = [], 0
    while since is not None:
        body = client.get(
            f"/v1/jobs/{job_id}/history", params={"since_epoch": since, "limit": limit}
        ).json()
        pages.append(epochs_of(body))
        since = body["next_since_epoch"]
    return pages


def test_history_lists_every_epoch_in_order(client, database):
    job_id = running_job(database, 5)
    response = client.get(f"/v1/jobs/{job_id}/history")
    assert response.status_code == 200
    body = response.json()
    assert body["job_id"] == job_id
    assert epochs_of(body) == [1, 2, 3, 4, 5]
    assert body["points"][1] == {
        "epoch": 2,
        "train_loss": 0.35,
        "val_loss": 0.4,
        "train_accuracy": 0.9,
        "val_accuracy": 0.85,
        "grad_norm": 0.05,
        "seconds": 0.01,
    }
    assert body["next_since_epoch"] == 5  # still running: poll again from here


def test_since_epoch_returns_only_later_epochs_for_incremental_polling(client, database):
    job_id = running_job(database, 5)
    body = client.get(f"/v1/jobs/{job_id}/history", params={"since_epoch": 3}).json()
    assert epochs_of(body) == [4, 5]
    # Nothing new yet: an empty page that says where to poll from.
    body = client.get(f"/v1/jobs/{job_id}/history", params={"since_epoch": 5}).json()
    assert body == {"job_id": job_id, "points": [], "next_since_epoch": 5}
    factories.add_history(
        database, job_id, [factories.history_row(6), factories.history_row(7)], epoch=7
    )
    body = client.get(f"/v1/jobs/{job_id}/history", params={"since_epoch": 5}).json()
    assert epochs_of(body) == [6, 7]
    assert body["next_since_epoch"] == 7


def test_next_since_epoch_is_null_once_a_finished_job_has_nothing_more(client, database):
    job_id = running_job(database, 4)
    factories.set_job(database, job_id, status=SUCCEEDED, stop_reason="max_epochs")
    body = client.get(f"/v1/jobs/{job_id}/history", params={"since_epoch": 2}).json()
    assert epochs_of(body) == [3, 4]
    assert body["next_since_epoch"] is None


def test_a_cancelled_job_keeps_its_partial_history(client, database):
    job_id = running_job(database, 3)
    factories.set_job(database, job_id, status=CANCELLED, stop_reason="cancelled")
    body = client.get(f"/v1/jobs/{job_id}/history").json()
    assert epochs_of(body) == [1, 2, 3]
    assert body["next_since_epoch"] is None


def test_limit_pages_through_the_history_with_next_since_epoch(client, database):
    job_id = running_job(database, 7)
    factories.set_job(database, job_id, status=SUCCEEDED)
    assert pages_of(client, job_id, limit=3) == [[1, 2, 3], [4, 5, 6], [7]]


def test_pages_are_whole_even_where_the_history_has_a_gap(client, database):
    # Epochs never skip (the worker's invariant), and pages are read within a bound that
    # assumes it; were one missing, the page must still be full and continue correctly.
    job_id = factories.add_job(
        database, factories.add_dataset(database), status=SUCCEEDED, epochs=10
    )
    epochs = [1, 2, 3, 5, 6, 7, 8, 9]
    factories.add_history(database, job_id, [factories.history_row(e) for e in epochs], epoch=9)
    assert pages_of(client, job_id, limit=3) == [[1, 2, 3], [5, 6, 7], [8, 9]]


def test_a_page_after_the_largest_epoch_is_empty_not_an_error(client, database):
    job_id = running_job(database, 3)
    body = client.get(
        f"/v1/jobs/{job_id}/history", params={"since_epoch": 2**31 - 1, "limit": 1000}
    ).json()
    assert body["points"] == []


def test_max_points_downsamples_a_long_run_keeping_first_last_and_best(client, database):
    # 10,000 epochs; the lowest validation loss is at 7,777, the job names no best epoch.
    rows = [factories.history_row(e, val_loss=1.0 + 1e-6 * e) for e in range(1, 10_001)]
    rows[7776]["val_loss"] = 0.5
    job_id = factories.add_job(
        database, factories.add_dataset(database), status=SUCCEEDED, epochs=10_000
    )
    factories.add_history(database, job_id, rows, epoch=10_000)
    response = client.get(f"/v1/jobs/{job_id}/history", params={"max_points": 500})
    assert response.status_code == 200
    epochs = epochs_of(response.json())
    assert len(epochs) <= 500
    assert len(epochs) >= 490
    assert epochs == sorted(set(epochs))
    assert epochs[0] == 1
    assert epochs[-1] == 10_000
    assert 7_777 in epochs
    gaps = {b - a for a, b in itertools.pairwise(epochs)}
    assert max(gaps) <= 21  # evenly spread: 9,999 epochs over ~499 gaps
    assert response.json()["next_since_epoch"] is None
    # The job's own best epoch (the engine's judgement, with min_delta) wins when it has one.
    factories.set_job(database, job_id, best_epoch=4_321)
    body = client.get(f"/v1/jobs/{job_id}/history", params={"max_points": 500}).json()
    assert 4_321 in epochs_of(body)
    assert len(body["points"]) <= 500


def test_max_points_with_since_epoch_and_limit_samples_that_window(client, database):
    job_id = running_job(database, 100, best_epoch=30)
    params = {"since_epoch": 10, "limit": 40, "max_points": 5}
    body = client.get(f"/v1/jobs/{job_id}/history", params=params).json()
    epochs = epochs_of(body)
    assert len(epochs) <= 5
    assert (epochs[0], epochs[-1]) == (11, 50)
    assert 30 in epochs
    assert body["next_since_epoch"] == 50


def test_max_points_above_the_row_count_returns_every_row(client, database):
    job_id = running_job(database, 6)
    body = client.get(f"/v1/jobs/{job_id}/history", params={"max_points": 50}).json()
    assert epochs_of(body) == [1, 2, 3, 4, 5, 6]


def test_sample_epochs_spreads_evenly_and_keeps_the_ends_and_the_kept_epoch():
    assert sample_epochs(1, 5, 10) == [1, 2, 3, 4, 5]
    assert sample_epochs(1, 101, 5) == [1, 26, 51, 76, 101]
    assert sample_epochs(1, 101, 5, keep=60) == [1, 34, 60, 68, 101]
    assert sample_epochs(1, 101, 3, keep=101) == [1, 101]
    for count in range(3, 40):
        epochs = sample_epochs(7, 1_000, count, keep=500)
        assert len(epochs) <= count
        assert {7, 500, 1_000} <= set(epochs)


def test_csv_has_a_header_row_and_empty_cells_for_nulls(client, database):
    job_id = factories.add_job(database, factories.add_dataset(database), status=RUNNING)
    rows = [
        factories.history_row(1),
        factories.history_row(2, val_loss=None, val_accuracy=None),  # no validation split
        factories.history_row(3, train_loss=None, grad_norm=None),  # diverged: NaN stored as NULL
    ]
    factories.add_history(database, job_id, rows, epoch=3)
    response = client.get(f"/v1/jobs/{job_id}/history", headers={"Accept": "text/csv"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.headers["next-since-epoch"] == "3"
    table = list(csv.reader(io.StringIO(response.text)))
    assert table[0] == [
        "epoch",
        "train_loss",
        "val_loss",
        "train_accuracy",
        "val_accuracy",
        "grad_norm",
        "seconds",
    ]
    assert table[1] == ["1", "0.7", "0.8", "0.9", "0.85", "0.1", "0.01"]
    assert table[2] == ["2", "0.35", "", "0.9", "", "0.05", "0.01"]
    assert table[3] == ["3", "", "0.26666666666666666", "0.9", "0.85", "", "0.01"]
    assert len(table) == 4


def test_csv_honours_since_epoch_and_max_points(client, database):
    job_id = running_job(database, 50)
    response = client.get(
        f"/v1/jobs/{job_id}/history",
        params={"since_epoch": 10, "max_points": 4},
        headers={"Accept": "text/csv, application/json;q=0.5"},
    )
    table = list(csv.reader(io.StringIO(response.text)))
    assert len(table) - 1 <= 4
    assert table[1][0] == "11"
    assert table[-1][0] == "50"


def test_nan_never_reaches_json_for_a_diverged_run(client, database):
    job_id = factories.add_job(database, factories.add_dataset(database), status=SUCCEEDED)
    rows = [
        factories.history_row(1),
        factories.history_row(2, train_loss=None, val_loss=None, grad_norm=None),
    ]
    factories.add_history(database, job_id, rows, epoch=2, stop_reason="diverged")
    response = client.get(f"/v1/jobs/{job_id}/history")
    assert "NaN" not in response.text
    assert response.json()["points"][1]["train_loss"] is None
    assert response.json()["points"][1]["val_loss"] is None


def test_history_of_an_unknown_job_is_a_404_problem(client):
    missing = uuid.uuid4().hex
    problem = factories.assert_problem(client.get(f"/v1/jobs/{missing}/history"), 404)
    assert problem["detail"] == f"job '{missing}' does not exist"


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"since_epoch": -1}, "query.since_epoch"),
        ({"max_points": 2}, "query.max_points"),
        ({"max_points": 10_001}, "query.max_points"),
        ({"limit": 0}, "query.limit"),
        ({"limit": "many"}, "query.limit"),
    ],
)
def test_bad_history_parameters_are_422(client, database, params, field):
    job_id = running_job(database, 2)
    problem = factories.assert_problem(client.get(f"/v1/jobs/{job_id}/history", params=params), 422)
    assert [error["field"] for error in problem["errors"]] == [field]
