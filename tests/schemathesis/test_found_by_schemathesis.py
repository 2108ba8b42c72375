"""What schemathesis found in the API, each pinned by a test of its own (in process, fast).

- OPTIONS on /v1/jobs answered 405 with `Allow: POST`: the path has two routes (GET and
  POST), and Starlette names only the first one's methods.
- A JSON body whose bytes are not text was a bare 400 "There was an error parsing the
  body", a status no JSON operation documents; a body that is text but not JSON was a
  422 whose field was the character offset ("1").
- GET /v1/jobs/{id}/history?since_epoch=<past 2**63> was a 500 (SQLite: "Python int too
  large to convert to SQLite INTEGER"); so was a Last-Event-ID past it on the events stream.
- `Last-Event-ID: null` was refused although the schema said `string | null`.
- The events stream's schema said each event was a string; it is an object (event, data,
  id, retry) whose data is JSON of a documented schema.
- On PostgreSQL, an id with a NUL character (/v1/models/a%00b, ?dataset_id=a%00) was a
  500: PostgreSQL refuses NUL in text, so such ids must never reach it.
"""

from typing import Any

import pytest

from tests.service.factories import (
    add_dataset,
    add_history,
    add_job,
    add_model,
    assert_problem,
    history_row,
)


@pytest.fixture
def document(client) -> dict[str, Any]:
    return client.get("/openapi.json").json()


@pytest.mark.parametrize(
    ("path", "allow"),
    [
        ("/v1/jobs", "GET, POST"),
        ("/v1/datasets", "GET, POST"),
        ("/v1/datasets/3f9c2a7be41d4c0f9a55e7d1c2b8a610", "DELETE, GET"),
        ("/v1/jobs/9b1d4e2f7a6c4d8e8f0a1b2c3d4e5f60/cancel", "POST"),
    ],
)
def test_a_method_not_allowed_lists_every_method_of_the_path(client, path, allow):
    response = client.request("OPTIONS", path)
    assert_problem(response, 405)
    assert response.headers["Allow"] == allow


@pytest.mark.parametrize(
    "path", ["/v1/jobs", "/v1/models/c0ffee1234abcd5678ef90123456789a/predictions"]
)
def test_a_json_body_that_is_not_text_is_a_422_naming_the_body(client, path):
    response = client.post(
        path, content=b"\x1a\xffs\x02", headers={"Content-Type": "application/json"}
    )
    problem = assert_problem(response, 422)
    assert problem["detail"] == "body: the request body is not JSON (it is not UTF-8 text)"
    assert problem["errors"] == [
        {"field": "body", "message": "the request body is not JSON (it is not UTF-8 text)"}
    ]


def test_a_json_body_that_is_not_json_is_a_422_naming_the_body_and_the_place(client):
    response = client.post(
        "/v1/jobs", content=b'{"dataset_id": ', headers={"Content-Type": "application/json"}
    )
    problem = assert_problem(response, 422)
    assert problem["errors"] == [
        {"field": "body", "message": "the body is not valid JSON: Expecting value at character 15"}
    ]


def test_since_epoch_past_any_epoch_a_database_can_hold_is_a_422(client, database):
    job_id = add_job(database, add_dataset(database))
    response = client.get(f"/v1/jobs/{job_id}/history", params={"since_epoch": 2**70})
    problem = assert_problem(response, 422)
    assert [error["field"] for error in problem["errors"]] == ["query.since_epoch"]
    largest = client.get(f"/v1/jobs/{job_id}/history", params={"since_epoch": 2**31 - 1})
    assert largest.status_code == 200
    assert largest.json()["points"] == []


def test_a_last_event_id_past_any_epoch_streams_no_epoch(client, database):
    job_id = add_job(database, add_dataset(database), status="succeeded")
    add_history(database, job_id, [history_row(epoch) for epoch in (1, 2)], epoch=2)
    response = client.get(f"/v1/jobs/{job_id}/events", headers={"Last-Event-ID": "9" * 30})
    assert response.status_code == 200
    events = [line for line in response.text.splitlines() if line.startswith("event: ")]
    assert events == ["event: status", "event: end"]


def test_the_last_event_id_header_is_documented_as_an_epoch_string(document):
    parameters = document["paths"]["/v1/jobs/{job_id}/events"]["get"]["parameters"]
    header = next(p for p in parameters if p["name"] == "Last-Event-ID")
    assert header["schema"]["type"] == "string"
    assert header["schema"]["pattern"] == r"^\s*[0-9]*\s*$"
    assert "anyOf" not in header["schema"]


def test_each_event_of_the_stream_is_documented_with_its_data_schema(document):
    ok = document["paths"]["/v1/jobs/{job_id}/events"]["get"]["responses"]["200"]
    schema = ok["content"]["text/event-stream"]["schema"]
    assert schema["properties"]["event"] == {"enum": ["status", "epoch", "end"]}
    data = {
        rule["if"]["properties"]["event"]["const"]: rule["then"]["properties"]["data"]
        for rule in schema["allOf"]
    }
    assert data["epoch"]["contentSchema"] == {"$ref": "#/components/schemas/HistoryPoint"}
    assert data["status"]["contentSchema"] == {"$ref": "#/components/schemas/JobPublic"}


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/models/a%00b"),
        ("GET", "/v1/models/a%00b/download"),
        ("POST", "/v1/models/a%00b/predictions"),
        ("GET", "/v1/datasets/a%00b"),
        ("DELETE", "/v1/datasets/a%00b"),
        ("GET", "/v1/jobs/a%00b"),
        ("GET", "/v1/jobs/a%00b/history"),
        ("GET", "/v1/jobs/a%00b/events"),
        ("POST", "/v1/jobs/a%00b/cancel"),
    ],
)
def test_an_id_with_a_nul_character_is_a_404_on_every_database(client, method, path):
    body = {"rows": [[1.0]]} if path.endswith("predictions") else None
    assert_problem(client.request(method, path, json=body), 404)


@pytest.mark.parametrize(
    ("path", "name"),
    [
        ("/v1/models", "dataset_id"),
        ("/v1/models", "job_id"),
        ("/v1/jobs", "dataset_id"),
        ("/v1/jobs", "sweep_id"),
    ],
)
def test_a_filter_by_an_id_with_a_nul_character_matches_nothing(client, path, name):
    response = client.get(path, params={name: "a\x00b"})
    assert response.status_code == 200
    assert response.json() == {"data": [], "next_cursor": None}


def test_predicting_a_dataset_whose_id_has_a_nul_is_a_422(client, database):
    model_id = add_model(database)
    response = client.post(f"/v1/models/{model_id}/predictions", json={"dataset_id": "a\x00b"})
    problem = assert_problem(response, 422)
    assert problem["detail"] == "dataset_id: dataset 'a\\x00b' does not exist"
