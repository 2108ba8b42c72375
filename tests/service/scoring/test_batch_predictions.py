"""Batch predictions against the real service: uvicorn APIs and a worker process, on SQLite
and PostgreSQL. The worker scores in blocks of 64 rows; the result must be, row for row and
bit for bit, what the model's own predict_proba gives for the whole array."""

import httpx
import numpy as np
import palmerpenguins
import pytest

import engine
from tests.real_tables import code_frame
from tests.service.factories import assert_problem
from tests.service.scoring.live import breast_cancer, frame_of, train, upload, wait_for


def batch(url: str, model_id: str, dataset_id: str) -> httpx.Response:
    body = {"dataset_id": dataset_id}
    return httpx.post(f"{url}/v1/models/{model_id}/batch-predictions", json=body, timeout=30)


def classifier_of(url: str, model_id: str) -> engine.Classifier:
    return engine.load(httpx.get(f"{url}/v1/models/{model_id}/download", timeout=30).content)


@pytest.mark.parametrize("file_format", ["csv", "parquet"])
def test_a_batch_prediction_gives_every_row_the_bits_predict_proba_gives(
    service, cancer, file_format
):
    response = batch(service.url, cancer["model"], cancer["dataset"])
    assert response.status_code == 202, response.text
    queued = response.json()
    location = f"/v1/models/{cancer['model']}/batch-predictions/{queued['id']}"
    assert response.headers["location"] == location
    assert queued["status"] in ("queued", "running")
    assert queued["rows_total"] == 569
    assert queued["links"] == {"self": location, "result": f"{location}/result"}

    done = wait_for(service.url, location)
    assert done["status"] == "succeeded", done
    assert (done["rows_done"], done["rows_total"], done["progress"]) == (569, 569, 1.0)
    assert done["created_at"] <= done["started_at"] <= done["finished_at"]
    assert done["attempts"] == 1

    result = httpx.get(f"{service.url}{location}/result", params={"format": file_format})
    assert result.status_code == 200, result.text
    expected_type = "text/csv" if file_format == "csv" else "application/vnd.apache.parquet"
    assert result.headers["content-type"].startswith(expected_type)
    frame = frame_of(result, file_format)
    assert list(frame.columns) == ["row", "label", "p_0", "p_1"]

    classifier = classifier_of(service.url, cancer["model"])
    X, _, _ = code_frame(breast_cancer(), "diagnosis")
    np.testing.assert_array_equal(frame["row"].to_numpy(), np.arange(569))
    np.testing.assert_array_equal(frame["label"].to_numpy(), classifier.predict(X))
    # Parquet keeps the float64 bits; CSV writes each float so that it reads back the same.
    np.testing.assert_array_equal(frame[["p_0", "p_1"]].to_numpy(), classifier.predict_proba(X))


def test_words_and_empty_cells_score_as_the_models_own_predictions_of_records(service):
    """Penguins (island and sex are words, empty cells): the worker recodes the dataset's
    levels to the model's, as a prediction of raw records does."""
    frame = palmerpenguins.load_penguins()
    dataset_id = upload(service.url, frame, "species", "penguins")
    model_id = train(service.url, dataset_id, "logistic_regression")
    response = batch(service.url, model_id, dataset_id)
    assert response.status_code == 202, response.text
    location = response.headers["location"]
    assert wait_for(service.url, location)["status"] == "succeeded"
    result = frame_of(httpx.get(f"{service.url}{location}/result?format=parquet"), "parquet")

    features = frame.drop(columns="species")
    records = features.astype(object).where(features.notna(), None).to_dict("records")
    answer = httpx.post(
        f"{service.url}/v1/models/{model_id}/predictions", json={"records": records}, timeout=30
    ).json()
    classes = answer["classes"]
    expected = np.array([[p["probabilities"][c] for c in classes] for p in answer["predictions"]])
    assert list(result.columns) == ["row", "label", *(f"p_{c}" for c in classes)]
    assert result["label"].tolist() == [p["label"] for p in answer["predictions"]]
    np.testing.assert_array_equal(result[[f"p_{c}" for c in classes]].to_numpy(), expected)


def test_a_dataset_without_a_models_column_is_422_naming_it(service, cancer):
    dataset_id = upload(
        service.url, breast_cancer().drop(columns=["mean radius"]), "diagnosis", "no-radius"
    )
    body = assert_problem(batch(service.url, cancer["model"], dataset_id), 422)
    assert body["detail"] == (
        f"dataset_id: dataset {dataset_id!r} lacks the model's features ['mean radius']"
    )
    assert body["errors"] == [{"field": "dataset_id", "message": body["detail"][12:]}]


def test_an_unknown_model_is_404_and_an_unknown_dataset_422(service, cancer):
    missing = "0" * 32
    body = assert_problem(batch(service.url, missing, cancer["dataset"]), 404)
    assert body["detail"] == f"model {missing!r} does not exist"
    body = assert_problem(batch(service.url, cancer["model"], missing), 422)
    assert body["detail"] == f"dataset_id: dataset {missing!r} does not exist"


def test_an_unknown_batch_prediction_is_404_and_a_bad_format_422(service, cancer):
    path = f"/v1/models/{cancer['model']}/batch-predictions/{'0' * 32}"
    body = assert_problem(httpx.get(f"{service.url}{path}"), 404)
    assert body["detail"] == f"batch prediction {'0' * 32!r} does not exist"
    response = batch(service.url, cancer["model"], cancer["dataset"])
    location = response.headers["location"]
    body = assert_problem(httpx.get(f"{service.url}{location}/result?format=xlsx"), 422)
    assert body["errors"][0]["field"] == "query.format"
    wait_for(service.url, location)


def test_a_dataset_with_the_columns_in_another_order_scores_the_same(service, cancer):
    frame = breast_cancer()
    shuffled = frame[list(reversed(frame.columns))]
    dataset_id = upload(service.url, shuffled, "diagnosis", "cancer-reversed")
    response = batch(service.url, cancer["model"], dataset_id)
    assert response.status_code == 202, response.text
    location = response.headers["location"]
    assert wait_for(service.url, location)["status"] == "succeeded"
    result = frame_of(httpx.get(f"{service.url}{location}/result?format=parquet"), "parquet")
    X, _, _ = code_frame(frame, "diagnosis")  # the training order
    expected = classifier_of(service.url, cancer["model"]).predict_proba(X)
    np.testing.assert_array_equal(result[["p_0", "p_1"]].to_numpy(), expected)
