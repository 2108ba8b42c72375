"""GET /v1/jobs/{id}/events: a server-sent-events stream of status changes and epochs.

The tests play the worker's part by writing rows while a client reads the stream.
"""

import json
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import delete

from service.core.states import QUEUED, RUNNING, SUCCEEDED
from service.core.tables import Job, utcnow
from service.jobs import events as job_events
from tests.service import factories, live


class EventReader:
    """Reads text/event-stream blocks: {"event", "data", "id", "retry"}; comments aside."""

    def __init__(self, lines: Iterator[str]):
        self.lines = lines
        self.comments: list[str] = []

    def next(self) -> dict[str, Any] | None:
        """The next block, with ``data`` parsed as JSON; None once the stream has closed."""
        block: dict[str, Any] = {}
        for line in self.lines:
            if line.startswith(":"):
                self.comments.append(line)
            elif line:
                name, _, value = line.partition(":")
                block[name] = value.removeprefix(" ")
            elif block:
                if "data" in block:
                    block["data"] = json.loads(block["data"])
                return block
        return None

    def rest(self) -> list[dict[str, Any]]:
        blocks = []
        while (block := self.next()) is not None:
            blocks.append(block)
        return blocks


def epoch_event(epoch: int) -> dict[str, Any]:
    row = factories.history_row(epoch)
    del row["attempt"]
    return {"id": str(epoch), "event": "epoch", "data": row}


def test_stream_sends_status_then_epochs_in_order_and_closes_when_the_job_ends(client, database):
    job_id = factories.add_job(database, factories.add_dataset(database))
    with client.stream("GET", f"/v1/jobs/{job_id}/events") as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["cache-control"] == "no-cache"
        events = EventReader(response.iter_lines())
        assert events.next() == {"retry": str(job_events.RETRY_MILLISECONDS)}
        snapshot = events.next()
        assert snapshot["event"] == "status"
        assert "id" not in snapshot  # status events leave Last-Event-ID at the last epoch
        assert snapshot["data"] == client.get(f"/v1/jobs/{job_id}").json()
        assert snapshot["data"]["status"] == QUEUED

        factories.set_job(database, job_id, status=RUNNING, attempt=1, started_at=utcnow())
        running = events.next()
        assert (running["event"], running["data"]["status"]) == ("status", RUNNING)

        factories.add_history(
            database, job_id, [factories.history_row(e) for e in (1, 2, 3)], epoch=3
        )
        assert [events.next() for _ in range(3)] == [epoch_event(e) for e in (1, 2, 3)]

        factories.add_history(
            database,
            job_id,
            [factories.history_row(4), factories.history_row(5)],
            epoch=5,
            status=SUCCEEDED,
            stop_reason="max_epochs",
            finished_at=utcnow(),
        )
        assert [events.next() for _ in range(2)] == [epoch_event(4), epoch_event(5)]
        final = events.next()
        assert (final["event"], final["data"]["status"]) == ("status", SUCCEEDED)
        assert final["data"]["progress"]["epoch"] == 5
        end = events.next()
        assert end["event"] == "end"
        assert end["data"]["status"] == SUCCEEDED
        assert events.next() is None  # the server closed the stream


def test_reconnecting_with_last_event_id_sends_only_later_epochs(client, database):
    job_id = factories.add_job(database, factories.add_dataset(database), status=RUNNING)
    factories.add_history(
        database, job_id, [factories.history_row(e) for e in range(1, 7)], epoch=6
    )
    factories.set_job(
        database, job_id, status=SUCCEEDED, stop_reason="max_epochs", finished_at=utcnow()
    )
    with client.stream(
        "GET", f"/v1/jobs/{job_id}/events", headers={"Last-Event-ID": "3"}
    ) as response:
        blocks = EventReader(response.iter_lines()).rest()
    assert blocks[0] == {"retry": str(job_events.RETRY_MILLISECONDS)}
    events = [b for b in blocks if "event" in b]
    assert [e["event"] for e in events] == ["status", "epoch", "epoch", "epoch", "end"]
    assert events[0]["data"]["status"] == SUCCEEDED
    assert events[1:4] == [epoch_event(e) for e in (4, 5, 6)]


def test_a_finished_job_streams_its_whole_history_then_ends(client, database):
    job_id = factories.add_job(database, factories.add_dataset(database), status=RUNNING)
    factories.add_history(
        database, job_id, [factories.history_row(e) for e in range(1, 4)], epoch=3
    )
    factories.set_job(database, job_id, status=SUCCEEDED, finished_at=utcnow())
    with client.stream("GET", f"/v1/jobs/{job_id}/events") as response:
        events = [b for b in EventReader(response.iter_lines()).rest() if "event" in b]
    assert [e["event"] for e in events] == ["status", "epoch", "epoch", "epoch", "end"]
    assert [e.get("id") for e in events] == [None, "1", "2", "3", None]


def test_an_idle_stream_sends_keep_alive_comments(client, database, monkeypatch):
    monkeypatch.setattr(job_events, "KEEPALIVE_SECONDS", 0.3)
    job_id = factories.add_job(database, factories.add_dataset(database))
    with client.stream("GET", f"/v1/jobs/{job_id}/events") as response:
        lines = response.iter_lines()
        for line in lines:
            if line.startswith(":"):
                assert line == ": keep-alive"
                break
    # The client left mid-stream; the server carries on.
    assert client.get(f"/v1/jobs/{job_id}").status_code == 200


def test_the_stream_ends_if_the_job_is_deleted(client, database):
    job_id = factories.add_job(database, factories.add_dataset(database))
    with client.stream("GET", f"/v1/jobs/{job_id}/events") as response:
        events = EventReader(response.iter_lines())
        assert events.next()["retry"]
        assert events.next()["event"] == "status"
        with database.writes() as session:
            session.execute(delete(Job).where(Job.id == job_id))
            session.commit()
        end = events.next()
        assert end == {
            "event": "end",
            "data": {"id": job_id, "status": None, "detail": "the job was deleted"},
        }
        assert events.next() is None


def test_events_of_an_unknown_job_is_a_404_problem(client):
    missing = uuid.uuid4().hex
    problem = factories.assert_problem(client.get(f"/v1/jobs/{missing}/events"), 404)
    assert problem["detail"] == f"job '{missing}' does not exist"


@pytest.mark.parametrize("value", ["abc", "-1", "3.5"])
def test_a_last_event_id_that_is_not_an_epoch_is_422(client, database, value):
    job_id = factories.add_job(database, factories.add_dataset(database))
    response = client.get(f"/v1/jobs/{job_id}/events", headers={"Last-Event-ID": value})
    problem = factories.assert_problem(response, 422)
    assert [e["field"] for e in problem["errors"]] == ["header.Last-Event-ID"]


@pytest.mark.slow
def test_a_real_server_streams_epochs_as_they_happen_and_resumes(database_url, database):
    job_id = factories.add_job(database, factories.add_dataset(database))
    port = live.free_port()
    api = live.start_api(live.service_env(database_url), port)
    base_url = f"http://127.0.0.1:{port}"
    ended_at: list[float] = []

    def train() -> None:  # the worker's part, in another thread
        time.sleep(0.6)
        factories.set_job(database, job_id, status=RUNNING, attempt=1, started_at=utcnow())
        time.sleep(0.6)
        factories.add_history(
            database, job_id, [factories.history_row(e) for e in (1, 2, 3)], epoch=3
        )
        time.sleep(0.8)
        factories.add_history(
            database, job_id, [factories.history_row(e) for e in (4, 5, 6)], epoch=6
        )
        time.sleep(0.6)
        factories.set_job(database, job_id, status=SUCCEEDED, finished_at=utcnow())
        ended_at.append(time.monotonic())

    try:
        live.wait_until_ready(base_url)
        trainer = threading.Thread(target=train)
        arrivals: list[tuple[float, dict[str, Any]]] = []
        with httpx.stream("GET", f"{base_url}/v1/jobs/{job_id}/events", timeout=30) as response:
            assert response.status_code == 200
            trainer.start()
            events = EventReader(response.iter_lines())
            while (block := events.next()) is not None:
                if "event" in block:
                    arrivals.append((time.monotonic(), block))
        trainer.join()
        with httpx.stream(
            "GET",
            f"{base_url}/v1/jobs/{job_id}/events",
            headers={"Last-Event-ID": "4"},
            timeout=30,
        ) as response:
            resumed = [b for b in EventReader(response.iter_lines()).rest() if "event" in b]
    finally:
        live.stop(api)

    events = [block for _, block in arrivals]
    statuses = [e["data"]["status"] for e in events if e["event"] == "status"]
    assert statuses == [QUEUED, RUNNING, SUCCEEDED]
    assert [e for e in events if e["event"] == "epoch"] == [epoch_event(e) for e in range(1, 7)]
    assert [e["event"] for e in events][-2:] == ["status", "end"]
    first_epoch_at = next(at for at, e in arrivals if e["event"] == "epoch")
    assert first_epoch_at < ended_at[0]  # delivered while training, not at the end
    assert [e["event"] for e in resumed] == ["status", "epoch", "epoch", "end"]
    assert [e.get("id") for e in resumed if e["event"] == "epoch"] == ["5", "6"]
