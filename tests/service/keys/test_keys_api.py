"""POST, GET and DELETE /v1/keys: an admin manages its own project's keys, and no other's."""

import time

import pytest

from service.core.api_keys import CACHE_SECONDS
from tests.service.factories import assert_problem
from tests.service.keys.conftest import Made, bearer

UNKNOWN_KEY_ID = "0" * 12


def post_key(api, caller: Made, **body) -> dict:
    response = api.post("/v1/keys", json=body, headers=bearer(caller))
    assert response.status_code == 201, response.text
    return response.json() | {"headers": dict(response.headers)}


def refused_within(api, key: str, seconds: float) -> float:
    """How long until a request with ``key`` is refused (401), polled for ``seconds`` at most."""
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        if api.get("/v1/datasets", headers={"Authorization": f"Bearer {key}"}).status_code == 401:
            return time.monotonic() - start
        time.sleep(0.05)
    raise AssertionError(f"the key still works after {seconds} s")


def test_an_admin_makes_a_key_of_its_own_project_shown_in_that_answer_only(api, keys):
    made = post_key(api, keys.admin, role="trainer", name="nightly training")

    assert made["headers"]["cache-control"] == "no-store"
    assert made["headers"]["location"] == f"/v1/keys/{made['key_id']}"
    assert made["key"].startswith("bpk_")
    assert len(made["key"]) == 68
    assert (made["project"], made["role"], made["name"]) == (
        "team-a",
        "trainer",
        "nightly training",
    )
    assert made["created_by"] == keys.admin.key_id
    works = api.post(
        "/v1/datasets",
        content=b"x,y\n1,0\n2,1\n",
        headers={"Content-Type": "text/csv", "Authorization": f"Bearer {made['key']}"},
    )
    assert works.status_code == 201, works.text
    listed = api.get("/v1/keys", headers=bearer(keys.admin))
    assert listed.status_code == 200
    assert made["key"] not in listed.text  # never the key again, nor its digest
    mine = next(k for k in listed.json()["data"] if k["key_id"] == made["key_id"])
    assert set(mine) == {
        "key_id", "project", "role", "name", "created_at", "created_by", "revoked_at",
    }  # fmt: skip


def test_the_listing_shows_the_callers_project_only_newest_first_in_pages(api, keys):
    for number in range(3):
        post_key(api, keys.admin, role="reader", name=f"reader {number}")
    post_key(api, keys.other_admin, role="reader", name="b's")

    seen, cursor = [], None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = api.get("/v1/keys", params=params, headers=bearer(keys.admin)).json()
        assert len(page["data"]) <= 2
        seen += page["data"]
        cursor = page["next_cursor"]
        if cursor is None:
            break

    names = [k["name"] for k in seen]
    assert names == ["reader 2", "reader 1", "reader 0", "a reader", "a trainer", "a admin"]
    assert {k["project"] for k in seen} == {"team-a"}
    other = api.get("/v1/keys", headers=bearer(keys.other_admin)).json()["data"]
    assert [k["name"] for k in other] == ["b's", "b admin"]


def test_a_revoked_key_is_refused_within_a_second_and_revoking_again_is_204(api, keys):
    made = post_key(api, keys.admin, role="trainer")
    assert (
        api.get("/v1/jobs", headers={"Authorization": f"Bearer {made['key']}"}).status_code == 200
    )

    first = api.delete(f"/v1/keys/{made['key_id']}", headers=bearer(keys.admin))
    again = api.delete(f"/v1/keys/{made['key_id']}", headers=bearer(keys.admin))

    assert (first.status_code, again.status_code) == (204, 204)
    assert refused_within(api, made["key"], 1.0) <= 1.0
    listed = api.get("/v1/keys", headers=bearer(keys.admin)).json()["data"]
    revoked = next(k for k in listed if k["key_id"] == made["key_id"])
    assert revoked["revoked_at"] is not None


def test_another_projects_key_answers_as_an_unknown_one_and_stays_live(api, keys):
    theirs = api.delete(f"/v1/keys/{keys.other_admin.key_id}", headers=bearer(keys.admin))
    unknown = api.delete(f"/v1/keys/{UNKNOWN_KEY_ID}", headers=bearer(keys.admin))

    theirs_body, unknown_body = assert_problem(theirs, 404), assert_problem(unknown, 404)
    assert theirs_body == {
        **unknown_body,
        "detail": unknown_body["detail"].replace(UNKNOWN_KEY_ID, keys.other_admin.key_id),
    }
    assert theirs_body["detail"] == f"API key {keys.other_admin.key_id!r} does not exist"
    time.sleep(CACHE_SECONDS + 0.1)
    still = api.get("/v1/keys", headers=bearer(keys.other_admin))
    assert still.status_code == 200
    assert all(k["revoked_at"] is None for k in still.json()["data"])


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/v1/keys"),
        ("GET", "/v1/keys"),
        ("DELETE", f"/v1/keys/{UNKNOWN_KEY_ID}"),
        ("GET", "/v1/audit-events"),
    ],
)
def test_a_trainer_or_a_reader_may_not_manage_keys_or_read_the_log(api, keys, method, path):
    for caller in (keys.trainer, keys.reader):
        kwargs = {"json": {"role": "reader"}} if method == "POST" else {}
        response = api.request(method, path, headers=bearer(caller), **kwargs)
        body = assert_problem(response, 403)
        assert "needs the admin role" in body["detail"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"role": "owner"}, "role"),
        ({}, "role"),
        ({"role": "reader", "project": "team-b"}, "project"),  # no choosing another project
        ({"role": "reader", "name": "n" * 201}, "name"),
    ],
)
def test_a_bad_body_is_422_naming_the_field(api, keys, body, field):
    response = api.post("/v1/keys", json=body, headers=bearer(keys.admin))
    problem = assert_problem(response, 422)
    assert [error["field"] for error in problem["errors"]] == [field]


def test_a_bad_cursor_is_422_naming_it(api, keys):
    for path in ("/v1/keys", "/v1/audit-events"):
        response = api.get(path, params={"cursor": "nonsense"}, headers=bearer(keys.admin))
        assert assert_problem(response, 422)["errors"][0]["field"] == "query.cursor"


def test_an_open_api_closes_once_its_first_key_is_made_through_it(client):
    made = client.post("/v1/keys", json={"role": "admin", "name": "first"})
    assert made.status_code == 201, made.text
    assert (made.json()["project"], made.json()["created_by"]) == ("default", None)

    start = time.monotonic()
    while client.get("/v1/jobs").status_code != 401:
        assert time.monotonic() - start < 1.0, "still open a second after the first key"
        time.sleep(0.05)
    with_key = client.get("/v1/jobs", headers={"Authorization": f"Bearer {made.json()['key']}"})
    assert with_key.status_code == 200
