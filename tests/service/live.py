"""Real processes for scenario tests: the API under uvicorn on 127.0.0.1, and workers."""

import os
import pty
import select
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

from service.core.migrate import upgrade
from tests.conftest import POSTGRES_URL, create_postgres_database, drop_postgres_database

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def service_env(database_url: str, **settings: object) -> dict[str, str]:
    """The environment of a service process: BACKPROP_* settings and nothing inherited of ours."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BACKPROP_")}
    env["BACKPROP_DATABASE_URL"] = database_url
    env["PYTHONPATH"] = str(ROOT)
    for name, value in settings.items():
        env[f"BACKPROP_{name.upper()}"] = str(value)
    return env


def start_api(env: dict[str, str], port: int) -> subprocess.Popen:
    command = [sys.executable, "-m", "uvicorn", "--factory", "service.app:create_app"]
    command += ["--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
    return subprocess.Popen(command, env=env, cwd=ROOT)


def start_worker(env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "service.queue.worker"], env=env, cwd=ROOT)


def wait_until_ready(base_url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base_url}/readyz", timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{base_url} not ready after {timeout} s")


def stop(process: subprocess.Popen, timeout: float = 10.0) -> None:
    """SIGTERM, then SIGKILL if it has not exited within ``timeout``."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# Fast enough that a short job's end shows within a second.
LIVE_TIMINGS = {"poll_seconds": 0.05, "flush_seconds": 0.1, "heartbeat_seconds": 0.5}


@contextmanager
def fresh_database(backend: str, folder: Path, prefix: str) -> Iterator[str]:
    """The URL of a new migrated database: a SQLite file in ``folder``, or a PostgreSQL
    database named from ``prefix`` (dropped at the end; skipped without
    BACKPROP_TEST_POSTGRES_URL)."""
    if backend == "postgresql" and not POSTGRES_URL:
        pytest.skip("PostgreSQL tests need BACKPROP_TEST_POSTGRES_URL")
    if backend == "sqlite":
        database_url = f"sqlite:///{folder / 'backprop.db'}"
    else:
        database_url = create_postgres_database(prefix)
    try:
        upgrade(database_url)
        yield database_url
    finally:
        if backend != "sqlite":
            drop_postgres_database(database_url)


@contextmanager
def api_and_worker(backend: str, folder: Path, prefix: str, **settings: object) -> Iterator[str]:
    """The base URL of an API under uvicorn and one worker on a fresh database; both are
    stopped at the end. ``settings``: BACKPROP_* values beyond LIVE_TIMINGS."""
    with fresh_database(backend, folder, prefix) as database_url:
        env = service_env(database_url, **{**LIVE_TIMINGS, **settings})
        port = free_port()
        processes = [start_api(env, port), start_worker(env)]
        try:
            wait_until_ready(f"http://127.0.0.1:{port}")
            yield f"http://127.0.0.1:{port}"
        finally:
            for process in processes:
                stop(process)


def run_with_terminal_stderr(args: list[str], url: str) -> tuple[int, str, str]:
    """`backprop ARGS` against ``url`` with stderr on a pseudo-terminal (Rich draws as on a
    screen) and stdout a pipe: (exit code, stdout, what the terminal was sent)."""
    primary, secondary = pty.openpty()
    env = {k: v for k, v in os.environ.items() if not k.startswith("BACKPROP_")}
    process = subprocess.Popen(
        [sys.executable, "-m", "service.cli", *args],
        env={**env, "PYTHONPATH": str(ROOT), "BACKPROP_URL": url, "COLUMNS": "120"},
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=secondary,
        text=True,
    )
    os.close(secondary)
    drawn = b""
    while True:  # read the terminal until the process closes it
        ready, _, _ = select.select([primary], [], [], 60)
        try:
            chunk = os.read(primary, 65536) if ready else b""
        except OSError:  # EIO: the other side is closed
            chunk = b""
        if not chunk:
            break
        drawn += chunk
    os.close(primary)
    stdout = process.communicate(timeout=60)[0]
    return process.returncode, stdout, drawn.decode()
