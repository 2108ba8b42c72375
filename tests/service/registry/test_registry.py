"""/v1/registered-models in process, on SQLite and PostgreSQL: names, versions, aliases and
their moves, predictions through an alias, and the deletes of models and jobs they govern.

Models are real fits of scikit-learn's breast cancer data (tests/service/models/test_models).
"""

import threading
from datetime import datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete, select

from service.app import create_app
from service.core.auth import key_id
from service.core.settings import Settings
from service.core.states import CANCELLED, QUEUED, RUNNING
from service.core.tables import Checkpoint, Job, JobHistory, Model, ModelVersion
from tests.service.factories import add_job, assert_problem
from tests.service.models import test_models as models

cancer, network_fit, logistic_fit = models.cancer, models.network_fit, models.logistic_fit
BASE = "/v1/registered-models"


@pytest.fixture
def two_models(app, cancer, network_fit, logistic_fit) -> list[str]:
    """Two fitted models of the breast cancer data: a network and a logistic regression."""
    dataset_id = models.insert_dataset(app, cancer, "cancer")
    return [
        models.insert_model(app, dataset_id, network_fit),
        models.insert_model(app, dataset_id, logistic_fit),
    ]


def registered(client, name: str, *model_ids: str) -> None:
    assert client.post(BASE, json={"name": name}).status_code == 201
    for number, model_id in enumerate(model_ids, start=1):
        response = client.post(f"{BASE}/{name}/versions", json={"model_id": model_id})
        assert response.status_code == 201, response.text
        assert response.json()["version"] == number


def set_alias(client, name: str, alias: str, version: int):
    return client.put(f"{BASE}/{name}/aliases/{alias}", json={"version": version})


# Names.


def test_a_registered_model_is_created_listed_and_shown(client):
    response = client.post(BASE, json={"name": "churn.v2_b-1", "description": "who leaves"})
    assert response.status_code == 201
    assert response.headers["location"] == f"{BASE}/churn.v2_b-1"
    body = response.json()
    assert body["name"] == "churn.v2_b-1"
    assert body["description"] == "who leaves"
    assert (body["latest_version"], body["aliases"], body["versions"]) == (None, {}, [])
    assert body["created_by"] is None  # the API has no keys
    datetime.fromisoformat(body["created_at"])
    assert client.get(f"{BASE}/churn.v2_b-1").json() == body
    listed = client.get(BASE).json()
    assert listed == {"data": [{**body, "versions": None}], "next_cursor": None}


def test_a_taken_name_is_409(client):
    assert client.post(BASE, json={"name": "churn"}).status_code == 201
    problem = assert_problem(client.post(BASE, json={"name": "churn"}), 409)
    assert problem["detail"] == "registered model 'churn' already exists"


@pytest.mark.parametrize("name", ["", "has space", ".hidden", "a/b", "x" * 101, "é"])
def test_a_name_outside_the_pattern_is_422_naming_the_field(client, name):
    problem = assert_problem(client.post(BASE, json={"name": name}), 422)
    assert [error["field"] for error in problem["errors"]] == ["name"]


def test_the_list_is_paged_newest_first(client):
    for name in ("a", "b", "c"):
        client.post(BASE, json={"name": name})
    first = client.get(BASE, params={"limit": 2}).json()
    assert [m["name"] for m in first["data"]] == ["c", "b"]
    second = client.get(BASE, params={"limit": 2, "cursor": first["next_cursor"]}).json()
    assert ([m["name"] for m in second["data"]], second["next_cursor"]) == (["a"], None)


def test_unknown_names_versions_and_aliases_are_404_naming_them(client, two_models):
    registered(client, "churn", two_models[0])
    cases = {
        f"{BASE}/nope": "registered model 'nope' does not exist",
        f"{BASE}/churn/versions/2": "registered model 'churn' has no version 2",
        f"{BASE}/nope/versions/1": "registered model 'nope' does not exist",
        f"{BASE}/churn/aliases/prod": "registered model 'churn' has no alias 'prod'",
    }
    for path, detail in cases.items():
        assert assert_problem(client.get(path), 404)["detail"] == detail, path
    missing = client.post(f"{BASE}/nope/versions", json={"model_id": two_models[0]})
    assert assert_problem(missing, 404)["detail"] == "registered model 'nope' does not exist"
    predicted = client.post(f"{BASE}/churn/aliases/prod/predictions", json={"rows": [[0.0]]})
    assert (
        assert_problem(predicted, 404)["detail"] == "registered model 'churn' has no alias 'prod'"
    )


# Versions.


def test_versions_number_from_one_and_an_unknown_model_is_422(client, two_models):
    registered(client, "churn", *two_models)
    shown = client.get(f"{BASE}/churn").json()
    assert shown["latest_version"] == 2
    assert [(v["version"], v["model_id"]) for v in shown["versions"]] == [
        (2, two_models[1]),
        (1, two_models[0]),
    ]
    unknown = client.post(f"{BASE}/churn/versions", json={"model_id": "0" * 32})
    problem = assert_problem(unknown, 422)
    assert problem["errors"] == [
        {"field": "model_id", "message": f"model {'0' * 32!r} does not exist"}
    ]
    malformed = assert_problem(client.post(f"{BASE}/churn/versions", json={"model_id": "x"}), 422)
    assert [error["field"] for error in malformed["errors"]] == ["model_id"]


def test_concurrent_registrations_never_share_a_version(settings, two_models):
    # Separate clients on separate threads, each its own connections: 24 registrations race.
    with TestClient(create_app(settings)) as first:
        assert first.post(BASE, json={"name": "race"}).status_code == 201
    versions: list[int] = []
    errors: list[str] = []

    def register(model_id: str) -> None:
        with TestClient(create_app(settings)) as client:
            for _ in range(6):
                response = client.post(f"{BASE}/race/versions", json={"model_id": model_id})
                if response.status_code != 201:
                    errors.append(response.text)
                else:
                    versions.append(response.json()["version"])

    threads = [threading.Thread(target=register, args=(two_models[i % 2],)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(versions) == list(range(1, 25))


# Aliases.


def test_an_alias_is_set_moved_and_deleted_with_its_history(client, two_models):
    registered(client, "churn", *two_models)
    created = set_alias(client, "churn", "production", 1)
    assert created.status_code == 200
    assert (created.json()["version"], created.json()["model_id"]) == (1, two_models[0])
    same = set_alias(client, "churn", "production", 1).json()  # no move: nothing recorded
    assert len(same["moves"]) == 1
    moved = set_alias(client, "churn", "production", 2).json()
    assert (moved["version"], moved["model_id"]) == (2, two_models[1])
    assert [(m["from_version"], m["to_version"]) for m in moved["moves"]] == [(1, 2), (None, 1)]
    assert moved["updated_by"] is None
    assert client.get(f"{BASE}/churn/aliases/production").json() == moved
    assert client.get(f"{BASE}/churn").json()["aliases"] == {"production": 2}
    assert client.get(f"{BASE}/churn/versions/2").json()["aliases"] == ["production"]
    assert client.get(f"{BASE}/churn/versions/1").json()["aliases"] == []

    assert client.delete(f"{BASE}/churn/aliases/production").status_code == 204
    assert client.get(f"{BASE}/churn").json()["aliases"] == {}
    assert_problem(client.get(f"{BASE}/churn/aliases/production"), 404)
    assert_problem(client.delete(f"{BASE}/churn/aliases/production"), 404)
    # Set again: the history kept the deletion (to_version null).
    again = set_alias(client, "churn", "production", 1).json()
    assert [(m["from_version"], m["to_version"]) for m in again["moves"]] == [
        (None, 1),
        (2, None),
        (1, 2),
        (None, 1),
    ]


def test_an_alias_to_a_version_that_does_not_exist_is_422_naming_version(client, two_models):
    registered(client, "churn", two_models[0])
    problem = assert_problem(set_alias(client, "churn", "production", 7), 422)
    assert problem["errors"] == [
        {"field": "version", "message": "registered model 'churn' has no version 7"}
    ]
    for body in ({"version": 0}, {"version": "1"}, {"version": 1.5}, {}):
        response = client.put(f"{BASE}/churn/aliases/production", json=body)
        assert [e["field"] for e in assert_problem(response, 422)["errors"]] == ["version"], body
    bad_alias = assert_problem(set_alias(client, "churn", "no good", 1), 422)
    assert [e["field"] for e in bad_alias["errors"]] == ["path.alias"]


def test_who_moved_an_alias_is_the_callers_key_id(database_url, two_models):
    settings = Settings(database_url=database_url, api_keys="key-one,key-two")
    with TestClient(create_app(settings)) as client:
        one = {"Authorization": "Bearer key-one"}
        two = {"Authorization": "Bearer key-two"}
        assert client.post(BASE, json={"name": "churn"}, headers=one).status_code == 201
        for model_id in two_models:
            client.post(f"{BASE}/churn/versions", json={"model_id": model_id}, headers=one)
        client.put(f"{BASE}/churn/aliases/prod", json={"version": 1}, headers=one)
        alias = client.put(f"{BASE}/churn/aliases/prod", json={"version": 2}, headers=two).json()
        shown = client.get(f"{BASE}/churn", headers=two).json()
    assert shown["created_by"] == key_id(b"key-one")
    assert alias["updated_by"] == key_id(b"key-two")
    assert [m["moved_by"] for m in alias["moves"]] == [key_id(b"key-two"), key_id(b"key-one")]


# Predictions through an alias.


def test_alias_predictions_are_the_models_and_say_which_model_answered(
    client, app, cancer, two_models
):
    registered(client, "churn", *two_models)
    set_alias(client, "churn", "production", 1)
    path = f"{BASE}/churn/aliases/production/predictions"
    rows = {"rows": cancer.X[:5].tolist()}
    for version, model_id in ((1, two_models[0]), (2, two_models[1])):
        set_alias(client, "churn", "production", version)
        through = client.post(path, json=rows)
        assert through.status_code == 200
        assert through.headers["x-model-id"] == model_id
        assert through.headers["x-model-version"] == str(version)
        assert through.json() == models.predict(client, model_id, rows).json()
        assert through.json()["model_id"] == model_id
    records = [dict(zip(cancer.features, row, strict=True)) for row in cancer.X[:2].tolist()]
    by_records = client.post(path, json={"records": records})
    assert by_records.json() == models.predict(client, two_models[1], {"records": records}).json()
    problem = assert_problem(client.post(path, json={"rows": [[1.0]]}), 422)
    assert problem["errors"][0]["field"] == "rows.0"


def test_alias_predictions_of_a_stored_dataset_are_the_csv(client, app, cancer, two_models):
    registered(client, "churn", *two_models)
    set_alias(client, "churn", "production", 2)
    dataset_id = client.get(f"/v1/models/{two_models[1]}").json()["dataset_id"]
    body = {"dataset_id": dataset_id}
    through = client.post(f"{BASE}/churn/aliases/production/predictions", json=body)
    assert through.status_code == 200
    assert through.headers["x-model-version"] == "2"
    assert through.text == models.predict(client, two_models[1], body).text
    assert len(through.text.splitlines()) == 1 + len(cancer.y)


# Deleting models and jobs.


def test_a_model_an_alias_points_at_is_409_until_the_alias_moves(client, cancer, two_models):
    registered(client, "churn", *two_models)
    set_alias(client, "churn", "production", 1)
    rows = {"rows": cancer.X[:1].tolist()}
    assert models.predict(client, two_models[0], rows).status_code == 200  # cached now
    problem = assert_problem(client.delete(f"/v1/models/{two_models[0]}"), 409)
    assert problem["aliases"] == [{"name": "churn", "alias": "production", "version": 1}]
    assert "alias 'production' of registered model 'churn'" in problem["detail"]

    set_alias(client, "churn", "production", 2)
    assert client.delete(f"/v1/models/{two_models[0]}").status_code == 204
    assert_problem(models.predict(client, two_models[0], rows), 404)
    assert_problem(client.get(f"/v1/models/{two_models[0]}"), 404)
    assert_problem(client.delete(f"/v1/models/{two_models[0]}"), 404)
    # Its unaliased version went with it; the other stays, and the alias still answers.
    shown = client.get(f"{BASE}/churn").json()
    assert [v["version"] for v in shown["versions"]] == [2]
    assert_problem(client.get(f"{BASE}/churn/versions/1"), 404)
    through = client.post(f"{BASE}/churn/aliases/production/predictions", json=rows)
    assert through.headers["x-model-id"] == two_models[1]
    # The job stays, without a model.
    assert client.get(f"/v1/models/{two_models[1]}").status_code == 200


def test_a_live_job_is_409_cancel_it_first(client, database, two_models):
    dataset_id = client.get(f"/v1/models/{two_models[0]}").json()["dataset_id"]
    for status in (QUEUED, RUNNING):
        job_id = add_job(database, dataset_id, status=status)
        problem = assert_problem(client.delete(f"/v1/jobs/{job_id}"), 409)
        assert problem["detail"] == (
            f"job {job_id} is {status}: cancel it first (POST /v1/jobs/{job_id}/cancel), "
            "then delete it once it has ended"
        )
        assert problem["job_status"] == status
    queued = add_job(database, dataset_id)
    assert client.post(f"/v1/jobs/{queued}/cancel").json()["status"] == CANCELLED
    assert client.delete(f"/v1/jobs/{queued}").status_code == 204
    assert_problem(client.get(f"/v1/jobs/{queued}"), 404)
    assert_problem(client.delete(f"/v1/jobs/{queued}"), 404)


def test_deleting_a_job_deletes_its_history_checkpoint_and_model(client, database, two_models):
    registered(client, "churn", *two_models)
    set_alias(client, "churn", "production", 2)
    job_of = {m: client.get(f"/v1/models/{m}").json()["job_id"] for m in two_models}
    with database.writes() as session, session.begin():
        session.add(Checkpoint(job_id=job_of[two_models[0]], attempt=1, epoch=3, data=b"x"))
    assert client.delete(f"/v1/jobs/{job_of[two_models[1]]}").status_code == 409  # aliased

    assert client.delete(f"/v1/jobs/{job_of[two_models[0]]}").status_code == 204
    with database.reads() as session:
        job_id = job_of[two_models[0]]
        assert session.get(Job, job_id) is None
        assert session.scalars(select(JobHistory).where(JobHistory.job_id == job_id)).all() == []
        assert session.get(Checkpoint, job_id) is None
        assert session.get(Model, two_models[0]) is None
        versions = session.scalars(select(ModelVersion.version)).all()
    assert versions == [2]


def test_a_cached_model_whose_row_is_gone_is_404_and_leaves_the_cache(app, client, two_models):
    # As another API process's delete leaves this one: the row gone, the model still cached.
    rows = {"rows": [[0.0] * 30]}
    for _ in range(2):
        assert models.predict(client, two_models[0], rows).status_code == 200
    cache = app.state.model_cache
    assert cache.get(two_models[0]) is not None
    with app.state.database.writes() as session, session.begin():
        session.execute(delete(Model).where(Model.id == two_models[0]))
    problem = assert_problem(models.predict(client, two_models[0], rows), 404)
    assert problem["detail"] == f"model {two_models[0]!r} does not exist"
    assert cache.get(two_models[0]) is None
    assert models.predict(client, two_models[1], rows).status_code == 200
    # Many rows take the threadpool's path, with the same check.
    cache_b = cache.get(two_models[1])
    assert cache_b is not None
    with app.state.database.writes() as session, session.begin():
        session.execute(delete(Model).where(Model.id == two_models[1]))
    many = {"rows": [[0.0] * 30] * 40}
    assert_problem(models.predict(client, two_models[1], many), 404)
    assert_problem(client.get(f"/v1/models/{two_models[1]}"), 404)
