"""Evaluations against the real service (uvicorn APIs and a worker, SQLite and PostgreSQL):
the metrics equal scikit-learn's to 1e-9, whether the API computes them at once (200) or a
worker does in blocks (202, then poll), on breast cancer (two classes) and iris (three)."""

import httpx
import numpy as np
import pytest
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    log_loss,
    precision_recall_fscore_support,
    roc_auc_score,
)

import engine
from tests.real_tables import code_frame
from tests.service.factories import assert_problem
from tests.service.scoring.live import breast_cancer, iris, train, upload, wait_for

TOLERANCE = 1e-9
SETS = {"cancer": (breast_cancer, "diagnosis"), "flowers": (iris, "species")}


def evaluate(url: str, model_id: str, dataset_id: str) -> httpx.Response:
    body = {"dataset_id": dataset_id}
    return httpx.post(f"{url}/v1/models/{model_id}/evaluations", json=body, timeout=60)


def assert_equals_sklearn(report: dict, classifier: engine.Classifier, frame, label: str) -> None:
    X, _, labels = code_frame(frame, label)
    classes = list(classifier.classes)
    y = np.array([classes.index(value) for value in labels.tolist()])  # (m,)
    proba = classifier.predict_proba(X)  # (m, K)
    predicted = proba.argmax(axis=1)
    K = len(classes)
    assert report["rows"] == len(y)
    assert report["accuracy"] == pytest.approx(accuracy_score(y, predicted), abs=TOLERANCE)
    assert report["log_loss"] == pytest.approx(log_loss(y, proba, labels=range(K)), abs=TOLERANCE)
    if K == 2:
        assert report["roc_auc"] == pytest.approx(roc_auc_score(y, proba[:, 1]), abs=TOLERANCE)
    else:
        for average in ("macro", "weighted"):
            expected = roc_auc_score(y, proba, multi_class="ovr", average=average)
            assert report["roc_auc"][average] == pytest.approx(expected, abs=TOLERANCE)
    precision, recall, f1, support = precision_recall_fscore_support(
        y, predicted, labels=range(K), zero_division=0
    )
    assert [c["class"] for c in report["per_class"]] == classes
    for k, scores in enumerate(report["per_class"]):
        assert scores["precision"] == pytest.approx(precision[k], abs=TOLERANCE)
        assert scores["recall"] == pytest.approx(recall[k], abs=TOLERANCE)
        assert scores["f1"] == pytest.approx(f1[k], abs=TOLERANCE)
        assert scores["support"] == support[k]
    assert report["confusion_matrix"] == confusion_matrix(y, predicted, labels=range(K)).tolist()


@pytest.mark.parametrize("name", SETS)
def test_a_small_set_is_evaluated_at_once_as_sklearn_would(service, request, name):
    trained = request.getfixturevalue(name)
    response = evaluate(service.url, trained["model"], trained["dataset"])
    assert response.status_code == 200, response.text
    report = response.json()
    assert (report["split"], report["model_id"], report["dataset_id"]) == (
        "dataset",
        trained["model"],
        trained["dataset"],
    )
    classifier = engine.load(
        httpx.get(f"{service.url}/v1/models/{trained['model']}/download").content
    )
    make, label = SETS[name]
    assert_equals_sklearn(report, classifier, make(), label)


@pytest.mark.parametrize("name", SETS)
def test_a_worker_evaluates_in_blocks_as_sklearn_would(service, request, name):
    trained = request.getfixturevalue(name)
    response = evaluate(service.queued_url, trained["model"], trained["dataset"])
    assert response.status_code == 202, response.text
    queued = response.json()
    location = f"/v1/models/{trained['model']}/evaluations/{queued['id']}"
    assert response.headers["location"] == location
    assert queued["evaluation"] is None
    assert queued["links"] == {"self": location, "result": None}
    done = wait_for(service.url, location)
    assert done["status"] == "succeeded", done
    assert done["rows_done"] == done["rows_total"] == done["evaluation"]["rows"]
    classifier = engine.load(
        httpx.get(f"{service.url}/v1/models/{trained['model']}/download").content
    )
    make, label = SETS[name]
    assert_equals_sklearn(done["evaluation"], classifier, make(), label)
    # The same numbers as the API's own, computed at once.
    inline = evaluate(service.url, trained["model"], trained["dataset"]).json()
    assert {k: v for k, v in done["evaluation"].items()} == inline


def test_labels_the_model_does_not_know_are_422_naming_them(service, flowers):
    frame = iris()
    two = frame[frame["species"] != "virginica"]
    dataset_id = upload(service.url, two, "species", "iris-two")
    model_id = train(service.url, dataset_id, "logistic_regression")
    body = assert_problem(evaluate(service.url, model_id, flowers["dataset"]), 422)
    assert body["detail"] == (
        f"dataset_id: dataset {flowers['dataset']!r} has labels the model does not know: "
        "['virginica'] (the model's classes: ['setosa', 'versicolor'])"
    )
    assert body["errors"][0]["field"] == "dataset_id"


def test_a_dataset_labelled_by_another_column_is_422(service, cancer):
    renamed = breast_cancer().rename(columns={"diagnosis": "malignant"})
    dataset_id = upload(service.url, renamed, "malignant", "cancer-renamed")
    body = assert_problem(evaluate(service.url, cancer["model"], dataset_id), 422)
    assert body["detail"] == (
        f"dataset_id: dataset {dataset_id!r} is labelled by column 'malignant'; the model "
        "predicts 'diagnosis'"
    )


def test_an_unknown_evaluation_is_404(service, cancer):
    path = f"/v1/models/{cancer['model']}/evaluations/{'0' * 32}"
    body = assert_problem(httpx.get(f"{service.url}{path}"), 404)
    assert body["detail"] == f"evaluation {'0' * 32!r} does not exist"
