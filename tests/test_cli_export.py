"""`backprop export MODEL_ID --format onnx`, run as a real process against a live service
(the API and a worker of tests/test_cli_client.py's fixture), on a network the CLI trained
on the uploaded Palmer penguins CSV (words and empty cells)."""

import json
import os
import subprocess
import sys

import httpx
import numpy as np
import pytest

from tests import test_cli_client as live
from tests.onnx_graphs import records_of, run_graph, with_strangers
from tests.real_tables import REAL_TABLES, to_csv_bytes
from tests.service.live import ROOT
from tests.test_cli_client import NO_SUCH_ID, assert_no_traceback, backprop, fields_of

pytest.importorskip("onnxruntime")

service = live.service  # the module-scoped API and worker on SQLite


@pytest.fixture(scope="module")
def penguin_model(service, tmp_path_factory) -> str:
    """A two-layer network of 40 epochs on the penguins, uploaded and trained by the CLI."""
    path = tmp_path_factory.mktemp("penguins") / "penguins.csv"
    path.write_bytes(to_csv_bytes(REAL_TABLES["penguins"].load()))
    uploaded = backprop(service, "upload", str(path), "--label", "species", "--json")
    assert uploaded.returncode == 0, uploaded.stderr
    trained = backprop(
        service,
        *("train", "--dataset", json.loads(uploaded.stdout)["id"], "--model", "two_layer_network"),
        *("--hidden-units", "8", "--epochs", "40", "--follow", "--json"),
    )
    assert trained.returncode == 0, trained.stderr
    return json.loads(trained.stdout)["model_id"]


def penguin_records() -> list[dict]:
    frame = REAL_TABLES["penguins"].load().drop(columns="species")
    return with_strangers(records_of({c: frame[c].to_numpy() for c in frame.columns}))


def test_export_writes_a_graph_that_gives_the_services_predictions(
    service, penguin_model, tmp_path
):
    target = tmp_path / "penguins.onnx"
    result = backprop(service, "export", penguin_model, "--format", "onnx", "--out", str(target))
    as_json = backprop(
        service,
        *("export", penguin_model, "--format", "onnx", "--dtype", "float64"),
        *("--out", str(target), "--force", "--json"),
    )

    assert result.returncode == 0, result.stderr
    shown = fields_of(result.stdout)
    assert (shown["model"], shown["format"], shown["saved"]) == (
        penguin_model,
        "onnx (float32)",
        str(target),
    )
    assert as_json.returncode == 0, as_json.stderr
    assert json.loads(as_json.stdout) == {
        "id": penguin_model,
        "format": "onnx",
        "dtype": "float64",
        "path": str(target),
        "bytes": target.stat().st_size,
    }
    records = penguin_records()
    response = httpx.post(
        f"{service.url}/v1/models/{penguin_model}/predictions", json={"records": records}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    expected = np.array(
        [[p["probabilities"][str(c)] for c in body["classes"]] for p in body["predictions"]]
    )
    probabilities, labels = run_graph(target.read_bytes(), records)
    assert probabilities.dtype == np.float64
    np.testing.assert_allclose(probabilities, expected, rtol=0, atol=1e-9)
    assert labels.tolist() == [p["label"] for p in body["predictions"]]


def test_export_names_its_default_file_after_the_model(service, penguin_model, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("BACKPROP_")}
    env |= {"BACKPROP_URL": service.url, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "service.cli", "export", penguin_model, "--format", "onnx"]
    result = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True)

    assert result.returncode == 0, result.stderr
    assert fields_of(result.stdout)["saved"] == f"model-{penguin_model}.onnx"
    graph = (tmp_path / f"model-{penguin_model}.onnx").read_bytes()
    probabilities, _ = run_graph(graph, penguin_records()[:3])
    assert probabilities.dtype == np.float32  # the server's default


def test_a_bad_format_or_dtype_is_a_usage_error_before_any_request(tmp_path):
    bad_format = backprop(None, "export", NO_SUCH_ID, "--format", "pmml")
    bad_dtype = backprop(None, "export", NO_SUCH_ID, "--format", "onnx", "--dtype", "half")

    assert bad_format.returncode == 2
    assert "argument --format: invalid choice: 'pmml' (choose from 'onnx')" in bad_format.stderr
    assert bad_dtype.returncode == 2
    assert "invalid choice: 'half' (choose from 'float32', 'float64')" in bad_dtype.stderr


def test_an_unknown_model_is_exit_1_and_leaves_no_file(service, tmp_path):
    target = tmp_path / "none.onnx"
    result = backprop(service, "export", NO_SUCH_ID, "--format", "onnx", "--out", str(target))

    assert result.returncode == 1
    assert result.stderr == f"error: Not Found: model {NO_SUCH_ID!r} does not exist\n"
    assert_no_traceback(result)
    assert list(tmp_path.iterdir()) == []
