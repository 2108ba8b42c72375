"""A job's `preprocessing` block: stored complete, checked against its dataset's columns."""

import pytest

from tests.service.factories import add_dataset, assert_problem


@pytest.fixture
def dataset_id(database) -> str:
    return add_dataset(database, rows=20, features=3)  # x0, x1, x2: numeric


def post_job(client, dataset_id: str, preprocessing: dict):
    body = {"dataset_id": dataset_id, "training": {"epochs": 5, "preprocessing": preprocessing}}
    return client.post("/v1/jobs", json=body)


def test_the_job_stores_the_preprocessing_with_every_default_filled_in(client, dataset_id):
    response = post_job(client, dataset_id, {"impute": "median", "categorical": ["x2"]})
    assert response.status_code == 202, response.text
    assert response.json()["training"]["preprocessing"] == {
        "impute": "median",
        "fill_value": 0.0,
        "missing_indicator": False,
        "max_categories": 1000,
        "min_frequency": 1,
        "standardize": True,
        "categorical": ["x2"],
        "ignore": [],
    }
    assert response.json()["warnings"] == []


@pytest.mark.parametrize(
    ("preprocessing", "field", "message"),
    [
        ({"ignore": ["x9"]}, "training.preprocessing.ignore", '"x9" is not a feature column'),
        ({"categorical": ["y"]}, "training.preprocessing.categorical", '"y" is not a feature'),
        ({"ignore": ["x0", "x1", "x2"]}, "training.preprocessing.ignore", "leaves no column"),
        ({"categorical": ["x1"], "ignore": ["x1"]}, "training.preprocessing.categorical", "also"),
        ({"impute": "mode"}, "training.preprocessing.impute", "Input should be"),
        ({"max_categories": 0}, "training.preprocessing.max_categories", "must be >= 1"),
        ({"colour": 1}, "training.preprocessing.colour", "Extra inputs are not permitted"),
    ],
)
def test_a_preprocessing_that_does_not_fit_the_dataset_is_422_naming_the_field(
    client, dataset_id, preprocessing, field, message
):
    problem = assert_problem(post_job(client, dataset_id, preprocessing), 422)
    [error] = problem["errors"]
    assert error["field"] == field
    assert message in error["message"]
