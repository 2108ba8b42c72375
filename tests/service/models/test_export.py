"""GET /v1/models/{id}/export?format=onnx: the file runs in onnxruntime and gives the
service's own predictions.

In process (the app on SQLite and PostgreSQL): models are stored as a worker stores them
(a succeeded job and queue.results.model_row) from fits on breast cancer, iris and Palmer
penguins; the exported graph, fed the records POST .../predictions was sent, must give
its probabilities to 1e-9 (float64) and 1e-6 (float32), and its labels. Live: an API under
uvicorn and a worker that trains the penguins from an uploaded CSV.
"""

import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_iris

import engine
from engine import FitResult, ModelSpec, TrainingSpec, code_table
from engine.onnx_export import MISSING_PACKAGE, MISSING_TEXT
from service.core.tables import Job
from service.datasets.reader_types import NULL_TOKENS
from service.queue.results import model_row
from tests.conftest import BACKENDS
from tests.onnx_graphs import Records, records_of, run_graph, with_strangers
from tests.real_tables import REAL_TABLES, to_csv_bytes
from tests.service.factories import add_job, assert_problem
from tests.service.live import api_and_worker

pytest.importorskip("onnxruntime")

TOLERANCE = {"float32": 1e-6, "float64": 1e-9}
NO_SUCH_ID = "0123456789abcdef0123456789abcdef"


@dataclass(frozen=True)
class Case:
    model: ModelSpec
    result: FitResult
    records: Records  # what the service and the graph are both given


def table_of(name: str) -> tuple[dict[str, np.ndarray], np.ndarray]:
    if name == "penguins":
        frame = REAL_TABLES["penguins"].load()
        table = {c: frame[c].to_numpy() for c in frame.columns if c != "species"}
        return table, frame["species"].to_numpy()
    bunch = load_breast_cancer() if name == "cancer" else load_iris()
    table = dict(zip(map(str, bunch.feature_names), bunch.data.T, strict=True))
    return table, bunch.target if name == "cancer" else bunch.target_names[bunch.target]


CASES = {
    "cancer-logistic": ("cancer", ModelSpec(type="logistic_regression")),
    "cancer-tanh": ("cancer", ModelSpec(type="two_layer_network", hidden_units=6)),
    "iris-relu": ("iris", ModelSpec(type="two_layer_network", hidden_units=6, activation="relu")),
    "penguins-logistic": ("penguins", ModelSpec(type="logistic_regression")),
    "penguins-leaky_relu": (
        "penguins",
        ModelSpec(type="two_layer_network", hidden_units=6, activation="leaky_relu"),
    ),
}


@pytest.fixture(scope="module")
def fits() -> dict[str, Case]:
    """One fit per case (40 epochs), shared by both backends."""
    cases = {}
    for name, (data, model) in CASES.items():
        table, y = table_of(data)
        X, columns = code_table(table)
        result = engine.fit(X, y, model, TrainingSpec(epochs=40, seed=0), columns=columns)
        records = records_of(table)
        cases[name] = Case(
            model, result, with_strangers(records) if data == "penguins" else records
        )
    return cases


def store(database, case: Case) -> str:
    """A succeeded job and its model, as a worker leaves them; the model's id."""
    job_id = add_job(database, None, model=case.model, status="succeeded")
    with database.writes() as session, session.begin():
        model = model_row(session.get(Job, job_id), case.result)
        session.add(model)
    return model.id


def service_probabilities(response: httpx.Response) -> tuple[np.ndarray, list[object]]:
    """(probabilities (N, K) in the answer's class order, labels) of a predictions answer."""
    assert response.status_code == 200, response.text
    body = response.json()
    keys = [str(c) for c in body["classes"]]
    rows = [[p["probabilities"][k] for k in keys] for p in body["predictions"]]
    return np.array(rows), [p["label"] for p in body["predictions"]]


def assert_same_predictions(graph: bytes, records: Records, predictions: httpx.Response, dtype):
    expected, expected_labels = service_probabilities(predictions)
    probabilities, labels = run_graph(graph, records)
    assert probabilities.dtype == np.dtype(dtype)
    np.testing.assert_allclose(probabilities, expected, rtol=0, atol=TOLERANCE[dtype])
    top = np.sort(expected, axis=1)
    clear = top[:, -1] - top[:, -2] > 10 * TOLERANCE[dtype]  # no near-tie to break otherwise
    assert clear.mean() > 0.9
    assert labels[clear].tolist() == np.array(expected_labels, dtype=object)[clear].tolist()


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("case", CASES)
def test_the_exported_graph_gives_the_services_predictions(client, database, fits, case, dtype):
    model_id = store(database, fits[case])
    records = fits[case].records
    response = client.get(
        f"/v1/models/{model_id}/export", params={"format": "onnx", "dtype": dtype}
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/octet-stream"
    assert response.headers["content-disposition"] == (
        f'attachment; filename="model-{model_id}.onnx"'
    )
    predictions = client.post(f"/v1/models/{model_id}/predictions", json={"records": records})
    assert_same_predictions(response.content, records, predictions, dtype)


def test_float32_is_the_default_and_the_metadata_names_the_model(client, database, fits):
    import onnx

    model_id = store(database, fits["iris-relu"])
    response = client.get(f"/v1/models/{model_id}/export", params={"format": "onnx"})
    assert response.status_code == 200, response.text
    proto = onnx.load_model_from_string(response.content)
    props = {p.key: p.value for p in proto.metadata_props}
    assert props["model_id"] == model_id
    assert props["dtype"] == "float32"
    assert props["classes"] == '["setosa", "versicolor", "virginica"]'
    assert proto.graph.output[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT


def test_an_unknown_model_is_404(client):
    response = client.get(f"/v1/models/{NO_SUCH_ID}/export", params={"format": "onnx"})
    assert assert_problem(response, 404)["detail"] == f"model {NO_SUCH_ID!r} does not exist"


@pytest.mark.parametrize(
    ("params", "field", "message"),
    [
        ({"format": "pmml"}, "query.format", "Input should be 'onnx'"),
        ({}, "query.format", "Field required"),
        (
            {"format": "onnx", "dtype": "float16"},
            "query.dtype",
            "Input should be 'float32' or 'float64'",
        ),
    ],
)
def test_a_bad_format_or_dtype_is_422_naming_it(client, database, fits, params, field, message):
    model_id = store(database, fits["cancer-logistic"])
    problem = assert_problem(client.get(f"/v1/models/{model_id}/export", params=params), 422)
    assert problem["errors"] == [{"field": field, "message": message}]
    assert problem["detail"] == f"{field}: {message}"


def test_without_the_onnx_package_it_is_501_saying_what_to_install(
    client, database, fits, monkeypatch
):
    model_id = store(database, fits["cancer-logistic"])
    monkeypatch.setitem(sys.modules, "onnx", None)  # how Python marks a package as absent
    response = client.get(f"/v1/models/{model_id}/export", params={"format": "onnx"})
    problem = assert_problem(response, 501)
    assert problem["title"] == "Not Implemented"
    assert problem["detail"] == MISSING_PACKAGE
    assert "pip install 'backprop-service[onnx]'" in problem["detail"]


def test_a_model_with_a_column_named_as_an_output_is_501_saying_so(client, database):
    bunch = load_iris()
    names = ["label", *map(str, bunch.feature_names[1:])]  # a column the graph cannot take
    result = engine.fit(
        bunch.data, bunch.target, ModelSpec(), TrainingSpec(epochs=5), feature_names=names
    )
    model_id = store(database, Case(ModelSpec(), result, []))
    response = client.get(f"/v1/models/{model_id}/export", params={"format": "onnx"})
    assert assert_problem(response, 501)["detail"] == (
        f"model {model_id!r} cannot be exported to ONNX: input columns ['label'] would share "
        "a name with the graph's outputs"
    )


def test_the_graphs_missing_texts_are_the_csv_readers_null_tokens():
    assert ("", *NULL_TOKENS) == MISSING_TEXT


# Live: an API under uvicorn and a worker that trains the model from an uploaded CSV.


@pytest.fixture(scope="module", params=BACKENDS)
def live_url(request, tmp_path_factory) -> Iterator[str]:
    """The base URL of an API and a worker on a fresh migrated database of the backend."""
    folder = tmp_path_factory.mktemp("export")
    with api_and_worker(request.param, folder, "backprop_export") as url:
        yield url


def train_penguins(url: str, model: dict) -> str:
    """Upload the penguins CSV, train ``model`` for 40 epochs; the model's id."""
    frame = REAL_TABLES["penguins"].load()
    upload = httpx.post(
        f"{url}/v1/datasets",
        params={"name": "penguins", "label": "species"},
        content=to_csv_bytes(frame),
        headers={"content-type": "text/csv"},
        timeout=30,
    )
    assert upload.status_code in (200, 201), upload.text
    body = {"dataset_id": upload.json()["id"], "model": model, "training": {"epochs": 40}}
    job = httpx.post(f"{url}/v1/jobs", json=body, timeout=30)
    assert job.status_code == 202, job.text
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        finished = httpx.get(f"{url}/v1/jobs/{job.json()['id']}").json()
        if finished["status"] in ("succeeded", "failed", "cancelled"):
            assert finished["status"] == "succeeded", finished
            return finished["model_id"]
        time.sleep(0.05)
    raise TimeoutError(f"job {job.json()['id']} did not finish")


def test_a_model_trained_by_a_worker_exports_to_its_predictions(live_url):
    model_id = train_penguins(live_url, {"type": "two_layer_network", "hidden_units": 8})
    frame = REAL_TABLES["penguins"].load().drop(columns="species")
    records = with_strangers(records_of({c: frame[c].to_numpy() for c in frame.columns}))
    predictions = httpx.post(
        f"{live_url}/v1/models/{model_id}/predictions", json={"records": records}, timeout=30
    )
    assert "never seen in training" in predictions.json()["warnings"][0]  # Atlantis
    for dtype in ("float64", "float32"):
        graph = httpx.get(
            f"{live_url}/v1/models/{model_id}/export",
            params={"format": "onnx", "dtype": dtype},
            timeout=30,
        )
        assert graph.status_code == 200, graph.text
        assert_same_predictions(graph.content, records, predictions, dtype)
