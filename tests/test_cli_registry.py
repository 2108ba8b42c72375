"""`backprop registry ...`, `backprop models delete` and `backprop jobs delete`, run as real
processes against a live service (the API and a worker of tests/test_cli_client.py)."""

import json

import httpx
import pytest

from tests import test_cli_client as live
from tests.test_cli_client import NO_SUCH_ID, assert_no_traceback, backprop, fields_of, table_of

service = live.service
data_csv = live.data_csv
dataset_id = live.dataset_id
trained = live.trained


def train_model(service, dataset_id: str, epochs: str) -> dict:
    """A succeeded logistic regression (its `end` event: id, model_id...)."""
    result = backprop(
        service,
        *("train", "--dataset", dataset_id, "--epochs", epochs, "--follow", "--json"),
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def churn(service, dataset_id, trained) -> dict[int, str]:
    """Registered model `churn` with versions 1 (the module's trained model) and 2."""
    second = train_model(service, dataset_id, "5")
    created = backprop(service, "registry", "create", "churn", "-d", "who leaves")
    assert created.returncode == 0, created.stderr
    assert fields_of(created.stdout)["name"] == "churn"
    versions = {}
    for model_id in (trained["model_id"], second["model_id"]):
        result = backprop(service, "registry", "register", "churn", model_id, "--json")
        assert result.returncode == 0, result.stderr
        versions[json.loads(result.stdout)["version"]] = model_id
    assert sorted(versions) == [1, 2]
    return versions


def test_registry_alias_sets_and_moves_and_show_lists_versions(service, churn):
    first = backprop(service, "registry", "alias", "churn", "production", "1")
    moved = backprop(service, "registry", "alias", "churn", "production", "2")
    shown = backprop(service, "registry", "show", "churn")

    assert first.returncode == 0, first.stderr
    assert fields_of(first.stdout) == {
        "alias": "churn@production",
        "version": "1",
        "model": churn[1],
        "was": "-",
    }
    assert fields_of(moved.stdout)["was"] == "v1"
    assert shown.returncode == 0, shown.stderr
    fields, _, table = shown.stdout.partition("\n\n")
    assert fields_of(fields)["aliases"] == "production -> v2"
    assert fields_of(fields)["description"] == "who leaves"
    header, *rows = table_of(table)
    assert header == ["VERSION", "MODEL", "ALIASES", "REGISTERED (UTC)", "BY"]
    assert [row[:3] for row in rows] == [["2", churn[2], "production"], ["1", churn[1], "-"]]


def test_registry_list_shows_names_latest_versions_and_aliases(service, churn):
    backprop(service, "registry", "alias", "churn", "staging", "1")
    result = backprop(service, "registry", "list")
    as_json = backprop(service, "registry", "list", "--json")

    assert result.returncode == 0, result.stderr
    header, *rows = table_of(result.stdout)
    assert header == ["NAME", "LATEST", "ALIASES", "CREATED (UTC)"]
    mine = next(row for row in rows if row[0] == "churn")
    assert mine[1] == "2"
    assert "staging -> v1" in mine[2]
    page = json.loads(as_json.stdout)
    assert [m["name"] for m in page["data"]] == ["churn"]


def test_registry_predict_answers_as_predict_by_id_of_the_aliased_model(service, churn, data_csv):
    assert backprop(service, "registry", "alias", "churn", "production", "2").returncode == 0
    through = backprop(service, "registry", "predict", "churn", "production", str(data_csv))
    by_id = backprop(service, "predict", churn[2], str(data_csv))
    as_json = backprop(
        service, "registry", "predict", "churn", "production", str(data_csv), "--json"
    )

    assert through.returncode == 0, through.stderr
    assert through.stdout == by_id.stdout
    assert f"note: answered by model {churn[2]}\n" in through.stderr
    answers = json.loads(as_json.stdout)
    assert {answer["model_id"] for answer in answers} == {churn[2]}
    assert len(table_of(through.stdout)) == 1 + live.ROWS


def test_registry_errors_are_exit_1_with_the_problem(service, churn):
    taken = backprop(service, "registry", "create", "churn")
    bad_name = backprop(service, "registry", "create", "no good")
    unknown = backprop(service, "registry", "alias", "churn", "production", "9")

    assert (taken.returncode, taken.stderr) == (
        1,
        "error: Conflict: registered model 'churn' already exists\n",
    )
    assert bad_name.returncode == 1
    assert bad_name.stderr.startswith("error: Unprocessable Content: name: ")
    assert unknown.returncode == 1
    assert unknown.stderr == (
        "error: Unprocessable Content: version: registered model 'churn' has no version 9\n"
    )
    for result in (taken, bad_name, unknown):
        assert_no_traceback(result)


def test_models_delete_is_refused_while_aliased_then_deletes(service, dataset_id, churn):
    backprop(service, "registry", "alias", "churn", "production", "2")
    held = backprop(service, "models", "delete", churn[2])
    assert held.returncode == 1
    assert held.stderr.startswith(
        f"error: Conflict: model {churn[2]} is in use: alias 'production' of registered "
        "model 'churn' points at its version 2."
    )

    spare = train_model(service, dataset_id, "3")
    deleted = backprop(service, "models", "delete", spare["model_id"], "--json")
    again = backprop(service, "models", "delete", spare["model_id"])
    assert deleted.returncode == 0, deleted.stderr
    assert json.loads(deleted.stdout) == {"id": spare["model_id"], "deleted": True}
    assert httpx.get(f"{service.url}/v1/models/{spare['model_id']}").status_code == 404
    assert (again.returncode, again.stderr) == (
        1,
        f"error: Not Found: model {spare['model_id']!r} does not exist\n",
    )


def test_jobs_delete_deletes_a_finished_job_and_lists_still_work(service, dataset_id):
    done = train_model(service, dataset_id, "3")
    deleted = backprop(service, "jobs", "delete", done["id"])
    listed = backprop(service, "jobs", "--limit", "1", "--json")
    unknown = backprop(service, "jobs", "delete", NO_SUCH_ID)

    assert deleted.returncode == 0, deleted.stderr
    assert fields_of(deleted.stdout) == {"job": done["id"], "deleted": "yes"}
    assert httpx.get(f"{service.url}/v1/jobs/{done['id']}").status_code == 404
    assert httpx.get(f"{service.url}/v1/models/{done['model_id']}").status_code == 404
    assert listed.returncode == 0, listed.stderr
    assert set(json.loads(listed.stdout)) == {"data", "next_cursor"}
    assert (unknown.returncode, unknown.stderr) == (
        1,
        f"error: Not Found: job {NO_SUCH_ID!r} does not exist\n",
    )


@pytest.mark.parametrize(
    "command",
    [
        *(
            ["registry", name]
            for name in ("create", "list", "show", "register", "alias", "predict")
        ),
        ["models", "delete"],
        ["jobs", "delete"],
    ],
    ids=" ".join,
)
def test_every_new_command_has_help_with_examples(command):
    result = backprop(None, *command, "--help")

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"usage: backprop {' '.join(command)} ")
    assert f"backprop {' '.join(command)}" in result.stdout.split("Examples:")[1]
    for option in ("--url URL", "--api-key KEY", "--json"):
        assert option in result.stdout
