"""A job that diverges (gradient descent with learning_rate 1e300) ends `diverged`, and every
JSON answer about it is strict JSON: no NaN, Infinity or -Infinity token anywhere.

Python's json.dumps writes NaN as the bare token `NaN`, which JSON does not have and
browsers' JSON.parse refuses; the service must send null instead (finite_or_none). A
real worker process trains the job; the API is the in-process app on the same database.
"""

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.service import live
from tests.service.factories import add_dataset

pytestmark = pytest.mark.slow

DIVERGING = {"optimizer": "gd", "learning_rate": 1e300, "epochs": 50, "early_stopping": None}


def strict_json(text: str) -> Any:
    """json.loads that refuses NaN, Infinity and -Infinity (JSON has none of them)."""

    def refuse(token: str) -> Any:
        raise ValueError(f"{token} is not JSON")

    return json.loads(text, parse_constant=refuse)


@pytest.fixture
def worker(database_url) -> Iterator[None]:
    env = live.service_env(database_url, poll_seconds=0.05, heartbeat_seconds=0.5)
    process = live.start_worker(env)
    yield
    live.stop(process)


def wait_until_ended(client, job_id: str, timeout: float = 60.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = strict_json(client.get(f"/v1/jobs/{job_id}").text)
        if job["status"] in ("succeeded", "failed", "cancelled"):
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not end within {timeout} s")


def sse_data(text: str) -> list[tuple[str, str]]:
    """(event, data) of each event of a text/event-stream body."""
    events = []
    for block in text.split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if "data" in fields:
            events.append((fields.get("event", "message"), fields["data"]))
    return events


@pytest.mark.parametrize("model_type", ["logistic_regression", "two_layer_network"])
def test_a_diverged_job_is_diverged_and_every_answer_about_it_is_strict_json(
    client, database, worker, model_type
):
    dataset_id = add_dataset(database, rows=60, features=3)
    created = client.post(
        "/v1/jobs",
        json={"dataset_id": dataset_id, "model": {"type": model_type}, "training": DIVERGING},
    )
    assert created.status_code == 202, created.text
    job_id = strict_json(created.text)["id"]

    job = wait_until_ended(client, job_id)
    assert (job["status"], job["stop_reason"], job["error_code"]) == (
        "failed",
        "diverged",
        "diverged",
    )
    assert job["model_id"] is None  # a diverged fit is not a model
    assert job["training"]["learning_rate"] == 1e300

    history = strict_json(client.get(f"/v1/jobs/{job_id}/history").text)
    assert history["points"], "a diverged job keeps the epochs it ran"
    losses = [point["train_loss"] for point in history["points"]]
    assert None in losses  # the non-finite loss is null, not NaN
    assert all(loss is None or isinstance(loss, float) for loss in losses)
    strict_json(client.get(f"/v1/jobs/{job_id}/history", params={"max_points": 3}).text)

    response = client.get(f"/v1/jobs/{job_id}/events")
    assert response.status_code == 200
    events = sse_data(response.text)
    assert [event for event, _ in events][-1] == "end"
    assert len([event for event, _ in events if event == "epoch"]) == len(history["points"])
    for _, data in events:
        strict_json(data)

    for params in ({}, {"status": "failed"}, {"dataset_id": dataset_id}):
        listed = strict_json(client.get("/v1/jobs", params=params).text)
        assert [item["id"] for item in listed["data"]] == [job_id]
        assert listed["data"][0]["stop_reason"] == "diverged"
    strict_json(client.get("/v1/models").text)
    strict_json(client.post(f"/v1/jobs/{job_id}/cancel").text)  # ended: unchanged
