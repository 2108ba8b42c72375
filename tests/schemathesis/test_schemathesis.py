"""Schemathesis against the live API: every operation, every check, no failure.

A real server (uvicorn on 127.0.0.1) and a worker run on a scratch database of the
test's own, migrated for it and dropped after it (SQLite, and PostgreSQL when
configured: some inputs fail on one only), with a TRAINER key of a project of its own,
made in that database (service.core.api_keys.create_key): a team's everyday key, which
may upload, train, predict, score and register but not delete, manage keys or quotas,
read the audit log or /metrics; those admin-only operations answer their documented 403
(every operation above reader documents one). The run never shares a database with
other tests. The test seeds rows
that exist (a dataset, a succeeded job and its model, a diverged job, a sweep) and an
issued cursor, so that generated requests reach more than the 404 branch
(tests/schemathesis/hooks.py), then runs the `st` CLI as a subprocess with every
check (positive_data_acceptance included) and 100 examples per operation, and asserts
that it exits 0. The only exclusions are rejections JSON Schema cannot express, each
listed with its reason in tests/schemathesis/schemathesis.toml. What it found is
pinned by tests/schemathesis/test_found_by_schemathesis.py.

The same run by hand (BACKPROP_SCHEMATHESIS_MAX_EXAMPLES changes the budget):

    .venv/bin/pytest -p no:cacheprovider tests/schemathesis/test_schemathesis.py -s

or against any running server (the seeded ids are optional):

    .venv/bin/st --config-file tests/schemathesis/schemathesis.toml run \\
        http://127.0.0.1:8000/openapi.json --checks all --max-examples 100 \\
        --request-timeout 5 --header "Authorization: Bearer <key>" --seed 20261128

The events stream (GET /v1/jobs/{id}/events) of a job that has not ended streams
until it does: schemathesis stops reading an event stream when the request
timeout has passed (--request-timeout 5), so such a request costs at most 5 s
and is not a failure.
"""

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from service.core.api_keys import create_key
from service.core.migrate import upgrade
from service.core.roles import Role
from tests.conftest import BACKENDS, POSTGRES_URL, create_postgres_database, drop_postgres_database
from tests.service import live

# pytest-timeout's 300 s is below RUN_TIMEOUT: a run on a loaded machine took 348 s.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

ROOT = live.ROOT
CONFIG = Path(__file__).with_name("schemathesis.toml")
PROJECT = "fuzz"  # not the default project: every request runs scoped to a project of its own
MAX_EXAMPLES = int(os.environ.get("BACKPROP_SCHEMATHESIS_MAX_EXAMPLES", "100"))
# More `st run` options, by hand: e.g. "--report har --report-har-path /tmp/run.har".
EXTRA_ARGS = os.environ.get("BACKPROP_SCHEMATHESIS_ARGS", "").split()
SEED = 20261128  # a fixed seed: CI runs the same cases every time
RUN_TIMEOUT = 600  # seconds; the run takes a fraction of this (see docs/reliability.md)
# Small jobs: a fuzzed POST /v1/jobs or sweep on the seeded dataset must not keep the
# worker busy (it shares the cores with the API and schemathesis; with the document
# precise, most generated jobs are accepted and trained: about 2,000 a run).
SERVER_SETTINGS = {
    "max_epochs": 20,
    "max_hidden_units": 64,
    # The document's maxItems for prediction rows: the coverage phase sends bodies of
    # maxItems and maxItems + 1 rows, which at the default (10,000) cost a minute a run.
    "max_prediction_rows": 100,
    "lease_seconds": 5,
    "heartbeat_seconds": 0.5,
    "poll_seconds": 0.05,
    "sweep_seconds": 1,
    "log_level": "warning",
}
CSV_HEADERS = {"Content-Type": "text/csv"}
DATASET_CSV = "x0,x1,x2,y\n" + "".join(
    f"{i % 7 - 3},{(i * 5) % 11 / 4},{i / 10},{i % 2}\n" for i in range(40)
)


def start_logged_api(env: dict[str, str], port: int, log: Path) -> subprocess.Popen:
    """live.start_api with the server's output kept in ``log`` (tracebacks are failures)."""
    command = [sys.executable, "-m", "uvicorn", "--factory", "service.app:create_app"]
    command += ["--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
    with log.open("wb") as output:
        return subprocess.Popen(command, env=env, cwd=ROOT, stdout=output, stderr=output)


def wait_until_ended(client: httpx.Client, job_id: str, timeout: float = 60.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/v1/jobs/{job_id}").json()
        if job["status"] in ("succeeded", "failed", "cancelled"):
            return job
        time.sleep(0.1)
    raise TimeoutError(f"job {job_id} did not end within {timeout} s")


def seed_rows(client: httpx.Client) -> dict[str, list[str]]:
    """Rows for the generated requests to find: parameter name -> ids."""
    upload = client.post("/v1/datasets", content=DATASET_CSV, headers=CSV_HEADERS)
    assert upload.status_code == 201, upload.text
    dataset_id = upload.json()["id"]
    trained = client.post(
        "/v1/jobs", json={"dataset_id": dataset_id, "training": {"epochs": 5}}
    ).json()["id"]
    diverged = client.post(
        "/v1/jobs",
        json={
            "dataset_id": dataset_id,
            "training": {"optimizer": "gd", "learning_rate": 1e300, "epochs": 20},
        },
    ).json()["id"]
    sweep = client.post(
        "/v1/sweeps",
        json={
            "dataset_id": dataset_id,
            "training": {"epochs": 3},
            "search": {"strategy": "grid", "space": {"l2": [0.0, 0.1]}},
        },
    )
    assert sweep.status_code in (201, 202), sweep.text
    succeeded = wait_until_ended(client, trained)
    assert succeeded["status"] == "succeeded", succeeded
    assert wait_until_ended(client, diverged)["stop_reason"] == "diverged"
    spare = client.post(
        "/v1/datasets", content=DATASET_CSV.replace("y\n", "label\n", 1), headers=CSV_HEADERS
    )
    assert spare.status_code == 201, spare.text
    # The first export imports the onnx package (seconds on a loaded machine): done here,
    # so that no generated request waits for it past --request-timeout.
    export = client.get(
        f"/v1/models/{succeeded['model_id']}/export", params={"format": "onnx"}, timeout=60
    )
    assert export.status_code in (200, 501), export.text  # 501: the onnx extra not installed
    issued = client.get("/v1/jobs", params={"limit": 1}).json()["next_cursor"]
    assert issued is not None
    return {
        "cursor": [issued, ""],  # an issued cursor (any list route reads it) and the first page
        "dataset_id": [dataset_id],
        "spare_dataset_id": [spare.json()["id"]],  # for DELETE /v1/datasets/{dataset_id}
        "job_id": [trained, diverged],
        "model_id": [succeeded["model_id"]],
        "sweep_id": [sweep.json()["id"]],
    }


@pytest.fixture(params=BACKENDS)
def scratch_database_url(request, tmp_path) -> Iterator[str]:
    """A database of this test's own, migrated, dropped afterwards."""
    if request.param == "postgresql":
        if not POSTGRES_URL:
            pytest.skip("PostgreSQL tests need BACKPROP_TEST_POSTGRES_URL")
        url = create_postgres_database("backprop_schemathesis")
    else:
        url = f"sqlite:///{tmp_path / 'schemathesis.db'}"
    upgrade(url)
    yield url
    if request.param == "postgresql":
        drop_postgres_database(url)


def rows_made(url: str) -> str:
    """How many rows the run left, by table: evidence that requests got past the 404s."""
    engine = create_engine(url)
    with engine.connect() as connection:
        counts = {
            table: connection.execute(text(f"SELECT count(*) FROM {table}")).scalar()
            for table in ("datasets", "jobs", "models", "sweeps")
        }
        statuses = connection.execute(text("SELECT status, count(*) FROM jobs GROUP BY 1"))
        by_status = {status: count for status, count in statuses}
        failures = connection.execute(
            text(
                "SELECT error_code, substr(error, 1, 80), count(*) FROM jobs "
                "WHERE status = 'failed' GROUP BY 1, 2 ORDER BY 3 DESC LIMIT 5"
            )
        )
        failed = [tuple(row) for row in failures]
    engine.dispose()
    return f"rows: {counts}, jobs by status: {by_status}, failed jobs' errors: {failed}"


def make_trainer_key(url: str) -> str:
    """A trainer key of PROJECT, made in the database before the API starts."""
    engine = create_engine(url)
    with Session(engine) as session, session.begin():
        key, _ = create_key(session, project=PROJECT, role=Role.trainer, name="schemathesis")
    engine.dispose()
    return key


def st_command(base_url: str, key: str) -> list[str]:
    return [
        str(Path(sys.executable).with_name("st")),
        "--config-file",
        str(CONFIG),
        "--no-color",
        "run",
        f"{base_url}/openapi.json",
        "--checks",
        "all",
        "--max-examples",
        str(MAX_EXAMPLES),
        "--request-timeout",
        "5",
        "--header",
        f"Authorization: Bearer {key}",
        "--seed",
        str(SEED),
        "--generation-database",
        ":memory:",  # no .schemathesis/ folder in the work tree
        *EXTRA_ARGS,
    ]


def test_schemathesis_finds_no_failure_in_the_live_api(scratch_database_url, tmp_path):
    url = scratch_database_url
    key = make_trainer_key(url)
    env = live.service_env(url, **SERVER_SETTINGS)
    port = live.free_port()
    base_url = f"http://127.0.0.1:{port}"
    server_log = tmp_path / "api.log"
    api = start_logged_api(env, port, server_log)
    worker = live.start_worker(env)
    try:
        live.wait_until_ready(base_url)
        headers = {"Authorization": f"Bearer {key}"}
        with httpx.Client(base_url=base_url, headers=headers, timeout=10) as client:
            known = seed_rows(client)
        st_env = {**os.environ, "SCHEMATHESIS_KNOWN_IDS": json.dumps(known)}
        started = time.monotonic()
        run = subprocess.run(
            st_command(base_url, key),
            cwd=ROOT,
            env=st_env,
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT,
        )
        seconds = time.monotonic() - started
    finally:
        live.stop(api)
        live.stop(worker)
    print(f"st run: {MAX_EXAMPLES} examples per operation in {seconds:.0f} s; {rows_made(url)}")
    print(run.stdout[-3000:])
    # On failure: from the first failure or error on (each names a curl command to replay it).
    first = min(
        (i for i in map(run.stdout.find, ("= ERRORS =", "= FAILURES =")) if i >= 0), default=0
    )
    assert run.returncode == 0, f"{run.stdout[first:][:30000]}\n{run.stderr[-3000:]}"
    log = server_log.read_text(errors="replace")
    assert "Traceback" not in log, log[-6000:]
    assert "database is locked" not in log
