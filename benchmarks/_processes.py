"""Real service processes for the service benchmark: databases, uvicorn, workers, RSS.

Every process is started as tests/service/live.py starts it (``python -m uvicorn
--factory service.app:create_app``, ``python -m service.queue.worker``), on 127.0.0.1 only,
with its output in a log file of the run's temporary folder, and is stopped when the
``ProcessGroup`` block that started it ends, however it ends (an error, Ctrl-C).
"""

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import psycopg
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"  # the only interface anything here listens on
# The uvicorn options of the service and of the bare peer app: identical, so the two
# differ only in the application (loop and http stay "auto": uvloop and httptools here).
UVICORN_OPTIONS = ("--host", HOST, "--log-level", "warning")
STOP_SECONDS = 15.0  # SIGTERM, then SIGKILL after this long (a worker checkpoints first)
READY_SECONDS = 60.0  # start-up of an API process, imports included, on a busy machine
LOG_TAIL_LINES = 30


class ProcessDied(RuntimeError):
    """A service process exited while the benchmark still needed it."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def service_env(database_url: str) -> dict[str, str]:
    """The environment of a service process: our BACKPROP_* variables dropped, so every
    setting is the service's default but the database."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BACKPROP_")}
    env["BACKPROP_DATABASE_URL"] = database_url
    env["PYTHONPATH"] = str(ROOT)
    return env


class ProcessGroup:
    """Processes started for one part of the run; ``stop_all`` (or the block's end) stops them."""

    def __init__(self, log_dir: Path):
        self.log_dir = log_dir
        self.processes: list[subprocess.Popen] = []
        self.logs: dict[int, Path] = {}

    def __enter__(self) -> "ProcessGroup":
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop_all()

    def start(self, name: str, command: list[str], env: dict[str, str]) -> subprocess.Popen:
        log_path = self.log_dir / f"{name}-{uuid.uuid4().hex[:6]}.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                command, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
            )
        self.processes.append(process)
        self.logs[process.pid] = log_path
        return process

    def start_api(
        self, database_url: str, port: int, app: str = "service.app:create_app"
    ) -> subprocess.Popen:
        """uvicorn in one process (no --reload, no --workers): its pid is the server's."""
        command = [sys.executable, "-m", "uvicorn", "--factory", app, *UVICORN_OPTIONS]
        return self.start("api", [*command, "--port", str(port)], service_env(database_url))

    def start_worker(self, database_url: str) -> subprocess.Popen:
        return self.start(
            "worker", [sys.executable, "-m", "service.queue.worker"], service_env(database_url)
        )

    def stop(self, process: subprocess.Popen) -> None:
        """SIGTERM, then SIGKILL if it has not exited within STOP_SECONDS."""
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(STOP_SECONDS)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if process in self.processes:
            self.processes.remove(process)

    def stop_all(self) -> None:
        """Stop every process of the group, the newest first (workers before their API)."""
        for process in reversed(list(self.processes)):
            self.stop(process)

    def check_alive(self, process: subprocess.Popen) -> None:
        if process.poll() is not None:
            raise ProcessDied(
                f"pid {process.pid} exited with {process.returncode}:\n{self.log_tail(process)}"
            )

    def log_tail(self, process: subprocess.Popen) -> str:
        path = self.logs.get(process.pid)
        if path is None or not path.exists():
            return "(no log)"
        lines = path.read_text(errors="replace").splitlines()[-LOG_TAIL_LINES:]
        return "\n".join(lines)


def wait_until_ready(
    group: ProcessGroup, process: subprocess.Popen, url: str, timeout: float = READY_SECONDS
) -> None:
    """Poll ``url`` until it answers 200, failing fast when the process dies."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        group.check_alive(process)
        try:
            if httpx.get(url, timeout=2.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{url} not ready after {timeout:.0f} s:\n{group.log_tail(process)}")


def migrate(database_url: str) -> None:
    """`backprop migrate` (python -m service.cli migrate) on ``database_url``."""
    subprocess.run(
        [sys.executable, "-m", "service.cli", "migrate"],
        env=service_env(database_url),
        cwd=ROOT,
        check=True,
        capture_output=True,
        timeout=300,
    )


@contextmanager
def fresh_database(kind: str, folder: Path, postgres_admin_url: str) -> Iterator[str]:
    """A new, migrated database; yields its URL. PostgreSQL's is dropped at the end."""
    if kind == "sqlite":
        url = f"sqlite:///{folder / f'bench-{uuid.uuid4().hex[:8]}.db'}"
        migrate(url)
        yield url  # the file goes with the run's temporary folder
        return
    admin = make_url(postgres_admin_url).set(drivername="postgresql")
    admin_conninfo = admin.render_as_string(hide_password=False)
    name = f"backprop_bench_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_conninfo, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    try:
        url = admin.set(drivername="postgresql+psycopg", database=name)
        service_url = url.render_as_string(hide_password=False)
        migrate(service_url)
        yield service_url
    finally:
        with psycopg.connect(admin_conninfo, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# -- memory of another process ------------------------------------------------------------------
def reset_peak_rss(pid: int) -> None:
    """Reset the process's peak resident set (VmHWM) to its current RSS (Linux 4.0+)."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")


def _status_bytes(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) * 1024  # reported in kB
    raise RuntimeError(f"no {field} in /proc/{pid}/status")


def peak_rss_bytes(pid: int) -> int:
    """VmHWM: the most resident memory the process held since start or the last reset."""
    return _status_bytes(pid, "VmHWM")


def rss_bytes(pid: int) -> int:
    """VmRSS: the resident memory the process holds now."""
    return _status_bytes(pid, "VmRSS")
