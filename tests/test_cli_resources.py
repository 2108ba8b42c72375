"""`backprop datasets|models|sweeps ...`, help pages and completion, run as real processes
against a live service (the API and a worker of tests/test_cli_client.py's fixtures).

Each command: its table or `key: value` block, its --json (the server's document), and
an error with its exit status.
"""

import io
import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

import engine
from service.cli.output import print_table
from tests import test_cli_client as live
from tests.service.live import ROOT, free_port, run_with_terminal_stderr
from tests.test_cli_client import (
    NO_SUCH_ID,
    assert_no_traceback,
    backprop,
    fields_of,
    learnable_columns,
    table_of,
    write_csv,
)

# The module-scoped fixtures of test_cli_client: a service, a dataset and a trained model.
service = live.service
data_csv = live.data_csv
dataset_id = live.dataset_id
trained = live.trained

# A sweep whose trials train until cancelled (or, as a safety net, for 30 s).
ENDLESS_SWEEP = ["--model", "two_layer_network", "--hidden-units", "64", "--epochs", "1000000"]
ENDLESS_SWEEP += ["--no-early-stopping", "--tolerance", "0", "--time-limit", "30"]


# -- datasets --------------------------------------------------------------------------------


def test_datasets_list_shows_a_table_and_json(service, dataset_id):
    result = backprop(service, "datasets", "list")
    as_json = backprop(service, "datasets", "list", "--limit", "1", "--json")

    assert result.returncode == 0, result.stderr
    header, *rows = table_of(result.stdout)
    assert header == ["ID", "NAME", "ROWS", "FEATURES", "LABEL", "CLASSES", "CREATED (UTC)"]
    mine = next(row for row in rows if row[0] == dataset_id)
    assert mine[1:6] == ["points", str(live.ROWS), "3", "y", "2"]
    assert as_json.returncode == 0, as_json.stderr
    page = json.loads(as_json.stdout)
    assert set(page) == {"data", "next_cursor"}
    assert len(page["data"]) == 1


def test_datasets_list_with_a_bad_limit_is_exit_1(service):
    result = backprop(service, "datasets", "list", "--limit", "0")

    assert result.returncode == 1
    assert result.stderr.startswith("error: Unprocessable Content: query.limit: ")


def test_datasets_show_prints_the_dataset_and_its_json(service, dataset_id):
    result = backprop(service, "datasets", "show", dataset_id)
    as_json = backprop(service, "datasets", "show", dataset_id, "--json")

    assert result.returncode == 0, result.stderr
    shown = fields_of(result.stdout)
    assert (shown["id"], shown["rows"], shown["label"]) == (dataset_id, str(live.ROWS), "y")
    # The columns' table: role, kind, missing cells, distinct values, range or levels.
    for name in live.FEATURES:
        assert re.search(rf"^{name} +feature +numeric +0 +120 +-?\d", result.stdout, re.M)
    assert re.search(r"^y +label +numeric +0 +2 +0 \.\. 1 \(mean 0\.5\)$", result.stdout, re.M)
    assert shown["format"] == "csv"
    assert as_json.returncode == 0, as_json.stderr
    assert json.loads(as_json.stdout)["features"] == list(live.FEATURES)


def test_datasets_show_of_an_unknown_dataset_is_exit_1(service):
    result = backprop(service, "datasets", "show", NO_SUCH_ID)

    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr == f"error: Not Found: dataset '{NO_SUCH_ID}' does not exist\n"


def test_datasets_delete_removes_it_and_a_second_delete_is_exit_1(service, tmp_path):
    path = write_csv(tmp_path / "doomed.csv", learnable_columns(30, seed=11))
    uploaded = backprop(service, "upload", str(path), "--label", "y", "--json")
    doomed = json.loads(uploaded.stdout)["id"]

    deleted = backprop(service, "datasets", "delete", doomed)
    again = backprop(service, "datasets", "delete", doomed, "--json")
    shown = backprop(service, "datasets", "show", doomed)

    assert deleted.returncode == 0, deleted.stderr
    assert fields_of(deleted.stdout) == {"dataset": doomed, "deleted": "yes"}
    assert again.returncode == 1
    assert again.stdout == ""
    assert again.stderr == f"error: Not Found: dataset '{doomed}' does not exist\n"
    assert shown.returncode == 1


def test_datasets_delete_json(service, tmp_path):
    path = write_csv(tmp_path / "doomed.csv", learnable_columns(30, seed=12))
    doomed = json.loads(backprop(service, "upload", str(path), "--json").stdout)["id"]

    result = backprop(service, "datasets", "delete", doomed, "--json")

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"id": doomed, "deleted": True}


# -- models ----------------------------------------------------------------------------------


def test_models_list_shows_the_trained_model_filtered_by_job(service, trained):
    result = backprop(service, "models", "list", "--job", trained["id"])

    assert result.returncode == 0, result.stderr
    header, *rows = table_of(result.stdout)
    assert header == ["ID", "MODEL", "JOB", "EPOCHS", "TRAIN LOSS", "VAL LOSS", "CREATED (UTC)"]
    assert len(rows) == 1
    assert rows[0][:4] == [trained["model_id"], "logistic", trained["id"], "40"]
    assert float(rows[0][4]) == pytest.approx(trained["progress"]["train_loss"], abs=1e-4)


def test_models_list_json_filters_by_dataset_and_type(service, trained, dataset_id):
    result = backprop(
        service,
        "models",
        "list",
        "--dataset",
        dataset_id,
        "--type",
        "logistic_regression",
        "--json",
    )

    assert result.returncode == 0, result.stderr
    page = json.loads(result.stdout)
    assert trained["model_id"] in [model["id"] for model in page["data"]]
    assert {model["type"] for model in page["data"]} == {"logistic_regression"}
    assert all(model["parameters"] is None for model in page["data"])


def test_models_list_with_an_unknown_type_is_a_usage_error():
    result = backprop(None, "models", "list", "--type", "forest")

    assert result.returncode == 2
    assert "argument --type: invalid choice: 'forest'" in result.stderr
    assert "logistic_regression" in result.stderr


def test_models_show_prints_the_model_and_its_json(service, trained):
    result = backprop(service, "models", "show", trained["model_id"])
    as_json = backprop(service, "models", "show", trained["model_id"], "--json")

    assert result.returncode == 0, result.stderr
    shown = fields_of(result.stdout)
    assert (shown["id"], shown["job"]) == (trained["model_id"], trained["id"])
    assert shown["model"].startswith("type=logistic_regression")
    assert shown["features"] == "x0, x1, x2"
    assert (shown["classes"], shown["stop reason"], shown["epochs"]) == ("0, 1", "max_epochs", "40")
    assert as_json.returncode == 0, as_json.stderr
    model = json.loads(as_json.stdout)
    assert model["feature_names"] == list(live.FEATURES)
    assert model["parameters"] is None  # `models download` gets the arrays


def test_models_show_of_an_unknown_model_is_exit_1(service):
    result = backprop(service, "models", "show", NO_SUCH_ID)

    assert result.returncode == 1
    assert result.stderr.startswith("error: Not Found: ")
    assert NO_SUCH_ID in result.stderr


def test_models_download_writes_an_npz_the_engine_loads(service, trained, tmp_path):
    target = tmp_path / "model.npz"
    result = backprop(service, "models", "download", trained["model_id"], "-o", str(target))
    as_json = backprop(
        service, "models", "download", trained["model_id"], "-o", str(target), "--force", "--json"
    )

    assert result.returncode == 0, result.stderr
    shown = fields_of(result.stdout)
    assert (shown["model"], shown["saved"]) == (trained["model_id"], str(target))
    fitted = engine.load(target)
    columns = learnable_columns(5, seed=1)
    rows = np.column_stack([columns[name] for name in live.FEATURES])  # (m, n_x)
    assert fitted.predict_proba(rows).shape == (5, 2)
    assert as_json.returncode == 0, as_json.stderr
    assert json.loads(as_json.stdout) == {
        "id": trained["model_id"],
        "path": str(target),
        "bytes": target.stat().st_size,
    }


def test_models_download_keeps_an_existing_file_and_leaves_nothing_on_404(service, tmp_path):
    existing = tmp_path / "mine.npz"
    existing.write_bytes(b"keep me")

    refused = backprop(service, "models", "download", NO_SUCH_ID, "-o", str(existing))
    missing = backprop(service, "models", "download", NO_SUCH_ID, "-o", str(tmp_path / "new.npz"))

    assert refused.returncode == 1
    assert refused.stderr == f"error: {existing} exists; --force overwrites it\n"
    assert existing.read_bytes() == b"keep me"
    assert missing.returncode == 1
    assert missing.stderr.startswith("error: Not Found: ")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine.npz"]  # no partial file


# -- sweeps ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def finished_sweep(service, dataset_id) -> dict:
    """A grid of two learning rates on logistic regressions, followed to its end (--json)."""
    result = backprop(
        service,
        *("sweeps", "create", "--dataset", dataset_id, "--optimizer", "gd", "--epochs", "20"),
        *("--vary", "learning_rate=0.1,0.5", "--follow", "--json"),
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines()[-1].endswith("succeeded, 2/2 trials done (2 succeeded)")
    return json.loads(result.stdout)


def test_sweeps_create_follow_ends_with_the_leaderboard(finished_sweep):
    assert finished_sweep["status"] == "succeeded"
    assert finished_sweep["search"]["space"] == {"learning_rate": [0.1, 0.5]}
    board = finished_sweep["leaderboard"]
    assert [trial["rank"] for trial in board] == [1, 2]
    assert {trial["trial"]["learning_rate"] for trial in board} == {0.1, 0.5}
    assert all(trial["model_id"] for trial in board)


def test_sweeps_create_random_search_without_follow_prints_the_sweep(service, dataset_id):
    result = backprop(
        service,
        *("sweeps", "create", "--dataset", dataset_id, "--epochs", "5", "--strategy", "random"),
        *("--trials", "3", "--search-seed", "7", "--vary", "learning_rate=0.001..0.1/log"),
        *("--vary", "l2=0,0.01"),
    )

    assert result.returncode == 0, result.stderr
    shown = fields_of(result.stdout)
    assert shown["search"] == ("random: learning_rate=0.001..0.1/log l2=0.0,0.01 trials=3 seed=7")
    assert "/3 trials done (" in shown["trials"]
    assert "epochs=5" in shown["training"]


def test_sweeps_create_that_the_server_refuses_is_exit_1(service, dataset_id):
    # A logistic regression has no hidden layer to vary.
    result = backprop(
        service, "sweeps", "create", "--dataset", dataset_id, "--vary", "hidden_units=4,8"
    )

    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.startswith("error: Unprocessable Content: ")
    assert "hidden_units" in result.stderr
    assert_no_traceback(result)


def test_sweeps_create_with_a_malformed_vary_is_a_usage_error():
    result = backprop(None, "sweeps", "create", "--dataset", NO_SUCH_ID, "--vary", "l2")

    assert result.returncode == 2
    assert "argument --vary: expected NAME=V1,V2,... or NAME=LOW..HIGH, got 'l2'" in result.stderr


def test_sweeps_list_and_show(service, finished_sweep):
    listed = backprop(service, "sweeps", "list")
    listed_json = backprop(service, "sweeps", "list", "--json")
    shown = backprop(service, "sweeps", "show", finished_sweep["id"])
    shown_json = backprop(service, "sweeps", "show", finished_sweep["id"], "--json")

    assert listed.returncode == 0, listed.stderr
    header, *rows = table_of(listed.stdout)
    assert header == ["ID", "STATUS", "STRATEGY", "SEARCH", "DONE", "CREATED (UTC)"]
    mine = next(row for row in rows if row[0] == finished_sweep["id"])
    assert mine[1:5] == ["succeeded", "grid", "learning_rate", "2/2"]
    assert finished_sweep["id"] in [s["id"] for s in json.loads(listed_json.stdout)["data"]]
    assert shown.returncode == 0, shown.stderr
    block, table = shown.stdout.split("\n\n")
    assert fields_of(block)["trials"] == "2/2 trials done (2 succeeded)"
    header, *trials = table_of(table)
    assert header[:4] == ["RANK", "JOB", "STATUS", "LEARNING_RATE"]
    assert [row[1] for row in trials] == [t["job_id"] for t in finished_sweep["leaderboard"]]
    assert json.loads(shown_json.stdout)["leaderboard"] == finished_sweep["leaderboard"]


def test_jobs_lists_the_trials_of_a_sweep(service, finished_sweep):
    result = backprop(service, "jobs", "--sweep", finished_sweep["id"], "--json")

    assert result.returncode == 0, result.stderr
    ids = {job["id"] for job in json.loads(result.stdout)["data"]}
    assert ids == {trial["job_id"] for trial in finished_sweep["leaderboard"]}


def test_sweeps_show_of_an_unknown_sweep_is_exit_1(service):
    result = backprop(service, "sweeps", "show", NO_SUCH_ID)

    assert result.returncode == 1
    assert result.stderr.startswith("error: Not Found: ")


@pytest.mark.slow
def test_sweeps_cancel_stops_every_trial_and_the_follower_exits_3(service, dataset_id):
    env = {k: v for k, v in os.environ.items() if not k.startswith("BACKPROP_")}
    command = [sys.executable, "-m", "service.cli", "sweeps", "create", "--dataset", dataset_id]
    follower = subprocess.Popen(
        [*command, *ENDLESS_SWEEP, "--vary", "activation=tanh,relu", "--follow"],
        env={**env, "PYTHONPATH": str(ROOT), "BACKPROP_URL": service.url},
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        first = follower.stderr.readline()  # "sweep ID: 2 trials"
        sweep_id = first.split()[1].rstrip(":")
        shown = json.loads(backprop(service, "sweeps", "show", sweep_id, "--json").stdout)
        service.wait_for_status(shown["leaderboard"][0]["job_id"], "running")

        cancelled = backprop(service, "sweeps", "cancel", sweep_id)
        again = backprop(service, "sweeps", "cancel", sweep_id, "--json")
        unknown = backprop(service, "sweeps", "cancel", NO_SUCH_ID)
        stdout, stderr = follower.communicate(timeout=60)
    finally:
        if follower.poll() is None:
            follower.kill()

    assert first == f"sweep {sweep_id}: 2 trials\n"
    assert cancelled.returncode == 0, cancelled.stderr
    assert fields_of(cancelled.stdout)["sweep"] == sweep_id
    assert fields_of(cancelled.stdout)["cancel"] in (
        "cancelling: running trials stop at their next epoch",
        "cancelled",
    )
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["id"] == sweep_id
    assert unknown.returncode == 1
    assert unknown.stderr.startswith("error: Not Found: ")
    assert follower.returncode == 3, stderr
    assert stderr.splitlines()[-1].endswith("cancelled, 2/2 trials done (2 cancelled)")
    assert fields_of(stdout.split("\n\n")[0])["status"] == "cancelled"


def test_new_commands_exit_2_when_the_server_is_unreachable():
    url = f"http://127.0.0.1:{free_port()}"
    for args in (
        ["datasets", "list"],
        ["models", "show", NO_SUCH_ID],
        ["models", "download", NO_SUCH_ID, "-o", os.devnull + ".npz"],
        ["sweeps", "list"],
    ):
        result = backprop(None, *args, "--url", url)

        assert result.returncode == 2, (args, result.stderr)
        assert result.stderr.startswith(f"error: {url} could not be reached: "), result.stderr


# -- progress on a terminal -----------------------------------------------------------------


@pytest.mark.slow
def test_follow_on_a_terminal_redraws_one_rich_line(service, dataset_id):
    """stderr is a pseudo-terminal: Rich redraws the bar in place; stdout stays plain."""
    args = ["train", "--dataset", dataset_id, "--epochs", "200", "--no-early-stopping"]
    code, stdout, screen = run_with_terminal_stderr(
        [*args, "--optimizer", "gd", "--follow"], service.url
    )

    assert code == 0, screen
    assert "\x1b[" in screen  # cursor control: the line is redrawn, not repeated
    assert "epoch 200/200" in screen
    assert "100%" in screen
    assert "[####" not in screen  # not the line-per-10% form of a log
    assert fields_of(stdout)["status"] == "succeeded"
    assert "\x1b" not in stdout


# -- help pages and completion ---------------------------------------------------------------

COMMANDS = [
    ["upload"],
    ["train"],
    ["jobs"],
    ["status"],
    ["cancel"],
    ["history"],
    ["predict"],
    ["export"],
    *(["datasets", name] for name in ("list", "show", "delete")),
    *(["models", name] for name in ("list", "show", "download")),
    *(["sweeps", name] for name in ("create", "list", "show", "cancel")),
]


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_every_client_command_has_help_with_examples(command):
    result = backprop(None, *command, "--help")

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"usage: backprop {' '.join(command)} ")
    assert "Examples:\n" in result.stdout
    assert f"backprop {' '.join(command)}" in result.stdout.split("Examples:")[1]
    for option in ("--url URL", "--api-key KEY", "--json"):
        assert option in result.stdout


def test_a_group_without_a_command_shows_its_commands():
    result = backprop(None, "sweeps")

    assert result.returncode == 2
    for name in ("create", "list", "show", "cancel"):
        assert name in result.stdout + result.stderr


def test_shell_completion_script_is_offered():
    env = {k: v for k, v in os.environ.items() if not k.startswith("BACKPROP_")}
    result = subprocess.run(
        [sys.executable, "-m", "service.cli", "--show-completion", "bash"],
        # Typer otherwise asks shellingham which shell runs it (under make: sh, which it
        # cannot complete); with detection off, --show-completion takes the shell's name.
        env={**env, "PYTHONPATH": str(ROOT), "_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION": "1"},
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 0, result.stderr
    assert "complete" in result.stdout
    assert "_BACKPROP_COMPLETE" in result.stdout


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_table_on_a_narrow_terminal_keeps_ids_whole(monkeypatch):
    screen = Terminal()
    monkeypatch.setattr(sys, "stdout", screen)
    monkeypatch.setenv("COLUMNS", "30")

    print_table(["ID", "STATUS"], [[NO_SUCH_ID, "succeeded"]])

    assert NO_SUCH_ID in screen.getvalue()
    assert "succeeded" in screen.getvalue()
    assert "…" not in screen.getvalue()
