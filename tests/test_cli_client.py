"""The `backprop` client commands, run as real processes against a running service.

One API (uvicorn) and one worker on a fresh migrated SQLite database serve the
whole module; each test runs `python -m service.cli ...` with BACKPROP_URL pointing
at it and reads what a person (or a script) would: the exit status, stdout, stderr.
"""

import csv
import io
import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import httpx
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from engine import ModelSpec, TrainingSpec
from service.cli.client import BackpropClient
from service.core.migrate import upgrade
from service.jobs.schemas import HISTORY_FIELDS
from tests.service.live import (
    ROOT,
    free_port,
    service_env,
    start_api,
    start_worker,
    stop,
    wait_until_ready,
)

TIMINGS = {"poll_seconds": 0.05, "flush_seconds": 0.1, "heartbeat_seconds": 0.5}
ROWS = 120
FEATURES = ("x0", "x1", "x2")
NO_SUCH_ID = "0123456789abcdef0123456789abcdef"
# A job that trains until it is cancelled (or, as a safety net, for 30 s).
ENDLESS = ["--model", "two_layer_network", "--hidden-units", "64", "--epochs", "1000000"]
ENDLESS += ["--no-early-stopping", "--tolerance", "0", "--time-limit", "30"]


# -- the service and its data --------------------------------------------------------------


class Service:
    def __init__(self, url: str, database_url: str, env: dict[str, str]):
        self.url = url
        self.database_url = database_url
        self.env = env

    def job(self, job_id: str) -> dict:
        return httpx.get(f"{self.url}/v1/jobs/{job_id}").json()

    def wait_for_status(self, job_id: str, *states: str, timeout: float = 20.0) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            job = self.job(job_id)
            if job["status"] in states:
                return job
            time.sleep(0.05)
        raise TimeoutError(f"job {job_id} is {job['status']}, not {states}, after {timeout} s")


@pytest.fixture(scope="module")
def service(tmp_path_factory) -> Iterator[Service]:
    """The API and one worker on a fresh SQLite database, on a free port."""
    database_url = f"sqlite:///{tmp_path_factory.mktemp('cli_client') / 'backprop.db'}"
    upgrade(database_url)
    env = service_env(database_url, **TIMINGS)
    port = free_port()
    processes = [start_api(env, port), start_worker(env)]
    try:
        wait_until_ready(f"http://127.0.0.1:{port}")
        yield Service(f"http://127.0.0.1:{port}", database_url, env)
    finally:
        for process in processes:
            stop(process)


def learnable_columns(rows: int, seed: int) -> dict[str, np.ndarray]:
    """Features x0..x2 and a label y in {0, 1} that x0 predicts."""
    rng = np.random.default_rng(seed)
    y = np.arange(rows) % 2
    X = rng.normal(size=(rows, len(FEATURES)))
    X[:, 0] += 3.0 * y
    return {**{name: X[:, i] for i, name in enumerate(FEATURES)}, "y": y}


def write_csv(path: Path, columns: dict[str, np.ndarray]) -> Path:
    names = list(columns)
    with path.open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(names)
        writer.writerows(zip(*(columns[name].tolist() for name in names), strict=True))
    return path


@pytest.fixture(scope="module")
def data_csv(tmp_path_factory) -> Path:
    return write_csv(tmp_path_factory.mktemp("data") / "points.csv", learnable_columns(ROWS, 1))


@pytest.fixture(scope="module")
def dataset_id(service, data_csv) -> str:
    result = backprop(service, "upload", str(data_csv), "--label", "y", "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)["id"]


@pytest.fixture(scope="module")
def trained(service, dataset_id) -> dict:
    """A succeeded logistic regression of 40 epochs (no early stopping), as its `end` event."""
    result = backprop(
        service,
        *("train", "--dataset", dataset_id, "--optimizer", "gd", "--epochs", "40"),
        *("--no-early-stopping", "--follow", "--json"),
    )
    assert result.returncode == 0, result.stderr
    job = json.loads(result.stdout)
    assert job["status"] == "succeeded"
    return job


def backprop(
    service: Service | None, *args: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess:
    """`backprop ARGS` as a process, against ``service`` (BACKPROP_URL) unless ``env`` is given."""
    if env is None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("BACKPROP_")}
        if service is not None:
            env["BACKPROP_URL"] = service.url
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.run(
        [sys.executable, "-m", "service.cli", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def fields_of(stdout: str) -> dict[str, str]:
    """A `key: value` block as a dict."""
    pairs = (line.split(":", 1) for line in stdout.splitlines() if ":" in line)
    return {key.strip(): value.strip() for key, value in pairs}


def table_of(stdout: str) -> list[list[str]]:
    """A table's rows (the header first), split on runs of two spaces or more; Rich's
    rule under the header is left out."""
    lines = [line.strip() for line in stdout.splitlines()]
    return [re.split(r"\s{2,}", line) for line in lines if line and set(line) != {"─"}]


def assert_no_traceback(result: subprocess.CompletedProcess) -> None:
    assert "Traceback" not in result.stderr, result.stderr
    assert "Traceback" not in result.stdout, result.stdout


# -- upload ----------------------------------------------------------------------------------


def test_upload_prints_the_new_dataset_then_reports_the_same_file_as_existing(service, tmp_path):
    path = write_csv(tmp_path / "fresh.csv", learnable_columns(50, seed=7))

    first = backprop(service, "upload", str(path), "--label", "y")
    again = backprop(service, "upload", str(path), "--label", "y")

    assert first.returncode == 0, first.stderr
    shown = fields_of(first.stdout)
    assert shown["upload"] == "new dataset (201 Created)"
    assert len(shown["id"]) == 32
    assert shown["name"] == "fresh"  # the file's name
    assert (shown["rows"], shown["features"], shown["label"]) == ("50", "3", "y")
    assert shown["classes"] == "0, 1"
    assert shown["class counts"] == "0: 25, 1: 25"
    assert again.returncode == 0, again.stderr
    assert fields_of(again.stdout)["upload"].startswith("already stored (200 OK")
    assert fields_of(again.stdout)["id"] == shown["id"]


def test_upload_json_is_the_server_document(service, data_csv, dataset_id):
    result = backprop(service, "upload", str(data_csv), "--label", "y", "--json")

    assert result.returncode == 0, result.stderr
    dataset = json.loads(result.stdout)
    assert dataset["id"] == dataset_id
    assert dataset["rows"] == ROWS
    assert dataset["features"] == list(FEATURES)
    assert dataset["class_counts"] == {"0": ROWS // 2, "1": ROWS // 2}


def test_upload_reads_parquet_with_a_label_column_and_a_name(service, tmp_path):
    columns = learnable_columns(40, seed=3)
    table = pa.table({"target": columns.pop("y"), **columns})  # the label comes first
    path = tmp_path / "points.parquet"
    pq.write_table(table, path)

    result = backprop(
        service, "upload", str(path), "--label", "target", "--name", "from parquet", "--json"
    )

    assert result.returncode == 0, result.stderr
    dataset = json.loads(result.stdout)
    assert (dataset["format"], dataset["name"], dataset["label"]) == (
        "parquet",
        "from parquet",
        "target",
    )
    assert dataset["features"] == list(FEATURES)


def test_upload_of_a_missing_file_is_exit_1_without_contacting_the_server(tmp_path):
    missing = tmp_path / "nothere.csv"
    result = backprop(None, "upload", str(missing), "--url", "http://127.0.0.1:9")

    assert result.returncode == 1
    assert result.stderr == f"error: {missing}: no such file\n"


def test_upload_refused_by_the_server_prints_the_problem(service, data_csv):
    result = backprop(service, "upload", str(data_csv), "--label", "nope")

    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.startswith('error: Unprocessable Content: label column "nope"')
    assert_no_traceback(result)


# -- train -----------------------------------------------------------------------------------


@pytest.mark.slow
def test_train_follow_shows_progress_and_ends_with_the_model(service, dataset_id):
    result = backprop(
        service,
        *("train", "--dataset", dataset_id, "--model", "two_layer_network", "--hidden-units", "8"),
        *("--optimizer", "gd", "--learning-rate", "0.5", "--epochs", "60"),
        *("--no-early-stopping", "--follow"),
    )

    assert result.returncode == 0, result.stderr
    outcome = fields_of(result.stdout)
    assert outcome["status"] == "succeeded"
    assert outcome["stop reason"] == "max_epochs"
    assert outcome["epochs"] == "60 of 60"
    job = service.job(outcome["job"])
    assert outcome["model"] == job["model_id"]
    assert len(job["model_id"]) == 32
    # Not a terminal: no carriage returns, one line per 10% (and the first epoch).
    progress = [line for line in result.stderr.splitlines() if line.startswith("epoch ")]
    assert "\r" not in result.stderr
    assert progress[0].startswith("epoch  1/60 [")
    assert progress[-1].startswith("epoch 60/60 [" + "#" * 30 + "] 100%")
    assert re.search(r"train \d\.\d{4} \(\d+\.\d%\)", progress[-1])  # loss (accuracy)
    assert "val " in progress[-1]
    assert "ETA" in progress[-1]
    assert 5 <= len(progress) <= 12
    first_status = result.stderr.splitlines()[0]
    assert first_status in (f"job {outcome['job']}: queued", f"job {outcome['job']}: running")


def test_train_sends_only_the_options_given(service, dataset_id):
    result = backprop(
        service,
        *("train", "--dataset", dataset_id, "--model", "two_layer_network"),
        *("--hidden-units", "4", "--activation", "relu", "--epochs", "7", "--patience", "3"),
        "--json",
    )

    assert result.returncode == 0, result.stderr
    job = json.loads(result.stdout)
    assert job["status"] in ("queued", "running", "succeeded")
    assert job["model"]["hidden_units"] == 4
    assert job["model"]["activation"] == "relu"
    assert job["model"]["init"] == ModelSpec().init  # the server's default
    assert job["training"]["epochs"] == 7
    assert job["training"]["early_stopping"]["patience"] == 3
    assert job["training"]["optimizer"] == TrainingSpec().optimizer
    service.wait_for_status(job["id"], "succeeded")


def test_train_without_follow_prints_the_queued_job(service, dataset_id):
    result = backprop(service, "train", "--dataset", dataset_id, "--epochs", "5")

    assert result.returncode == 0, result.stderr
    shown = fields_of(result.stdout)
    assert shown["status"] in ("queued", "running", "succeeded")
    assert shown["dataset"] == dataset_id
    assert shown["model"].startswith("type=logistic_regression")
    assert "epochs=5" in shown["training"]
    service.wait_for_status(shown["id"], "succeeded")


def test_train_choices_come_from_the_engine():
    result = backprop(None, "train", "--dataset", NO_SUCH_ID, "--activation", "swish")

    assert result.returncode == 2  # argparse's usage error
    assert "argument --activation: invalid choice: 'swish'" in result.stderr
    for name in ("sigmoid", "tanh", "relu", "leaky_relu"):
        assert name in result.stderr


@pytest.mark.slow
def test_follow_of_a_diverging_job_exits_3_with_the_reason(service, dataset_id):
    result = backprop(
        service,
        *("train", "--dataset", dataset_id, "--model", "two_layer_network"),
        *("--optimizer", "gd", "--learning-rate", "1e300", "--follow"),
    )

    assert result.returncode == 3, result.stderr
    outcome = fields_of(result.stdout)
    assert outcome["status"] == "failed"
    assert outcome["stop reason"] == "diverged"
    assert outcome["error"].startswith("training diverged at epoch")
    assert outcome["model"] == "-"
    assert_no_traceback(result)


def test_unknown_dataset_is_exit_1_with_the_problem_detail(service):
    result = backprop(service, "train", "--dataset", NO_SUCH_ID, "--follow")

    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr == (
        f"error: Unprocessable Content: dataset_id: dataset '{NO_SUCH_ID}' does not exist\n"
    )


def test_invalid_spec_prints_the_field_and_reason(service, dataset_id):
    result = backprop(service, "train", "--dataset", dataset_id, "--epochs", "0")

    assert result.returncode == 1
    assert result.stderr == ("error: Unprocessable Content: training.epochs: must be >= 1, got 0\n")


def test_unreachable_url_is_exit_2(dataset_id):
    url = f"http://127.0.0.1:{free_port()}"
    for args in (["jobs"], ["train", "--dataset", dataset_id, "--follow"], ["status", "x"]):
        result = backprop(None, *args, "--url", url)

        assert result.returncode == 2, (args, result.stderr)
        assert result.stderr.startswith(f"error: {url} could not be reached: ")
        assert_no_traceback(result)


# -- jobs, status, history -------------------------------------------------------------------


def test_jobs_lists_a_table_filtered_by_dataset_and_status(service, dataset_id, trained):
    result = backprop(service, "jobs", "--dataset", dataset_id, "--status", "succeeded")

    assert result.returncode == 0, result.stderr
    header, *rows = table_of(result.stdout)
    assert header == [
        *("ID", "STATUS", "MODEL", "EPOCH", "TRAIN LOSS", "VAL LOSS", "TRAIN ACC", "VAL ACC"),
        "CREATED (UTC)",
    ]
    mine = next(row for row in rows if row[0] == trained["id"])
    assert mine[1:4] == ["succeeded", "logistic", "40/40"]
    assert float(mine[4]) == pytest.approx(trained["progress"]["train_loss"], abs=1e-4)
    # The worker writes the latest accuracy with the losses; no validation split: "-".
    assert 0.5 < trained["progress"]["train_accuracy"] <= 1.0
    assert float(mine[6]) == pytest.approx(trained["progress"]["train_accuracy"], abs=1e-4)
    assert mine[7] == "-"
    assert all(row[1] == "succeeded" for row in rows)


def test_jobs_json_and_limit(service, trained):
    result = backprop(service, "jobs", "--limit", "1", "--json")

    assert result.returncode == 0, result.stderr
    page = json.loads(result.stdout)
    assert len(page["data"]) == 1
    assert set(page) == {"data", "next_cursor"}


def test_jobs_with_an_unknown_status_is_exit_1(service):
    result = backprop(service, "jobs", "--status", "bogus")

    assert result.returncode == 1
    assert result.stderr.startswith(
        "error: Unprocessable Content: query.status: 'bogus' is not one of"
    )


def test_status_shows_the_job_its_progress_and_its_model(service, trained):
    result = backprop(service, "status", trained["id"])

    assert result.returncode == 0, result.stderr
    shown = fields_of(result.stdout)
    assert shown["status"] == "succeeded"
    assert shown["epoch"] == "40/40 (100%)"
    assert shown["stop reason"] == "max_epochs"
    assert float(shown["train acc"]) == pytest.approx(trained["progress"]["train_accuracy"], 1e-3)
    assert shown["model id"] == trained["model_id"]
    assert "optimizer=gd" in shown["training"]
    assert "early_stopping=off" in shown["training"]


def test_status_follow_of_a_finished_job_prints_its_outcome_at_once(service, trained):
    result = backprop(service, "status", trained["id"], "--follow", "--json")

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["model_id"] == trained["model_id"]


def test_status_of_an_unknown_job_is_exit_1(service):
    result = backprop(service, "status", NO_SUCH_ID)

    assert result.returncode == 1
    assert result.stderr.startswith("error: Not Found: ")
    assert NO_SUCH_ID in result.stderr


def test_history_prints_one_row_per_epoch(service, trained):
    result = backprop(service, "history", trained["id"])

    assert result.returncode == 0, result.stderr
    header, *rows = table_of(result.stdout)
    assert header == ["EPOCH", "TRAIN LOSS", "VAL LOSS", "TRAIN ACC", "VAL ACC", "GRAD NORM", "MS"]
    assert [int(row[0]) for row in rows] == list(range(1, 41))


def test_history_csv_is_the_servers_with_its_header(service, trained):
    result = backprop(service, "history", trained["id"], "--csv", "--since-epoch", "30")

    assert result.returncode == 0, result.stderr
    reader = csv.DictReader(io.StringIO(result.stdout))
    rows = list(reader)
    assert tuple(reader.fieldnames) == HISTORY_FIELDS
    assert [int(row["epoch"]) for row in rows] == list(range(31, 41))
    assert float(rows[-1]["train_loss"]) == pytest.approx(trained["progress"]["train_loss"])


def test_history_json_and_max_points(service, trained):
    result = backprop(service, "history", trained["id"], "--max-points", "5", "--json")

    assert result.returncode == 0, result.stderr
    history = json.loads(result.stdout)
    epochs = [point["epoch"] for point in history["points"]]
    assert epochs[0] == 1
    assert epochs[-1] == 40
    assert len(epochs) <= 5


# -- predict ---------------------------------------------------------------------------------


def test_predict_prints_a_label_and_probabilities_per_row(service, trained, data_csv):
    result = backprop(service, "predict", trained["model_id"], str(data_csv))

    assert result.returncode == 0, result.stderr
    header, *rows = table_of(result.stdout)
    assert header == ["ROW", "LABEL", "P(0)", "P(1)"]
    assert [int(row[0]) for row in rows] == list(range(1, ROWS + 1))
    assert {row[1] for row in rows} == {"0", "1"}
    for row in rows:
        assert float(row[2]) + float(row[3]) == pytest.approx(1.0, abs=2e-4)
        assert row[1] == ("0" if float(row[2]) >= float(row[3]) else "1")
    truth = [str(label) for label in learnable_columns(ROWS, 1)["y"]]
    accuracy = np.mean([row[1] == label for row, label in zip(rows, truth, strict=True)])
    assert accuracy > 0.8
    assert result.stderr == "note: leaving out column(s) the model does not take: 'y'\n"


def test_predict_json_sends_batches_and_matches_the_server(service, trained, data_csv):
    result = backprop(
        service, "predict", trained["model_id"], str(data_csv), "--batch-rows", "50", "--json"
    )

    assert result.returncode == 0, result.stderr
    responses = json.loads(result.stdout)
    assert [len(r["predictions"]) for r in responses] == [50, 50, 20]
    columns = learnable_columns(ROWS, 1)
    rows = [[columns[name][i] for name in FEATURES] for i in range(ROWS)]
    direct = httpx.post(
        f"{service.url}/v1/models/{trained['model_id']}/predictions", json={"rows": rows}
    ).json()
    assert [p for r in responses for p in r["predictions"]] == direct["predictions"]


def test_predict_reads_parquet_with_columns_in_any_order(service, trained, tmp_path):
    columns = learnable_columns(10, seed=1)
    path = tmp_path / "rows.parquet"
    pq.write_table(pa.table({name: columns[name] for name in ("x2", "x0", "x1")}), path)

    result = backprop(service, "predict", trained["model_id"], str(path), "--json")

    assert result.returncode == 0, result.stderr
    assert len(json.loads(result.stdout)[0]["predictions"]) == 10
    assert result.stderr == ""


def test_predict_names_missing_feature_columns(service, trained, tmp_path):
    path = tmp_path / "partial.csv"
    path.write_text("x0,x1\n1.0,2.0\n")

    result = backprop(service, "predict", trained["model_id"], str(path))

    assert result.returncode == 1
    assert result.stderr == (
        f"error: {path} lacks 1 of the model's 3 feature columns: 'x2'; "
        "its columns are 'x0', 'x1'\n"
    )


def test_predict_sends_an_empty_cell_as_missing(service, trained, tmp_path):
    path = tmp_path / "holes.csv"
    path.write_text("x0,x1,x2\n1.0,2.0,3.0\n4.0,,6.0\n")

    result = backprop(service, "predict", trained["model_id"], str(path), "--json")

    assert result.returncode == 0, result.stderr
    [response] = json.loads(result.stdout)
    assert len(response["predictions"]) == 2


def test_predict_names_the_row_and_column_of_an_infinite_cell(service, trained, tmp_path):
    path = tmp_path / "holes.csv"
    path.write_text("x0,x1,x2\n1.0,2.0,3.0\n4.0,inf,6.0\n")

    result = backprop(service, "predict", trained["model_id"], str(path))

    assert result.returncode == 1
    assert result.stderr == (
        f"error: {path}: row 2, column 'x1' is not a finite number (row 1 is the first data row)\n"
    )


def test_predict_with_an_unknown_model_is_exit_1(service, data_csv):
    result = backprop(service, "predict", NO_SUCH_ID, str(data_csv))

    assert result.returncode == 1
    assert result.stderr.startswith("error: Not Found: ")


# -- cancel ----------------------------------------------------------------------------------


def start_job(service: Service, dataset_id: str, *options: str) -> str:
    result = backprop(service, "train", "--dataset", dataset_id, *options, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)["id"]


@pytest.mark.slow
def test_cancel_queued_and_running_jobs_and_follow_exits_3(service, dataset_id):
    running = start_job(service, dataset_id, *ENDLESS)
    service.wait_for_status(running, "running")
    queued = start_job(service, dataset_id)  # the only worker is busy

    cancel_queued = backprop(service, "cancel", queued)
    cancel_running = backprop(service, "cancel", running)
    followed = backprop(service, "status", running, "--follow")
    cancel_again = backprop(service, "cancel", running)

    assert cancel_queued.returncode == 0, cancel_queued.stderr
    assert fields_of(cancel_queued.stdout) == {
        "job": queued,
        "cancel": "cancelled",
        "status": "cancelled",
    }
    assert cancel_running.returncode == 0, cancel_running.stderr
    assert fields_of(cancel_running.stdout)["status"] == "cancelling"
    assert fields_of(cancel_running.stdout)["cancel"].startswith("cancelling: the worker stops")
    assert followed.returncode == 3, followed.stderr
    outcome = fields_of(followed.stdout)
    assert (outcome["status"], outcome["stop reason"]) == ("cancelled", "cancelled")
    assert fields_of(cancel_again.stdout)["cancel"] == "already cancelled: nothing to cancel"


# -- the event stream drops ------------------------------------------------------------------


@pytest.mark.slow
def test_follow_reconnects_after_the_api_restarts_missing_no_epoch(service, dataset_id):
    """A second API on the same database is killed mid-stream and started again on its port,
    while `backprop status --follow` and, in this process, BackpropClient.job_events follow
    the same job through it. (SIGTERM would not do: uvicorn's graceful shutdown lets an
    open stream run to its end.)
    """
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    api = start_api(service.env, port)
    follower = None
    reconnects: list[tuple[int, str]] = []
    try:
        wait_until_ready(url)
        job_id = start_job(
            service,
            dataset_id,
            *("--model", "two_layer_network", "--hidden-units", "1024", "--epochs", "1000000"),
            *("--no-early-stopping", "--tolerance", "0", "--time-limit", "3"),
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith("BACKPROP_")}
        follower = subprocess.Popen(
            [sys.executable, "-m", "service.cli", "status", job_id, "--follow", "--url", url],
            env={**env, "PYTHONPATH": str(ROOT)},
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        with BackpropClient(url) as client:
            events = client.job_events(job_id, on_reconnect=lambda *tried: reconnects.append(tried))
            received = [next(e for e in events if e.event == "epoch")]
            before = []  # what the CLI printed before the stream dropped: up to an epoch
            while not (before and before[-1].startswith("epoch ")):
                before.append(follower.stderr.readline())
                assert before[-1], "the follower ended before showing an epoch"
            api.kill()
            api.wait()
            time.sleep(0.5)
            api = start_api(service.env, port)
            received += list(events)
        stdout, after = follower.communicate(timeout=30)
    finally:
        if follower is not None and follower.poll() is None:
            follower.kill()
        stop(api)

    # The client: every epoch exactly once across the drop, then the end.
    end = received[-1]
    assert end.event == "end"
    assert end.data["status"] == "succeeded"
    epochs = [event.data["epoch"] for event in received if event.event == "epoch"]
    assert epochs == list(range(1, end.data["progress"]["epoch"] + 1))
    assert reconnects
    assert reconnects[0][1].startswith("peer closed connection")
    # The command: a note, then on to the job's end.
    stderr = "".join(before) + after
    assert follower.returncode == 0, stderr
    assert after.startswith("event stream lost ("), stderr
    assert "reconnecting (attempt 1)" in after
    outcome = fields_of(stdout)
    assert (outcome["status"], outcome["stop reason"]) == ("succeeded", "time_limit")


# -- the API key -----------------------------------------------------------------------------


class RecordingHandler(BaseHTTPRequestHandler):
    """Answers every request with a 401 problem and records its Authorization header."""

    seen: ClassVar[list[str | None]] = []

    def do_GET(self) -> None:
        type(self).seen.append(self.headers.get("Authorization"))
        problem = {"title": "Unauthorized", "status": 401}
        problem["detail"] = "the API key is missing or wrong"
        body = json.dumps(problem).encode()
        self.send_response(401)
        self.send_header("Content-Type", "application/problem+json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def recording_server() -> Iterator[tuple[str, Callable[[], list[str | None]]]]:
    """A stand-in HTTP server on 127.0.0.1 that shows what the client sent."""
    RecordingHandler.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), RecordingHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", lambda: RecordingHandler.seen
    finally:
        server.shutdown()
        server.server_close()


def test_api_key_is_sent_as_a_bearer_token(recording_server):
    url, seen = recording_server
    env = {k: v for k, v in os.environ.items() if not k.startswith("BACKPROP_")}

    by_option = backprop(None, "jobs", "--url", url, "--api-key", "s3cret", env=dict(env))
    by_variable = backprop(
        None, "jobs", env={**env, "BACKPROP_URL": url, "BACKPROP_API_KEY": "from-env"}
    )
    without = backprop(None, "jobs", "--url", url, env=dict(env))

    assert seen() == ["Bearer s3cret", "Bearer from-env", None]
    for result in (by_option, by_variable, without):
        assert result.returncode == 1
        assert result.stderr == "error: Unauthorized: the API key is missing or wrong\n"
