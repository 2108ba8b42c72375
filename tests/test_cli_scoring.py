"""`backprop evaluate` and `backprop batch-predict` as real processes against a live
service (two uvicorn APIs, one of which sends every evaluation to the worker, and a worker
process scoring in blocks of 64 rows), on SQLite."""

import json

import httpx
import numpy as np
import pandas as pd
import pytest

import engine
from tests.real_tables import code_frame
from tests.service.live import free_port, run_with_terminal_stderr
from tests.service.scoring.live import breast_cancer, live_service, train, upload
from tests.test_cli_client import NO_SUCH_ID, assert_no_traceback, backprop, fields_of


class Url:
    """What tests.test_cli_client.backprop needs of a service: its url."""

    def __init__(self, url: str):
        self.url = url


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    yield from live_service("sqlite", tmp_path_factory.mktemp("cli_scoring"))


@pytest.fixture(scope="module")
def cancer(live) -> dict[str, str]:
    dataset_id = upload(live.url, breast_cancer(), "diagnosis", "breast-cancer")
    return {"dataset": dataset_id, "model": train(live.url, dataset_id, "logistic_regression")}


def expected(live, model_id: str) -> tuple[np.ndarray, np.ndarray]:
    """(labels (m,), probabilities (m, 2)) of the model's own predict_proba, in process."""
    classifier = engine.load(httpx.get(f"{live.url}/v1/models/{model_id}/download").content)
    X, _, _ = code_frame(breast_cancer(), "diagnosis")
    return classifier.predict(X), classifier.predict_proba(X)


@pytest.mark.parametrize("which", ["url", "queued_url"])
def test_evaluate_prints_the_metrics_the_api_computes(live, cancer, which):
    """At once (200) or waiting for the worker (202): the same figures."""
    api = httpx.post(
        f"{live.url}/v1/models/{cancer['model']}/evaluations",
        json={"dataset_id": cancer["dataset"]},
    ).json()
    service = Url(getattr(live, which))
    result = backprop(service, "evaluate", cancer["model"], cancer["dataset"])
    as_json = backprop(service, "evaluate", cancer["model"], cancer["dataset"], "--json")

    assert result.returncode == 0, result.stderr
    fields = fields_of(result.stdout)
    assert fields["rows"] == "569"
    assert fields["accuracy"] == f"{api['accuracy']:.4f}"
    assert fields["roc_auc"] == f"{api['roc_auc']:.4f}"
    assert as_json.returncode == 0, as_json.stderr
    assert json.loads(as_json.stdout) == api
    waited = "queued; waiting for a worker" in result.stderr
    assert waited == (which == "queued_url")


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_batch_predict_writes_every_rows_scores_to_the_file(live, cancer, tmp_path, suffix):
    out = tmp_path / f"scores{suffix}"
    result = backprop(
        Url(live.url), "batch-predict", cancer["model"], cancer["dataset"], "--out", str(out)
    )
    assert result.returncode == 0, result.stderr
    assert "succeeded, 569/569 rows" in result.stderr
    assert f"wrote 569 rows to {out}" in result.stderr
    frame = pd.read_parquet(out) if suffix == ".parquet" else pd.read_csv(out)
    labels, probabilities = expected(live, cancer["model"])
    assert list(frame.columns) == ["row", "label", "p_0", "p_1"]
    np.testing.assert_array_equal(frame["row"].to_numpy(), np.arange(569))
    np.testing.assert_array_equal(frame["label"].to_numpy(), labels)
    np.testing.assert_array_equal(frame[["p_0", "p_1"]].to_numpy(), probabilities)
    assert [p.name for p in tmp_path.iterdir()] == [out.name]  # no partial file left


def test_batch_predict_refuses_an_out_file_of_another_kind_without_asking(cancer, tmp_path):
    out = tmp_path / "scores.xlsx"
    result = backprop(None, "batch-predict", cancer["model"], cancer["dataset"], "--out", str(out))
    assert result.returncode == 1
    assert result.stderr.strip() == f"error: --out {out}: the name must end in .parquet or .csv"
    assert not out.exists()


def test_an_unknown_model_is_exit_1_with_the_problem(live, cancer, tmp_path):
    out = tmp_path / "scores.csv"
    result = backprop(
        Url(live.url), "batch-predict", NO_SUCH_ID, cancer["dataset"], "--out", str(out)
    )
    assert_no_traceback(result)
    assert result.returncode == 1
    assert result.stderr.strip() == f"error: Not Found: model '{NO_SUCH_ID}' does not exist"
    result = backprop(Url(live.url), "evaluate", cancer["model"], NO_SUCH_ID)
    assert result.returncode == 1
    assert f"dataset_id: dataset '{NO_SUCH_ID}' does not exist" in result.stderr


@pytest.mark.parametrize(
    ("command", "options"),
    [(["evaluate"], ["--json"]), (["batch-predict"], ["--out FILE"])],
    ids=" ".join,
)
def test_each_command_has_help_with_examples(command, options):
    result = backprop(None, *command, "--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"usage: backprop {' '.join(command)} ")
    assert (
        f"backprop {' '.join(command)} MODEL_ID DATASET_ID" in result.stdout.split("Examples:")[1]
    )
    for option in ("--url URL", "--api-key KEY", *options):
        assert option in result.stdout


def test_an_unreachable_server_is_exit_2(tmp_path):
    url = f"http://127.0.0.1:{free_port()}"
    for args in (
        ["evaluate", NO_SUCH_ID, NO_SUCH_ID],
        ["batch-predict", NO_SUCH_ID, NO_SUCH_ID, "--out", str(tmp_path / "x.csv")],
    ):
        result = backprop(None, *args, "--url", url)
        assert result.returncode == 2, (args, result.stderr)
        assert result.stderr.startswith(f"error: {url} could not be reached: "), result.stderr


@pytest.mark.slow
def test_batch_predict_on_a_terminal_draws_a_rich_bar(live, cancer, tmp_path):
    """stderr is a pseudo-terminal: Rich draws the bar in place, to 569/569 rows."""
    out = tmp_path / "scores.parquet"
    args = ["batch-predict", cancer["model"], cancer["dataset"], "--out", str(out)]
    code, _, screen = run_with_terminal_stderr(args, live.url)
    assert code == 0, screen
    assert "\x1b[" in screen  # cursor control: a Rich bar, not log lines
    assert "569/569" in screen
    assert "succeeded" in screen
    assert len(pd.read_parquet(out)) == 569
