"""GET /metrics: Prometheus figures of the jobs table and of the API and worker processes.

The live tests run the API under uvicorn and a worker as separate processes sharing a
PROMETHEUS_MULTIPROC_DIR (as `backprop serve` sets one up; the serve test checks that
too), train a job, and read its counts in one scrape. The in-process tests read the
format, the job gauges, the route labels and the key check of a TestClient's app, whose
process keeps its figures in memory (no directory): they compare counts before and after.
"""

import json
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from service.app import create_app
from service.core.settings import Settings
from service.core.states import CANCELLED, FAILED, QUEUED, RUNNING, SUCCEEDED
from service.core.tables import utcnow
from tests.service import live
from tests.service.factories import add_dataset, add_job

PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8"
JOB_TIMEOUT_SECONDS = 60
BACKPROP = str(Path(sys.executable).with_name("backprop"))
# A logistic regression that runs every epoch: no early stopping, no convergence test.
EXACT_EPOCHS = {"epochs": 25, "early_stopping": None, "tolerance": 0.0}

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    """Every sample of a scrape, keyed by (name, labels), read by prometheus_client's parser."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    """One sample's value; 0 when the scrape does not have it (a series not yet observed)."""
    return samples.get((name, frozenset(labels.items())), 0.0)


def total(samples: Samples, name: str, **labels: str) -> float:
    """The sum over the samples of ``name`` whose labels include ``labels``."""
    wanted = set(labels.items())
    return sum(v for (n, have), v in samples.items() if n == name and wanted <= have)


def wait_for_job(base_url: str, job_id: str, timeout: float = JOB_TIMEOUT_SECONDS) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = httpx.get(f"{base_url}/v1/jobs/{job_id}").json()
        if job["status"] in (SUCCEEDED, FAILED, CANCELLED):
            return job
        time.sleep(0.05)
    raise TimeoutError(f"job {job_id} did not end within {timeout} s")


# -- live: a real API and a real worker ---------------------------------------------------------


@pytest.fixture
def api_and_worker(database_url, tmp_path) -> Iterator[tuple[str, subprocess.Popen, Path]]:
    """(base URL, worker process, metrics directory): uvicorn and a worker on one directory."""
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    env = live.service_env(database_url, poll_seconds=0.05, sweep_seconds=0.2)
    env["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    port = live.free_port()
    api, worker = live.start_api(env, port), live.start_worker(env)
    try:
        base = f"http://127.0.0.1:{port}"
        live.wait_until_ready(base)
        yield base, worker, metrics_dir
    finally:
        live.stop(worker)
        live.stop(api)


@pytest.mark.slow
def test_a_scrape_after_a_job_counts_it_in_the_api_and_the_worker(api_and_worker, database):
    base, worker, metrics_dir = api_and_worker
    dataset_id = add_dataset(database)
    created = httpx.post(
        f"{base}/v1/jobs", json={"dataset_id": dataset_id, "training": EXACT_EPOCHS}
    )
    assert created.status_code == 202, created.text
    job = wait_for_job(base, created.json()["id"])
    assert job["status"] == SUCCEEDED, job

    scrape = httpx.get(f"{base}/metrics")
    assert scrape.status_code == 200
    assert scrape.headers["content-type"] == PROMETHEUS_TEXT
    samples = parse(scrape.text)

    # The database's figures.
    assert value(samples, "backprop_database_up") == 1
    assert value(samples, "backprop_jobs", state=SUCCEEDED) == 1
    assert total(samples, "backprop_jobs") == 1
    assert value(samples, "backprop_queue_depth") == 0
    # The worker's, from its own file in the directory.
    assert (metrics_dir / f"counter_{worker.pid}.db").exists()
    assert value(samples, "backprop_job_claims_total") == 1
    assert value(samples, "backprop_lease_expiries_total") == 0
    assert value(samples, "backprop_epoch_duration_seconds_count") == job["progress"]["epoch"] == 25
    assert value(samples, "backprop_epoch_duration_seconds_sum") > 0
    assert value(samples, "backprop_job_duration_seconds_count", outcome=SUCCEEDED) == 1
    assert total(samples, "backprop_job_duration_seconds_count") == 1
    # The API's: route templates, never raw paths.
    http = "backprop_http_request_duration_seconds_count"
    assert value(samples, http, method="POST", route="/v1/jobs", status="202") == 1
    assert value(samples, http, method="GET", route="/v1/jobs/{job_id}", status="200") >= 1
    assert value(samples, http, method="GET", route="/readyz", status="200") >= 1
    assert not [labels for name, labels in samples if name == http and job["id"] in str(labels)]


@pytest.mark.slow
def test_a_lease_expiry_is_counted_once_and_the_states_follow_the_table(api_and_worker, database):
    """A running job whose worker vanished is re-queued by the live worker's sweeper, then
    claimed and trained by it; the other rows show in the state gauges as they are."""
    base, _, _ = api_and_worker
    dataset_id = add_dataset(database)
    lapsed = utcnow() - timedelta(minutes=1)
    orphan = add_job(database, dataset_id, status=RUNNING, lease_expires_at=lapsed, worker="gone:1")
    for status in (FAILED, CANCELLED, CANCELLED):
        add_job(database, dataset_id, status=status)

    assert wait_for_job(base, orphan)["status"] == SUCCEEDED
    samples = parse(httpx.get(f"{base}/metrics").text)
    assert value(samples, "backprop_lease_expiries_total") == 1
    assert value(samples, "backprop_job_claims_total") == 1
    states = {SUCCEEDED: 1, FAILED: 1, CANCELLED: 2, QUEUED: 0, RUNNING: 0, "cancelling": 0}
    for state, count in states.items():
        assert value(samples, "backprop_jobs", state=state) == count, state


# -- in process ---------------------------------------------------------------------------------


def scrape(client: TestClient, **headers: str) -> Samples:
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    return parse(response.text)


def test_metrics_are_prometheus_text_with_help_and_type_for_each_family(client):
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"] == PROMETHEUS_TEXT
    families = {family.name: family for family in text_string_to_metric_families(response.text)}
    expected = {
        "backprop_jobs": "gauge",
        "backprop_queue_depth": "gauge",
        "backprop_queue_oldest_job_age_seconds": "gauge",
        "backprop_database_up": "gauge",
        "backprop_job_claims": "counter",
        "backprop_lease_expiries": "counter",
        "backprop_job_duration_seconds": "histogram",
        "backprop_epoch_duration_seconds": "histogram",
        "backprop_http_request_duration_seconds": "histogram",
    }
    for name, kind in expected.items():
        assert families[name].type == kind, name
        assert families[name].documentation, name
    assert not [name for name in families if name.endswith("_created")]


def test_openmetrics_when_the_scraper_asks_for_it(client):
    response = client.get("/metrics", headers={"Accept": "application/openmetrics-text"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/openmetrics-text;")
    assert response.text.endswith("# EOF\n")
    assert "backprop_jobs{" in response.text


def test_job_gauges_count_the_rows_of_each_state(client, database):
    dataset_id = add_dataset(database)
    for status, count in ((QUEUED, 3), (RUNNING, 1), (SUCCEEDED, 2), (FAILED, 1)):
        for _ in range(count):
            add_job(database, dataset_id, status=status, age_seconds=120.0)
    samples = scrape(client)
    expected = {QUEUED: 3, RUNNING: 1, "cancelling": 0, SUCCEEDED: 2, FAILED: 1, CANCELLED: 0}
    for state, count in expected.items():
        assert value(samples, "backprop_jobs", state=state) == count, state
    assert value(samples, "backprop_queue_depth") == 3
    assert value(samples, "backprop_queue_oldest_job_age_seconds") >= 120.0


def test_an_empty_queue_has_no_age(client):
    samples = scrape(client)
    assert value(samples, "backprop_queue_depth") == 0
    assert value(samples, "backprop_queue_oldest_job_age_seconds") == 0
    assert total(samples, "backprop_jobs") == 0


def test_http_durations_are_labelled_by_route_template_and_status(client):
    http = "backprop_http_request_duration_seconds_count"
    missing = uuid.uuid4().hex
    before = scrape(client)
    assert client.get(f"/v1/jobs/{missing}").status_code == 404
    assert client.get(f"/no/such/{missing}").status_code == 404
    assert client.delete("/healthz").status_code == 405
    assert client.request("BREW", "/healthz").status_code == 405
    assert client.get("/static/dashboard/app.js").status_code == 200
    after = scrape(client)

    def grew(**labels: str) -> float:
        return value(after, http, **labels) - value(before, http, **labels)

    assert grew(method="GET", route="/v1/jobs/{job_id}", status="404") == 1
    assert grew(method="GET", route="unmatched", status="404") == 1
    assert grew(method="DELETE", route="/healthz", status="405") == 1
    assert grew(method="other", route="/healthz", status="405") == 1
    assert grew(method="GET", route="/static/{path}", status="200") == 1
    assert grew(method="GET", route="/metrics", status="200") == 1  # the first scrape
    assert missing not in json.dumps([sorted(labels) for _, labels in after])


def test_a_database_that_cannot_be_reached_leaves_the_scrape_working():
    unreachable = f"postgresql+psycopg://nobody@127.0.0.1:{live.free_port()}/none"
    with TestClient(create_app(Settings(database_url=unreachable))) as client:
        samples = scrape(client)
    assert value(samples, "backprop_database_up") == 0
    assert not [name for name, _ in samples if name == "backprop_jobs"]
    assert ("backprop_job_claims_total", frozenset()) in samples


def test_with_api_keys_metrics_need_an_admin_key(settings):
    # The figures span every project: an operator's (an admin's), not a project reader's.
    keyed = settings.model_copy(update={"api_keys": "rw-key", "read_only_api_keys": "ro-key"})
    with TestClient(create_app(keyed)) as client:
        refused = client.get("/metrics")
        assert refused.status_code == 401
        assert refused.headers["content-type"] == "application/problem+json"
        assert client.get("/metrics", headers={"X-API-Key": "wrong"}).status_code == 401
        assert client.get("/metrics", headers={"Authorization": "Bearer ro-key"}).status_code == 403
        samples = scrape(client, Authorization="Bearer rw-key")
    # The refusals are timed too, under the route they were for.
    assert value(samples, "backprop_http_request_duration_seconds_count", method="GET",
                 route="/metrics", status="401") >= 2  # fmt: skip


def test_metrics_is_documented_as_text(client):
    operation = client.get("/openapi.json").json()["paths"]["/metrics"]["get"]
    assert operation["operationId"] == "metrics-get_metrics"
    assert "text/plain" in operation["responses"]["200"]["content"]


# -- `backprop serve`: its API and its workers share a directory it makes -----------------------


@pytest.fixture(scope="module")
def served_job(tmp_path_factory) -> dict[str, Any]:
    """`backprop serve --workers 1` on SQLite trains one job; its scrape, its stderr lines
    and what it left in its temporary folder."""
    folder = tmp_path_factory.mktemp("serve")
    url = f"sqlite:///{folder / 'backprop.db'}"
    temp = folder / "tmp"
    temp.mkdir()
    port = live.free_port()
    env = live.service_env(url, port=port, workers=1, poll_seconds=0.05, log_format="json")
    env["TMPDIR"] = str(temp)  # where serve makes its metrics directory
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    stderr = folder / "stderr.log"
    with stderr.open("w") as errors:
        serve = subprocess.Popen(
            [BACKPROP, "serve"], env=env, cwd=live.ROOT, stdout=subprocess.DEVNULL, stderr=errors
        )
    try:
        base = f"http://127.0.0.1:{port}"
        live.wait_until_ready(base)
        csv = "x0,x1,y\n" + "".join(f"{i % 5},{i % 3 + i % 2},{i % 2}\n" for i in range(40))
        upload = httpx.post(
            f"{base}/v1/datasets?label=y", files={"file": ("d.csv", csv, "text/csv")}
        )
        assert upload.status_code == 201, upload.text
        body = {"dataset_id": upload.json()["id"], "training": EXACT_EPOCHS}
        job = wait_for_job(base, httpx.post(f"{base}/v1/jobs", json=body).json()["id"])
        during = sorted(path.name for path in temp.iterdir())
        text = httpx.get(f"{base}/metrics").text
        serve.send_signal(signal.SIGINT)
        assert serve.wait(30) == 0
    finally:
        if serve.poll() is None:
            serve.kill()
            serve.wait()
    return {
        "pid": serve.pid,
        "job": job,
        "samples": parse(text),
        "during": during,
        "after": sorted(path.name for path in temp.iterdir()),
        "stderr": stderr.read_text(),
    }


@pytest.mark.slow
def test_serve_sums_the_figures_of_its_api_and_its_workers(served_job):
    samples, job = served_job["samples"], served_job["job"]
    assert job["status"] == SUCCEEDED
    assert value(samples, "backprop_job_claims_total") == 1  # counted in the worker
    assert value(samples, "backprop_epoch_duration_seconds_count") == 25
    http = "backprop_http_request_duration_seconds_count"
    assert value(samples, http, method="POST", route="/v1/jobs", status="202") == 1  # the API
    assert value(samples, http, method="POST", route="/v1/datasets", status="201") == 1


@pytest.mark.slow
def test_serve_removes_its_metrics_directory_when_it_stops(served_job):
    assert [name for name in served_job["during"] if name.startswith("backprop-metrics-")]
    assert served_job["after"] == []


@pytest.mark.slow
def test_serve_logs_only_json_lines_uvicorns_included(served_job):
    lines = served_job["stderr"].splitlines()
    entries = [json.loads(line) for line in lines]  # fails on any line that is not JSON
    loggers = {entry["logger"] for entry in entries}
    assert {"backprop", "service.queue.worker", "uvicorn.error"} <= loggers, loggers
    job_id = served_job["job"]["id"]
    # The worker's lines (not serve's own pid) that mention the job all carry its id.
    about_job = [e for e in entries if e["pid"] != served_job["pid"] and job_id in e["message"]]
    assert len(about_job) >= 3  # claimed, training, finished
    assert all(entry["job_id"] == job_id and entry["attempt"] == 1 for entry in about_job)
    # uvicorn's access lines carry the request's parts as fields.
    access = [entry for entry in entries if entry["logger"] == "uvicorn.access"]
    assert {"method": "POST", "path": "/v1/jobs", "status": 202}.items() <= next(
        entry for entry in access if entry["path"] == "/v1/jobs"
    ).items()
