"""The `backprop` command: help, migrate, serve (API + supervised workers) and worker.

Every test runs the installed console script as a real process, with its settings in
BACKPROP_* variables, against a database of its own.
"""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, inspect
from sqlalchemy.engine import make_url

from service.core.migrate import upgrade
from service.core.tables import Base
from tests.conftest import POSTGRES_URL, create_postgres_database, drop_postgres_database
from tests.service.live import ROOT, free_port, service_env, wait_until_ready

BACKPROP = str(Path(sys.executable).with_name("backprop"))
TABLES = set(Base.metadata.tables)


def backprop(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [BACKPROP, *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60
    )


def children(pid: int) -> set[int]:
    """The pids whose parent is ``pid`` (from /proc)."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
        if int(fields[1]) == pid:  # fields: state, ppid, ...
            found.add(int(stat.parent.name))
    return found


def gone(pids: set[int], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while any(Path(f"/proc/{pid}").exists() for pid in pids):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def wait_for(condition, timeout: float = 30.0, interval: float = 0.05):
    """Polls ``condition()`` until it returns something truthy; returns that."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := condition():
            return value
        time.sleep(interval)
    raise TimeoutError(f"no {condition.__name__} after {timeout} s")


@contextmanager
def running(args: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen]:
    """`backprop ARGS` in the background, its output in ``log``; killed with its children
    at the end if a failed test left it running."""
    with log.open("w") as output:
        process = subprocess.Popen(
            [BACKPROP, *args], env=env, cwd=ROOT, stdout=output, stderr=subprocess.STDOUT
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            for pid in children(process.pid):
                os.kill(pid, signal.SIGKILL)
            process.kill()
            process.wait()


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'backprop.db'}"


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database_url(request, sqlite_url) -> Iterator[str]:
    """A database without tables, on each backend."""
    if request.param == "sqlite":
        yield sqlite_url
        return
    if not POSTGRES_URL:
        pytest.skip("PostgreSQL tests need BACKPROP_TEST_POSTGRES_URL")
    url = create_postgres_database(prefix="backprop_cli")
    yield url
    drop_postgres_database(url)


# -- a database that cannot be opened --------------------------------------------------------

# Each names a database that cannot be opened, as a new user might mistype it.
MISSING_DATABASES = ["postgresql", "sqlite"]
SERVICE_COMMANDS = [["migrate"], ["serve", "--workers", "1"], ["worker"]]


def missing_database(kind: str, tmp_path: Path) -> tuple[str, str]:
    """A URL naming a database that does not exist, and how its reason reads."""
    if kind == "sqlite":
        folder = tmp_path / "no-such-folder"
        reason = f"unable to open database file (the folder {folder} does not exist)"
        return f"sqlite:///{folder / 'backprop.db'}", reason
    if not POSTGRES_URL:
        pytest.skip("PostgreSQL tests need BACKPROP_TEST_POSTGRES_URL")
    # A password the server (trust auth) ignores, to show it is never printed.
    url = make_url(POSTGRES_URL).set(database="backprop_no_such_db", password="hunter2-secret")
    return url.render_as_string(hide_password=False), 'FATAL: database "backprop_no_such_db"'


@pytest.mark.slow
@pytest.mark.parametrize("command", SERVICE_COMMANDS, ids=lambda c: c[0])
@pytest.mark.parametrize("kind", MISSING_DATABASES)
def test_a_database_that_cannot_be_opened_is_one_line_and_exit_1(command, kind, tmp_path):
    url, reason = missing_database(kind, tmp_path)
    env = service_env(url, port=free_port(), log_format="text")
    result = backprop(*command, env=env)

    assert result.returncode == 1, result.stderr
    lines = (result.stdout + result.stderr).splitlines()
    assert len(lines) == 1, lines
    shown = make_url(url).render_as_string(hide_password=True)
    assert "ERROR   backprop[" in lines[0]
    assert f"cannot open the database {shown}: " in lines[0]
    assert reason in lines[0]
    assert "hunter2" not in lines[0]
    assert not (tmp_path / "no-such-folder").exists()


@pytest.mark.slow
@pytest.mark.parametrize("command", SERVICE_COMMANDS, ids=lambda c: c[0])
def test_a_database_that_cannot_be_opened_is_one_json_line(command, tmp_path):
    url, reason = missing_database("sqlite", tmp_path)
    result = backprop(*command, env=service_env(url, port=free_port(), log_format="json"))

    assert result.returncode == 1, result.stderr
    (line,) = (result.stdout + result.stderr).splitlines()
    record = json.loads(line)
    assert (record["level"], record["logger"]) == ("error", "backprop")
    assert record["message"] == f"cannot open the database {url}: {reason}"
    assert "exc" not in record


# -- help ----------------------------------------------------------------------------------


def test_help_lists_serve_worker_and_migrate():
    result = backprop("--help")
    assert result.returncode == 0, result.stderr
    for command in ("serve", "worker", "migrate"):
        assert command in result.stdout
    assert "BACKPROP_" in result.stdout


@pytest.mark.parametrize(
    ("command", "options"),
    [
        ("serve", ["--host", "--port", "--workers N", "--no-migrate", "--grace-seconds"]),
        ("worker", ["--worker-id"]),
        ("migrate", ["--revision", "--sql"]),
    ],
)
def test_each_command_help_lists_its_options(command, options):
    result = backprop(command, "--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"usage: backprop {command}")
    for option in options:
        assert option in result.stdout
    assert "--parent-pid" not in result.stdout  # internal to serve


def test_no_command_prints_usage_and_exits_2():
    result = backprop()
    assert result.returncode == 2
    assert "usage: backprop" in result.stderr
    assert "required: COMMAND" in result.stderr


def test_negative_worker_count_is_refused():
    result = backprop("serve", "--workers", "-1")
    assert result.returncode == 2
    assert "--workers: must be 0 or more, got -1" in result.stderr


# -- migrate -------------------------------------------------------------------------------


@pytest.mark.slow
def test_migrate_creates_every_table(empty_database_url):
    result = backprop("migrate", env=service_env(empty_database_url))
    assert result.returncode == 0, result.stderr
    engine = create_engine(empty_database_url)
    assert set(inspect(engine).get_table_names()) == TABLES | {"alembic_version"}
    engine.dispose()


def test_migrate_sql_prints_the_schema_without_touching_the_database(tmp_path):
    database = tmp_path / "never.db"
    result = backprop("migrate", "--sql", env=service_env(f"sqlite:///{database}"))
    assert result.returncode == 0, result.stderr
    for table in TABLES:
        assert f"CREATE TABLE {table} (" in result.stdout
    assert not database.exists()


# -- serve ---------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("stop_signal", ["SIGINT", "SIGTERM"])
def test_serve_answers_probes_and_stops_everything_cleanly(stop_signal, sqlite_url, tmp_path):
    port = free_port()
    env = service_env(sqlite_url, port=port, workers=2)  # as `make serve` passes settings
    log = tmp_path / "serve.log"
    with running(["serve"], env, log) as serve:
        base = f"http://127.0.0.1:{port}"
        wait_until_ready(base)  # implies the migration ran: /readyz checks the revision
        assert httpx.get(f"{base}/healthz").json() == {"status": "ok"}
        workers = wait_for(lambda: len(children(serve.pid)) == 2 and children(serve.pid))
        assert wait_for(lambda: f"docs at {base}/docs" in log.read_text())

        serve.send_signal(getattr(signal, stop_signal))
        assert serve.wait(30) == 0, log.read_text()
    assert gone(workers), "worker processes outlived serve"
    output = log.read_text()
    assert "backprop serve stopped" in output
    assert "Traceback" not in output
    assert "killing it" not in output


@pytest.mark.slow
def test_serve_options_override_the_environment(sqlite_url, tmp_path):
    port = free_port()
    env = service_env(sqlite_url, port=free_port(), workers=5)
    with running(["serve", "--port", str(port), "--workers", "1"], env, tmp_path / "log") as serve:
        wait_until_ready(f"http://127.0.0.1:{port}")
        assert len(wait_for(lambda: children(serve.pid))) == 1
        serve.send_signal(signal.SIGINT)
        assert serve.wait(30) == 0


@pytest.mark.slow
def test_serve_restarts_a_worker_that_dies(sqlite_url, tmp_path):
    env = service_env(sqlite_url, port=free_port(), workers=1)
    log = tmp_path / "serve.log"
    with running(["serve"], env, log) as serve:
        (first,) = wait_for(lambda: children(serve.pid))
        os.kill(first, signal.SIGKILL)
        (second,) = wait_for(lambda: children(serve.pid) - {first}, timeout=10)
        assert f"worker 1 (pid {first}) exited unexpectedly with code -9" in log.read_text()

        serve.send_signal(signal.SIGINT)
        assert serve.wait(30) == 0, log.read_text()
    assert gone({first, second})


@pytest.mark.slow
def test_serve_exits_1_and_stops_its_workers_when_the_port_is_taken(sqlite_url, tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = service_env(sqlite_url, port=port, workers=1)
        log = tmp_path / "serve.log"
        with running(["serve"], env, log) as serve:
            assert serve.wait(30) == 1
    output = log.read_text()
    assert "address already in use" in output
    assert "the API stopped" in output
    workers = {int(pid) for pid in re.findall(r"worker 1 started \(pid (\d+)\)", output)}
    assert workers, output
    assert gone(workers)


# -- worker --------------------------------------------------------------------------------


@pytest.mark.slow
def test_worker_exits_0_on_sigterm(sqlite_url, tmp_path):
    upgrade(sqlite_url)
    log = tmp_path / "worker.log"
    with running(["worker", "--worker-id", "test-worker"], service_env(sqlite_url), log) as worker:
        wait_for(lambda: "worker test-worker serving" in log.read_text())
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(30) == 0, log.read_text()
    assert "worker test-worker stopped" in log.read_text()


@pytest.mark.slow
def test_worker_started_by_serve_stops_when_serve_is_gone(sqlite_url, tmp_path):
    # serve passes its pid: a worker whose parent is another process (serve died, even
    # by SIGKILL, and it was re-parented) stops by itself instead of running on unsupervised.
    upgrade(sqlite_url)
    log = tmp_path / "worker.log"
    with running(["worker", "--parent-pid", "1"], service_env(sqlite_url), log) as worker:
        assert worker.wait(30) == 0, log.read_text()
    assert "serve (pid 1) is gone; stopping" in log.read_text()
