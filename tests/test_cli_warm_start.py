"""`backprop train --warm-start MODEL_ID` and the lineage `backprop models show` prints, run as
real processes against a live service (the API and a worker of tests/test_cli_client.py)."""

import json

import pytest

from tests import test_cli_client as live
from tests.test_cli_client import backprop, fields_of, learnable_columns, write_csv

# The module-scoped fixtures of test_cli_client: a service, a dataset and a trained model.
service = live.service
data_csv = live.data_csv
dataset_id = live.dataset_id
trained = live.trained


@pytest.fixture(scope="module")
def new_rows(service, tmp_path_factory) -> str:
    """Another upload of the same columns (x0, x1, x2; label y), other rows."""
    path = write_csv(tmp_path_factory.mktemp("new") / "more.csv", learnable_columns(80, seed=2))
    result = backprop(service, "upload", str(path), "--label", "y", "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)["id"]


def fine_tune(service, dataset: str, parent: str, *options: str) -> dict:
    result = backprop(
        service,
        *("train", "--dataset", dataset, "--warm-start", parent, "--epochs", "5"),
        *options,
        *("--follow", "--json"),
    )
    assert result.returncode == 0, result.stderr
    job = json.loads(result.stdout)
    assert job["status"] == "succeeded", job
    return job


def test_train_warm_start_fine_tunes_and_models_show_prints_the_parent(service, trained, new_rows):
    parent = trained["model_id"]
    child_job = fine_tune(service, new_rows, parent)
    assert child_job["warm_start"] == {"model_id": parent}
    assert child_job["model"]["type"] == "logistic_regression"  # the parent's spec

    shown = fields_of(backprop(service, "models", "show", child_job["model_id"]).stdout)
    assert shown["parent"] == parent
    assert "lineage" not in shown  # one ancestor: the parent line says it all

    grandchild_job = fine_tune(service, new_rows, child_job["model_id"])
    result = backprop(service, "models", "show", grandchild_job["model_id"])
    assert result.returncode == 0, result.stderr
    shown = fields_of(result.stdout)
    assert shown["parent"] == child_job["model_id"]
    assert shown["lineage"] == f"{child_job['model_id']} <- {parent}"
    assert fields_of(backprop(service, "models", "show", parent).stdout)["parent"] == "-"

    status = fields_of(backprop(service, "status", grandchild_job["id"]).stdout)
    assert status["warm start"] == child_job["model_id"]


def test_a_warm_start_the_server_refuses_is_exit_1_with_its_reasons(service, trained, new_rows):
    result = backprop(
        service,
        *("train", "--dataset", new_rows, "--warm-start", trained["model_id"]),
        *("--model", "two_layer_network"),
    )
    assert result.returncode == 1
    assert result.stderr.startswith(
        f"error: Unprocessable Content: model '{trained['model_id']}' cannot be fine-tuned "
        "on this request: warm_start.model_id: model.type: the parent model has "
        "'logistic_regression', the request 'two_layer_network'"
    )
