"""/v1/models: fitted models as JSON, their .npz download, and predictions.

Models are made the way a worker makes them: a Dataset row with its arrays
(service.datasets.storage), a succeeded Job, engine.fit on the same data, and
service.queue.results.model_row. The fits run once per module; rows are inserted
per test (the tables are emptied after each one).
"""

import csv
import io
import json
import math
import random
from dataclasses import asdict, dataclass
from datetime import timedelta

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sklearn.datasets import load_breast_cancer, load_iris
from sqlalchemy import event

import engine
import service.models.predictions
from engine import FitResult, ModelSpec, TrainingSpec
from service.app import create_app
from service.core.states import SUCCEEDED
from service.core.tables import Dataset, Job, JobHistory, new_id, utcnow
from service.datasets.storage import store_arrays
from service.models.router import INLINE_PREDICTION_ROWS
from service.queue.results import history_values, model_row

PROBLEM = "application/problem+json"


@dataclass(frozen=True)
class Data:
    X: np.ndarray  # (m, n_x)
    y: np.ndarray  # (m,) label values
    features: list[str]
    label: str


@dataclass(frozen=True)
class Fit:
    data: Data
    model: ModelSpec
    training: TrainingSpec
    result: FitResult

    @property
    def classifier(self) -> engine.Classifier:
        return self.result.classifier


def fit(data: Data, model: ModelSpec, epochs: int) -> Fit:
    training = TrainingSpec(epochs=epochs, seed=0, validation_fraction=0.2)  # val metrics too
    result = engine.fit(data.X, data.y, model, training, feature_names=data.features, evaluate=True)
    return Fit(data, model, training, result)


@pytest.fixture(scope="module")
def cancer() -> Data:
    bunch = load_breast_cancer()
    return Data(bunch.data, bunch.target, [str(n) for n in bunch.feature_names], "target")


@pytest.fixture(scope="module")
def iris() -> Data:
    bunch = load_iris()
    names = bunch.target_names[bunch.target]  # "setosa", "versicolor", "virginica"
    return Data(bunch.data, names, [str(n) for n in bunch.feature_names], "species")


@pytest.fixture(scope="module")
def network_fit(cancer) -> Fit:
    return fit(cancer, ModelSpec(type="two_layer_network", hidden_units=8), epochs=60)


@pytest.fixture(scope="module")
def logistic_fit(cancer) -> Fit:
    return fit(cancer, ModelSpec(type="logistic_regression"), epochs=60)


@pytest.fixture(scope="module")
def iris_fit(iris) -> Fit:
    return fit(iris, ModelSpec(type="logistic_regression"), epochs=100)


def insert_dataset(app, data: Data, name: str = "data") -> str:
    """A Dataset row and its stored arrays, as the upload endpoint leaves them."""
    classes, y_index, counts = np.unique(data.y, return_inverse=True, return_counts=True)
    classes = classes.tolist()
    label_type = "string" if isinstance(classes[0], str) else "integer"
    dataset_id = new_id()
    with app.state.database.writes() as session, session.begin():
        session.add(
            Dataset(
                id=dataset_id,
                name=name,
                label=data.label,
                features=data.features,
                schema=[{"name": f, "type": "double", "role": "feature"} for f in data.features]
                + [{"name": data.label, "type": label_type, "role": "label"}],
                label_type=label_type,
                rows=len(data.y),
                classes=classes,
                class_counts={str(c): int(n) for c, n in zip(classes, counts, strict=True)},
                sha256=new_id() + new_id(),
                format="csv",
                size_bytes=0,
            )
        )
        session.flush()
        store_arrays(session, dataset_id, data.X, y_index)
    return dataset_id


def insert_model(app, dataset_id: str, trained: Fit) -> str:
    """A succeeded Job, its history and Model row (queue.results), as a worker leaves them."""
    now = utcnow()
    job = Job(
        id=new_id(),
        dataset_id=dataset_id,
        status=SUCCEEDED,
        model_type=trained.model.type,
        model_spec=asdict(trained.model),
        training_spec=trained.training.to_dict(),
        attempt=1,
        epoch=len(trained.result.history),
        epochs=trained.training.epochs,
        stop_reason=trained.result.stop_reason,
        created_at=now - timedelta(seconds=2),
        started_at=now - timedelta(seconds=1),
        finished_at=now,
    )
    with app.state.database.writes() as session, session.begin():
        session.add(job)
        session.flush()
        session.add_all(
            JobHistory(job_id=job.id, attempt=1, **history_values(metrics))
            for metrics in trained.result.history
        )
        model = model_row(job, trained.result)
        session.add(model)
        session.flush()
        return model.id


@pytest.fixture
def cancer_model(app, cancer, network_fit) -> str:
    return insert_model(app, insert_dataset(app, cancer, "cancer"), network_fit)


def predict(client, model_id: str, body: dict):
    return client.post(f"/v1/models/{model_id}/predictions", json=body)


def assert_problem(response, status: int, detail_part: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["status"] == status
    assert detail_part in body["detail"], body["detail"]
    return body


# GET /v1/models/{id}


def test_get_network_model_returns_parameters_in_the_notes_shapes(
    client, cancer_model, network_fit
):
    response = client.get(f"/v1/models/{cancer_model}")
    assert response.status_code == 200
    body = response.json()
    h, n_x = 8, 30
    shapes = {"W1": [h, n_x], "b1": [h, 1], "W2": [1, h], "b2": [1, 1]}
    assert body["parameter_shapes"] == shapes
    for name, shape in shapes.items():
        assert list(np.asarray(body["parameters"][name]).shape) == shape
    assert body["parameters"] == network_fit.classifier.parameters_as_lists()
    assert body["type"] == "two_layer_network"
    assert body["model"] == asdict(network_fit.model)
    assert body["training"] == network_fit.training.to_dict()
    assert body["classes"] == [0, 1]
    assert body["feature_names"][0] == "mean radius"
    assert body["n_features"] == n_x
    assert body["dtype"] == "float64"
    assert body["links"]["download"] == f"/v1/models/{cancer_model}/download"


def test_get_logistic_regression_model_returns_w_and_b(client, app, cancer, logistic_fit):
    model_id = insert_model(app, insert_dataset(app, cancer), logistic_fit)
    body = client.get(f"/v1/models/{model_id}").json()
    assert body["parameter_shapes"] == {"w": [30, 1], "b": [1, 1]}
    assert np.asarray(body["parameters"]["w"]).shape == (30, 1)
    assert np.asarray(body["parameters"]["b"]).shape == (1, 1)
    assert body["parameters"] == logistic_fit.classifier.parameters_as_lists()
    assert body["diagnostics"]["identical_hidden_units"] is None


def test_model_metrics_and_diagnostics_are_present_and_finite(client, cancer_model, network_fit):
    response = client.get(f"/v1/models/{cancer_model}")
    assert "NaN" not in response.text
    assert "Infinity" not in response.text
    body = response.json()
    metrics, diagnostics = body["metrics"], body["diagnostics"]
    assert metrics["stop_reason"] == network_fit.result.stop_reason
    assert metrics["epochs_run"] == len(network_fit.result.history)
    assert metrics["best_epoch"] == network_fit.result.best_epoch
    for name in ("final_train_loss", "final_val_loss", "best_val_loss", "best_val_accuracy"):
        assert math.isfinite(metrics[name]), name
    last = network_fit.result.history[-1]
    assert metrics["final_train_accuracy"] == last.train_accuracy
    assert metrics["final_val_accuracy"] == last.val_accuracy
    assert set(diagnostics["gradient_norms"]) == {"W1", "b1", "W2", "b2"}
    assert all(math.isfinite(v) for v in diagnostics["gradient_norms"].values())
    assert diagnostics["distinct_hidden_units"] + diagnostics["identical_hidden_units"] >= 8
    assert diagnostics["warnings"] == []


def test_the_model_shows_its_evaluation_as_the_engine_made_it(client, cancer_model, network_fit):
    evaluation = client.get(f"/v1/models/{cancer_model}").json()["evaluation"]
    assert evaluation == network_fit.result.evaluation  # every field, "class" keys included
    assert evaluation["split"] == "validation"
    assert evaluation["rows"] == network_fit.result.n_validation
    assert len(evaluation["roc_curve"]["fpr"]) >= 2
    assert sum(map(sum, evaluation["confusion_matrix"])) == evaluation["rows"]


def test_listings_show_the_evaluation_without_its_curves(client, cancer_model, network_fit):
    (listed,) = client.get("/v1/models").json()["data"]
    expected = {**network_fit.result.evaluation, "roc_curve": None, "calibration": None}
    assert listed["evaluation"] == expected


def test_get_model_can_leave_the_parameters_out(client, cancer_model):
    body = client.get(f"/v1/models/{cancer_model}", params={"include_parameters": "false"}).json()
    assert body["parameters"] is None
    assert body["parameter_shapes"]["W1"] == [8, 30]
    assert len(body["evaluation"]["roc_curve"]["fpr"]) >= 2  # a model's own page keeps its curves


def test_unknown_model_is_a_404_problem_on_every_route(client):
    assert_problem(client.get("/v1/models/nope"), 404, "model 'nope' does not exist")
    assert_problem(client.get("/v1/models/nope/download"), 404, "model 'nope' does not exist")
    response = predict(client, "nope", {"rows": [[1.0]]})
    assert_problem(response, 404, "model 'nope' does not exist")


# GET /v1/models


def test_list_models_pages_newest_first_without_parameters(
    client, app, cancer, network_fit, logistic_fit
):
    dataset_id = insert_dataset(app, cancer)
    ids = [insert_model(app, dataset_id, f) for f in (network_fit, logistic_fit, network_fit)]
    first = client.get("/v1/models", params={"limit": 2})
    assert first.status_code == 200
    page1 = first.json()
    assert [m["id"] for m in page1["data"]] == [ids[2], ids[1]]
    assert all(m["parameters"] is None for m in page1["data"])
    assert page1["data"][0]["parameter_shapes"]["W1"] == [8, 30]
    page2 = client.get("/v1/models", params={"limit": 2, "cursor": page1["next_cursor"]}).json()
    assert [m["id"] for m in page2["data"]] == [ids[0]]
    assert page2["next_cursor"] is None


def test_list_models_filters_by_type_dataset_and_job(
    client, app, cancer, iris, network_fit, logistic_fit, iris_fit
):
    cancer_id, iris_id = insert_dataset(app, cancer), insert_dataset(app, iris)
    network_id = insert_model(app, cancer_id, network_fit)
    logistic_id = insert_model(app, cancer_id, logistic_fit)
    iris_model_id = insert_model(app, iris_id, iris_fit)

    def ids(**params) -> set[str]:
        response = client.get("/v1/models", params={"limit": 1, **params})
        assert response.status_code == 200
        return {m["id"] for m in response.json()["data"]}

    assert ids(type="two_layer_network") == {network_id}
    assert ids(dataset_id=iris_id) == {iris_model_id}
    job_id = client.get(f"/v1/models/{logistic_id}").json()["job_id"]
    assert ids(job_id=job_id) == {logistic_id}
    assert ids(dataset_id="nothing") == set()


def test_list_models_refuses_an_unknown_type_and_a_foreign_cursor(client):
    body = assert_problem(client.get("/v1/models", params={"type": "svm"}), 422, "type")
    assert body["errors"][0]["field"] == "query.type"
    body = assert_problem(client.get("/v1/models", params={"cursor": "xyz"}), 422, "cursor")
    assert body["errors"] == [
        {"field": "query.cursor", "message": "not a cursor this service issued"}
    ]
    assert_problem(client.get("/v1/models", params={"limit": 0}), 422, "limit")


# GET /v1/models/{id}/download


def test_download_round_trips_through_engine_load(client, cancer_model, cancer, network_fit):
    response = client.get(f"/v1/models/{cancer_model}/download")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/octet-stream"
    assert (
        response.headers["content-disposition"]
        == f'attachment; filename="model-{cancer_model}.npz"'
    )
    loaded = engine.load(response.content)
    original = network_fit.classifier
    np.testing.assert_array_equal(loaded.predict_proba(cancer.X), original.predict_proba(cancer.X))
    np.testing.assert_array_equal(loaded.predict(cancer.X), original.predict(cancer.X))
    assert loaded.feature_names == cancer.features


# POST /v1/models/{id}/predictions: rows and records


def test_predictions_by_rows_match_the_classifier_exactly(
    client, cancer_model, cancer, network_fit
):
    rows = cancer.X[:50]
    response = predict(client, cancer_model, {"rows": rows.tolist()})
    assert response.status_code == 200
    body = response.json()
    assert body["model_id"] == cancer_model
    assert body["classes"] == [0, 1]
    expected_labels = network_fit.classifier.predict(rows).tolist()
    expected_p = network_fit.classifier.predict_proba(rows).tolist()
    assert [p["label"] for p in body["predictions"]] == expected_labels
    assert all(isinstance(p["label"], int) for p in body["predictions"])
    assert [[p["probabilities"]["0"], p["probabilities"]["1"]] for p in body["predictions"]] == (
        expected_p
    )


@pytest.mark.parametrize("rows", [1, INLINE_PREDICTION_ROWS, INLINE_PREDICTION_ROWS + 1])
def test_predictions_on_the_event_loop_and_in_the_threadpool_are_the_same(
    client, cancer_model, cancer, network_fit, rows
):
    # The first request loads the model (threadpool); the second, cached and small, may run
    # on the event loop: both answer exactly what the classifier computes.
    expected = network_fit.classifier.predict_proba(cancer.X[:rows]).tolist()
    for _ in range(2):
        body = predict(client, cancer_model, {"rows": cancer.X[:rows].tolist()}).json()
        assert [
            [p["probabilities"]["0"], p["probabilities"]["1"]] for p in body["predictions"]
        ] == (expected)


def test_small_prediction_errors_on_the_event_loop_are_problems(client, cancer_model, cancer):
    assert predict(client, cancer_model, {"rows": cancer.X[:1].tolist()}).status_code == 200
    wide = [[*cancer.X[0].tolist(), 1.0]]
    assert_problem(predict(client, cancer_model, {"rows": wide}), 422, "rows.0")
    extreme = [[1e308 if j % 2 else -1e308 for j in range(cancer.X.shape[1])]]  # NaN output
    assert_problem(predict(client, cancer_model, {"rows": extreme}), 422, "rows.0")


def test_predictions_accept_integers_as_feature_values(client, cancer_model, network_fit):
    row = [int(v) for v in np.rint(network_fit.data.X[0])]
    body = predict(client, cancer_model, {"rows": [row]}).json()
    assert body["predictions"][0]["label"] == network_fit.classifier.predict([row])[0]


def test_predictions_by_records_in_any_key_order_equal_rows(client, cancer_model, cancer):
    rows = cancer.X[:5].tolist()
    shuffle = random.Random(0)
    records = []
    for row in rows:
        pairs = list(zip(cancer.features, row, strict=True))
        shuffle.shuffle(pairs)
        records.append(dict(pairs))
    by_rows = predict(client, cancer_model, {"rows": rows}).json()
    by_records = predict(client, cancer_model, {"records": records}).json()
    assert by_records == by_rows


def test_record_missing_a_feature_is_422_naming_it_and_the_record(client, cancer_model, cancer):
    records = [dict(zip(cancer.features, row, strict=True)) for row in cancer.X[:3].tolist()]
    del records[1]["mean texture"]
    body = assert_problem(
        predict(client, cancer_model, {"records": records}),
        422,
        "records.1: missing features ['mean texture'] (null is a missing value)",
    )
    assert body["errors"] == [
        {
            "field": "records.1",
            "message": "missing features ['mean texture'] (null is a missing value)",
        }
    ]


def test_record_with_an_unknown_feature_is_422_naming_it(client, cancer_model, cancer):
    record = dict(zip(cancer.features, cancer.X[0].tolist(), strict=True))
    record["colour"] = 1.0
    assert_problem(
        predict(client, cancer_model, {"records": [record]}),
        422,
        "records.0: unknown features ['colour']",
    )


def test_row_of_the_wrong_length_is_422(client, cancer_model, cancer):
    rows = [cancer.X[0].tolist(), cancer.X[1].tolist()[:29]]
    body = assert_problem(
        predict(client, cancer_model, {"rows": rows}), 422, "rows.1: has 29 values; expected 30"
    )
    assert body["errors"] == [{"field": "rows.1", "message": "has 29 values; expected 30"}]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        # A numeric column takes numbers (and null: a missing cell), not text or booleans.
        ('"abc"', "column 'mean area': 'abc' is not a number (a numeric column)"),
        ('"1.5"', "column 'mean area': '1.5' is not a number (a numeric column)"),
        ("true", "column 'mean area': True is not a number (a numeric column)"),
        ("[1]", "Input should be a number, text, a boolean or null"),
        ("1e400", "Input should be a finite number"),  # Python's json reads it as infinity
        ("-1e400", "Input should be a finite number"),
        ("NaN", "Input should be a finite number"),
    ],
)
def test_non_numeric_or_non_finite_values_are_422_naming_row_and_column(
    client, cancer_model, cancer, value, message
):
    rows = [json.dumps(cancer.X[i].tolist()) for i in range(2)]
    values = json.loads(rows[1])
    cells = [json.dumps(v) for v in values]
    cells[3] = value
    content = '{"rows": [' + rows[0] + ", [" + ", ".join(cells) + "]]}"
    response = client.post(
        f"/v1/models/{cancer_model}/predictions",
        content=content,
        headers={"content-type": "application/json"},
    )
    body = assert_problem(response, 422, "rows.1.3")
    assert body["errors"] == [{"field": "rows.1.3", "message": message}]


def test_non_finite_record_value_is_422_naming_the_feature(client, cancer_model, cancer):
    record = dict(zip(cancer.features, cancer.X[0].tolist(), strict=True))
    content = json.dumps({"records": [record]}).replace(
        f'"mean area": {json.dumps(record["mean area"])}', '"mean area": 1e400'
    )
    response = client.post(
        f"/v1/models/{cancer_model}/predictions",
        content=content,
        headers={"content-type": "application/json"},
    )
    body = assert_problem(response, 422, "records.0.mean area")
    assert body["errors"][0]["field"] == "records.0.mean area"


def test_values_so_extreme_the_network_overflows_are_422_not_500(client, cancer_model):
    # Finite inputs, but standardizing ±1e308 overflows to ±inf and W1 X to inf - inf = NaN.
    row = [1e308 if j % 2 else -1e308 for j in range(30)]
    response = predict(client, cancer_model, {"rows": [[0.0] * 30, row]})
    body = assert_problem(response, 422, "rows.1: the model's output is not finite")
    assert body["errors"] == [
        {"field": "rows.1", "message": body["detail"].removeprefix("rows.1: ")}
    ]


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({"rows": []}, "rows: empty; give at least one row"),
        ({"records": []}, "records: empty; give at least one row"),
        ({}, "body: give exactly one of rows, records or dataset_id"),
        (
            {"rows": [[0.0] * 30], "records": [{}]},
            "body: give exactly one of rows, records or dataset_id, not rows and records",
        ),
        (
            {"rows": [[0.0] * 30], "dataset_id": "x"},
            "body: give exactly one of rows, records or dataset_id, not rows and dataset_id",
        ),
    ],
)
def test_a_request_without_exactly_one_nonempty_input_is_422(client, cancer_model, body, detail):
    assert assert_problem(predict(client, cancer_model, body), 422, detail)["detail"] == detail


def test_unknown_body_fields_are_422(client, cancer_model):
    body = assert_problem(predict(client, cancer_model, {"row": [[1.0]]}), 422, "row")
    assert body["errors"][0]["field"] == "row"


def test_more_rows_than_max_prediction_rows_is_413_naming_the_limit(settings, cancer, network_fit):
    app = create_app(settings.model_copy(update={"max_prediction_rows": 3}))
    with TestClient(app) as client:
        model_id = insert_model(app, insert_dataset(app, cancer), network_fit)
        assert predict(client, model_id, {"rows": cancer.X[:3].tolist()}).status_code == 200
        body = assert_problem(
            predict(client, model_id, {"rows": cancer.X[:4].tolist()}),
            413,
            "rows holds 4 rows; at most 3 rows per request",
        )
        assert body["limit"] == 3
        records = [dict(zip(cancer.features, r, strict=True)) for r in cancer.X[:4].tolist()]
        assert_problem(predict(client, model_id, {"records": records}), 413, "at most 3 rows")


def test_string_labels_are_returned_as_strings(client, app, iris, iris_fit):
    model_id = insert_model(app, insert_dataset(app, iris, "iris"), iris_fit)
    rows = iris.X[[0, 60, 120]].tolist()
    body = predict(client, model_id, {"rows": rows}).json()
    assert body["classes"] == ["setosa", "versicolor", "virginica"]
    labels = [p["label"] for p in body["predictions"]]
    assert labels == iris_fit.classifier.predict(rows).tolist()
    assert labels == ["setosa", "versicolor", "virginica"]
    assert set(body["predictions"][0]["probabilities"]) == {"setosa", "versicolor", "virginica"}
    model = client.get(f"/v1/models/{model_id}").json()
    assert model["parameter_shapes"] == {"w": [4, 3], "b": [3, 1]}  # softmax: n_y = K


def test_predictions_after_the_first_load_nothing_again(client, app, cancer_model, cancer):
    # Each confirms its cached model's row with one point read of its own connection
    # (service.core.point_reads: tests/service/registry prove a deleted model is refused);
    # nothing goes through the engine's sessions. GET confirms it in its session: one SELECT.
    statements: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)

    assert predict(client, cancer_model, {"rows": cancer.X[:2].tolist()}).status_code == 200
    event.listen(app.state.database.engine, "before_cursor_execute", record)
    try:
        for i in range(5):
            response = predict(client, cancer_model, {"rows": cancer.X[i : i + 3].tolist()})
            assert response.status_code == 200
        predictions_only = list(statements)
        assert client.get(f"/v1/models/{cancer_model}").status_code == 200
    finally:
        event.remove(app.state.database.engine, "before_cursor_execute", record)
    assert predictions_only == []
    lookups = [" ".join(s.split()) for s in statements if s != "BEGIN"]  # SQLite's BEGIN
    assert len(lookups) == 1
    assert lookups[0].startswith("SELECT models.id FROM models WHERE models.id = ")


# POST /v1/models/{id}/predictions with dataset_id: CSV


def read_csv(response) -> list[list[str]]:
    return list(csv.reader(io.StringIO(response.text)))


def test_dataset_predictions_are_a_csv_of_every_row(client, app, cancer, network_fit):
    dataset_id = insert_dataset(app, cancer)
    model_id = insert_model(app, dataset_id, network_fit)
    response = predict(client, model_id, {"dataset_id": dataset_id})
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.headers["content-disposition"] == (
        f'attachment; filename="predictions-{model_id}-{dataset_id}.csv"'
    )
    header, *rows = read_csv(response)
    assert header == ["row", "label", "predicted", "p_0", "p_1"]
    assert len(rows) == len(cancer.y) == 569
    assert [int(r[0]) for r in rows] == list(range(569))
    assert [int(r[1]) for r in rows] == cancer.y.tolist()
    predicted = [int(r[2]) for r in rows]
    assert predicted == network_fit.classifier.predict(cancer.X).tolist()
    accuracy = np.mean(np.asarray(predicted) == cancer.y)
    assert accuracy > 0.9
    p1 = np.asarray([float(r[4]) for r in rows])
    np.testing.assert_array_equal(p1, network_fit.classifier.predict_proba(cancer.X)[:, 1])


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("model_type", ["two_layer_network", "logistic_regression"])
def test_a_rows_probabilities_are_the_same_bits_alone_in_a_batch_and_in_a_stored_dataset(
    client, app, cancer, model_type, dtype
):
    training = TrainingSpec(epochs=20, seed=0, dtype=dtype)
    trained = Fit(
        cancer,
        ModelSpec(type=model_type),
        training,
        engine.fit(
            cancer.X, cancer.y, ModelSpec(type=model_type), training, feature_names=cancer.features
        ),
    )
    dataset_id = insert_dataset(app, cancer)
    model_id = insert_model(app, dataset_id, trained)

    def probabilities(body: dict) -> list[list[float]]:
        return [[p["probabilities"]["0"], p["probabilities"]["1"]] for p in body["predictions"]]

    _, *stored = read_csv(predict(client, model_id, {"dataset_id": dataset_id}))
    from_dataset = [[float(p) for p in row[3:]] for row in stored]  # repr round-trips exactly
    index = np.random.default_rng(0).choice(len(cancer.y), size=1000)
    batch = probabilities(predict(client, model_id, {"rows": cancer.X[index].tolist()}).json())
    assert batch == [from_dataset[i] for i in index]
    for i in index[:25]:
        alone = probabilities(
            predict(client, model_id, {"rows": cancer.X[i : i + 1].tolist()}).json()
        )
        assert alone == [from_dataset[i]]


def test_dataset_predictions_stream_in_chunks_that_join_seamlessly(
    client, app, cancer, network_fit, monkeypatch
):
    dataset_id = insert_dataset(app, cancer)
    model_id = insert_model(app, dataset_id, network_fit)
    whole = predict(client, model_id, {"dataset_id": dataset_id}).text
    monkeypatch.setattr(service.models.predictions, "CSV_ROWS", 100)  # 6 chunks for 569 rows
    with client.stream(
        "POST", f"/v1/models/{model_id}/predictions", json={"dataset_id": dataset_id}
    ) as response:
        assert response.status_code == 200
        assert "content-length" not in response.headers  # streamed, not one body
        chunks = list(response.iter_text())
    assert "".join(chunks) == whole


def test_dataset_predictions_keep_string_labels(client, app, iris, iris_fit):
    dataset_id = insert_dataset(app, iris)
    model_id = insert_model(app, dataset_id, iris_fit)
    header, *rows = read_csv(predict(client, model_id, {"dataset_id": dataset_id}))
    assert header == ["row", "label", "predicted", "p_setosa", "p_versicolor", "p_virginica"]
    assert rows[0][1] == "setosa"
    assert rows[0][2] == "setosa"
    assert len(rows) == 150


def test_dataset_with_the_same_features_in_another_order_predicts_the_same(
    client, app, cancer, network_fit
):
    model_id = insert_model(app, insert_dataset(app, cancer), network_fit)
    order = np.random.default_rng(0).permutation(30)
    shuffled = Data(cancer.X[:, order], cancer.y, [cancer.features[j] for j in order], "target")
    shuffled_id = insert_dataset(app, shuffled, "shuffled")
    _, *rows = read_csv(predict(client, model_id, {"dataset_id": shuffled_id}))
    assert [int(r[2]) for r in rows] == network_fit.classifier.predict(cancer.X).tolist()


def test_dataset_whose_features_differ_from_the_models_is_422(client, app, cancer_model, iris):
    iris_id = insert_dataset(app, iris)
    body = assert_problem(
        predict(client, cancer_model, {"dataset_id": iris_id}),
        422,
        f"dataset_id: dataset {iris_id!r} lacks the model's features ['mean radius'",
    )
    assert "has features the model was not trained on ['sepal length (cm)'" in body["detail"]
    assert body["errors"][0]["field"] == "dataset_id"


def test_unknown_dataset_is_422_naming_dataset_id(client, cancer_model):
    response = predict(client, cancer_model, {"dataset_id": "nope"})
    body = assert_problem(response, 422, "dataset_id: dataset 'nope' does not exist")
    assert body["errors"] == [{"field": "dataset_id", "message": "dataset 'nope' does not exist"}]


# OpenAPI


def test_every_models_operation_has_an_example(client):
    paths = client.get("/openapi.json").json()["paths"]
    operations = [
        ("get", "/v1/models"),
        ("get", "/v1/models/{model_id}"),
        ("get", "/v1/models/{model_id}/download"),
        ("post", "/v1/models/{model_id}/predictions"),
    ]
    for method, path in operations:
        operation = paths[path][method]
        content = operation["responses"]["200"]["content"]
        assert any("example" in media or "examples" in media for media in content.values()), path
    predictions = paths["/v1/models/{model_id}/predictions"]["post"]
    examples = predictions["requestBody"]["content"]["application/json"]["examples"]
    assert set(examples) == {"rows", "records", "dataset"}
    assert set(predictions["responses"]["200"]["content"]) == {"application/json", "text/csv"}
    assert predictions["operationId"] == "models-create_predictions"
