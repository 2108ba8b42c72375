"""Log lines: JSON objects, one a line, and every line a worker writes about a job names it.

The worker tests run `python -m service.queue.worker` and `backprop worker` as real processes
and parse every line they write to stderr; the formatter tests format real records.
"""

import json
import logging
import re
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from service.core.logs import JsonFormatter, utc_timestamp
from service.core.states import FAILED, SUCCEEDED
from tests.service import live
from tests.service.factories import add_dataset, add_job, get_job

ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
BASE_FIELDS = {"time", "level", "logger", "message", "pid"}
BACKPROP = str(Path(sys.executable).with_name("backprop"))
JOB_TIMEOUT_SECONDS = 60


def json_lines(text: str) -> list[dict]:
    """Every line of ``text`` as JSON (fails on the first line that is not one object)."""
    entries = [json.loads(line) for line in text.splitlines()]
    for entry in entries:
        assert isinstance(entry, dict), entry
        assert set(entry) >= BASE_FIELDS, entry
        assert ISO_UTC.match(entry["time"]), entry["time"]
    return entries


def wait_until_ended(database, job_ids: list[str]) -> None:
    deadline = time.monotonic() + JOB_TIMEOUT_SECONDS
    while any(get_job(database, job_id).status not in (SUCCEEDED, FAILED) for job_id in job_ids):
        assert time.monotonic() < deadline, "the worker did not end the jobs"
        time.sleep(0.05)


@pytest.mark.slow
def test_every_line_a_worker_writes_about_a_job_is_json_and_names_the_job(
    database_url, database, tmp_path
):
    dataset_id = add_dataset(database)
    trained = add_job(database, dataset_id, epochs=15)
    orphaned = add_job(database, None)  # its dataset is gone: the worker fails it
    env = live.service_env(database_url, poll_seconds=0.05, log_format="json", log_level="info")
    stderr, stdout = tmp_path / "stderr", tmp_path / "stdout"
    with stderr.open("w") as errors, stdout.open("w") as output:
        worker = subprocess.Popen(
            [sys.executable, "-m", "service.queue.worker"],
            env=env,
            cwd=live.ROOT,
            stdout=output,
            stderr=errors,
        )
    try:
        wait_until_ended(database, [trained, orphaned])
    finally:
        live.stop(worker)
    assert worker.returncode == 0

    entries = json_lines(stderr.read_text())
    assert stdout.read_text() == ""
    assert {entry["pid"] for entry in entries} == {worker.pid}
    for job_id in (trained, orphaned):
        about = [entry for entry in entries if job_id in entry["message"]]
        assert about, job_id
        assert all(e["job_id"] == job_id and e["attempt"] == 1 for e in about), about
    trained_said = [e["message"] for e in entries if e.get("job_id") == trained]
    assert trained_said[0].endswith(f"claimed by {socket.gethostname()}:{worker.pid}")
    assert trained_said[-1].endswith("finished: max_epochs after epoch 15")
    failure = next(e for e in entries if e.get("job_id") == orphaned and e["level"] == "warning")
    assert "failed (dataset_missing)" in failure["message"]
    worker_id = f"{socket.gethostname()}:{worker.pid}"
    lifecycle = [e["message"] for e in entries if e.get("worker_id") == worker_id]
    assert lifecycle[0].startswith(f"worker {worker_id} serving ")
    assert lifecycle[-1] == f"worker {worker_id} stopped"


@pytest.mark.slow
@pytest.mark.parametrize("log_format", ["json", "text"])
def test_backprop_worker_logs_as_backprop_log_format_says(log_format, tmp_path):
    env = live.service_env(f"sqlite:///{tmp_path / 'backprop.db'}", log_format=log_format)
    # --parent-pid 1 is not its parent: the worker stops at once, after a few lines.
    done = subprocess.run(
        [BACKPROP, "worker", "--worker-id", "w-1", "--parent-pid", "1"],
        env=env,
        cwd=live.ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    if log_format == "json":
        entries = json_lines(done.stderr)
        serving = next(e for e in entries if e["message"].startswith("worker w-1 serving"))
        assert serving["worker_id"] == "w-1"
        assert serving["logger"] == "service.queue.worker"
        assert serving["level"] == "info"
    else:
        lines = done.stderr.splitlines()
        assert not [line for line in lines if line.startswith("{")]
        assert re.search(r" INFO +service\.queue\.worker\[\d+\]: worker w-1 serving ", done.stderr)


def test_warnings_and_uncaught_exceptions_become_json_lines():
    script = (
        "import warnings\n"
        "from service.core.logs import configure_logging\n"
        "from service.core.settings import Settings\n"
        "configure_logging(Settings(log_format='json'))\n"
        "warnings.warn('a warning from a library')\n"
        "raise RuntimeError('boom')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        env=live.service_env("sqlite://"),
        cwd=live.ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    warning, uncaught = json_lines(done.stderr)
    assert warning["logger"] == "py.warnings"
    assert "a warning from a library" in warning["message"]
    assert uncaught["level"] == "critical"
    assert uncaught["exc"].startswith("Traceback (most recent call last):")
    assert uncaught["exc"].endswith("RuntimeError: boom")


# -- the formatter --------------------------------------------------------------------------


def format_record(message: str, *args: object, **record: object) -> dict:
    fields = {"name": "service.queue.worker", "levelno": logging.INFO, "levelname": "INFO"}
    made = logging.makeLogRecord({**fields, "msg": message, "args": args, **record})
    line = JsonFormatter().format(made)
    assert "\n" not in line
    return json.loads(line)


def test_a_record_is_one_json_object_with_its_extra_fields():
    entry = format_record(
        "job %s attempt %d: claimed", "abc", 1, job_id="abc", attempt=1, created=0.0
    )
    assert entry == {
        "time": "1970-01-01T00:00:00.000Z",
        "level": "info",
        "logger": "service.queue.worker",
        "message": "job abc attempt 1: claimed",
        "pid": entry["pid"],
        "job_id": "abc",
        "attempt": 1,
    }


def test_an_exception_is_one_field_and_odd_values_are_written_as_text():
    try:
        raise ValueError("bad\nvalue")
    except ValueError:
        exc_info = sys.exc_info()
    entry = format_record("failed", exc_info=exc_info, path=Path("/x"), time="not mine")
    assert entry["exc"].splitlines()[-2:] == ["ValueError: bad", "value"]
    assert entry["path"] == "/x"
    assert ISO_UTC.match(entry["time"])  # an extra cannot replace the record's own fields


def test_timestamps_are_utc_to_the_millisecond():
    moment = datetime(2026, 11, 28, 1, 35, 7, 123_456, tzinfo=UTC).timestamp()
    assert utc_timestamp(moment) == "2026-11-28T01:35:07.123Z"
