"""GET /v1/audit-events: every change the API makes is one event, in the change's own
transaction, with the key that made it; an admin reads its project's events only."""

from typing import Any

import pytest

from service.core.audit import ACTIONS, record
from service.core.tenancy import project_scope
from tests.service.factories import add_dataset, add_model, assert_problem
from tests.service.keys.conftest import Keys, Made, bearer

CSV = b"x0,x1,y\n1,2,0\n3,4,1\n5,6,0\n7,8,1\n"
GRID = {"strategy": "grid", "space": {"l2": [0.0, 0.1]}}
JOB = {"model": {"type": "logistic_regression"}, "training": {"epochs": 5}}


def events(api, caller: Made, **params: Any) -> list[dict[str, Any]]:
    """Every event the caller may read, newest first, page after page."""
    seen, cursor = [], None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        response = api.get("/v1/audit-events", params=query, headers=bearer(caller))
        assert response.status_code == 200, response.text
        page = response.json()
        seen += page["data"]
        cursor = page["next_cursor"]
        if cursor is None:
            return seen


def ok(response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    return response.json() if response.content else {}


def changes(api, database, keys: Keys) -> list[tuple[str, str, str]]:
    """Every kind of change the log records, in order: (action, target, key id) each."""
    trainer, admin = bearer(keys.trainer), bearer(keys.admin)
    csv = {"Content-Type": "text/csv"}
    dataset = ok(api.post("/v1/datasets", content=CSV, headers={**csv, **trainer}), 201)["id"]
    ok(api.post("/v1/datasets", content=CSV, headers={**csv, **trainer}), 200)  # dedup: no event
    job = ok(api.post("/v1/jobs", json={**JOB, "dataset_id": dataset}, headers=trainer), 202)
    ok(api.post(f"/v1/jobs/{job['id']}/cancel", headers=trainer), 200)
    ok(api.delete(f"/v1/jobs/{job['id']}", headers=admin), 204)
    sweep = ok(
        api.post(
            "/v1/sweeps",
            json={
                **JOB,
                "dataset_id": dataset,
                "search": {"strategy": "grid", "space": {"l2": [0.0, 0.1]}},
            },
            headers=trainer,
        ),
        202,
    )
    ok(api.post(f"/v1/sweeps/{sweep['id']}/cancel", headers=trainer), 200)
    with project_scope("team-a"):  # a model as a worker of a team-a job stores it
        model = add_model(database)
        scored = add_dataset(database, rows=20, features=2)
    batch = ok(
        api.post(
            f"/v1/models/{model}/batch-predictions", json={"dataset_id": scored}, headers=trainer
        ),
        202,
    )
    ok(api.post("/v1/registered-models", json={"name": "churn"}, headers=trainer), 201)
    path = "/v1/registered-models/churn"
    ok(api.post(f"{path}/versions", json={"model_id": model}, headers=trainer), 201)
    ok(api.put(f"{path}/aliases/production", json={"version": 1}, headers=trainer), 200)
    ok(api.delete(f"{path}/aliases/production", headers=admin), 204)
    made = ok(api.post("/v1/keys", json={"role": "reader"}, headers=admin), 201)
    ok(api.delete(f"/v1/keys/{made['key_id']}", headers=admin), 204)
    ok(api.delete(f"/v1/models/{model}", headers=admin), 204)
    ok(api.delete(f"/v1/datasets/{dataset}", headers=admin), 204)
    t, a = keys.trainer.key_id, keys.admin.key_id
    return [
        ("dataset.create", dataset, t),
        ("job.create", job["id"], t),
        ("job.cancel", job["id"], t),
        ("job.delete", job["id"], a),
        ("sweep.create", sweep["id"], t),
        ("sweep.cancel", sweep["id"], t),
        ("batch_prediction.create", batch["id"], t),
        ("registered_model.create", "churn", t),
        ("model_version.create", "churn/1", t),
        ("alias.set", "churn@production", t),
        ("alias.delete", "churn@production", a),
        ("key.create", made["key_id"], a),
        ("key.revoke", made["key_id"], a),
        ("model.delete", model, a),
        ("dataset.delete", dataset, a),
    ]


def test_an_admin_reads_every_change_back_newest_first_with_who_made_it(api, database, keys):
    expected = changes(api, database, keys)

    seen = events(api, keys.admin, limit=4)

    assert [(e["action"], e["target"], e["key_id"]) for e in seen] == expected[::-1]
    ids = [e["id"] for e in seen]
    assert ids == sorted(ids, reverse=True)
    times = [e["at"] for e in seen]
    assert times == sorted(times, reverse=True)
    by_action = {e["action"]: e for e in seen}
    assert by_action["job.cancel"]["detail"] == {"status": "cancelled"}
    assert by_action["alias.set"]["detail"] == {"from": None, "to": 1}
    assert by_action["key.create"]["detail"] == {"role": "reader", "name": None}
    assert set(seen[0]) == {"id", "at", "key_id", "action", "target", "detail"}


def test_another_projects_admin_sees_none_of_them(api, database, keys):
    changes(api, database, keys)

    assert events(api, keys.other_admin) == []
    ok(api.post("/v1/keys", json={"role": "reader"}, headers=bearer(keys.other_admin)), 201)
    theirs = events(api, keys.other_admin)
    assert [(e["action"], e["key_id"]) for e in theirs] == [("key.create", keys.other_admin.key_id)]


def test_a_refused_change_leaves_no_event(api, keys):
    trainer = bearer(keys.trainer)
    assert_problem(api.post(f"/v1/jobs/{'0' * 32}/cancel", headers=trainer), 404)
    assert_problem(api.post("/v1/jobs", json={**JOB, "dataset_id": "0" * 32}, headers=trainer), 422)
    assert_problem(
        api.delete(f"/v1/keys/{keys.other_admin.key_id}", headers=bearer(keys.admin)), 404
    )
    assert events(api, keys.admin) == []


def test_pages_hold_limit_events_and_end_without_a_cursor(api, database, keys):
    with database.writes() as session:
        for number in range(5):
            record(session, "key.create", f"k{number}", project="team-a", key_id="cli")
        session.commit()

    first = ok(api.get("/v1/audit-events", params={"limit": 2}, headers=bearer(keys.admin)), 200)
    assert [e["target"] for e in first["data"]] == ["k4", "k3"]
    assert [e["target"] for e in events(api, keys.admin, limit=2)] == [
        f"k{n}" for n in range(4, -1, -1)
    ]
    last = ok(api.get("/v1/audit-events", params={"limit": 5}, headers=bearer(keys.admin)), 200)
    assert last["next_cursor"] is None


def test_an_unknown_action_is_refused_before_it_reaches_the_log(database):
    with database.writes() as session, pytest.raises(ValueError, match="unknown audit action"):
        record(session, "job.explode", "x", project="team-a")
    assert "project.quotas" in ACTIONS  # the quotas change records under this name
