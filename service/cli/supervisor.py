"""`backprop serve`'s supervision: the API (uvicorn) in a thread of this process and N
`backprop worker` child processes.

The main thread supervises: it restarts a worker that dies on its own, and on SIGINT
(Ctrl-C) or SIGTERM stops the API, sends SIGTERM to the workers (each checkpoints and
releases its job), waits for them, and exits 0. A second Ctrl-C stops at once: open
connections are closed, workers are killed (their jobs are re-queued when their leases
expire). `serve` gives its API and its workers a fresh metrics directory
(PROMETHEUS_MULTIPROC_DIR, removed when it stops), so the API's /metrics sums the
figures of all of them.
"""

import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import FrameType

from service.cli.database import database_opens, shown_url

log = logging.getLogger("backprop")

# A worker that dies this soon after starting is crash-looping: wait before the next start.
CRASH_LOOP_SECONDS = 10.0
MAX_RESTART_DELAY_SECONDS = 30.0
# Open streams (GET /v1/jobs/{id}/events) must not hold the API open forever at shutdown.
API_SHUTDOWN_SECONDS = 5


@dataclass
class WorkerSlot:
    """One of `serve`'s worker processes and its restart bookkeeping."""

    number: int
    process: subprocess.Popen | None = None
    started_at: float = 0.0
    crashes: int = 0  # consecutive deaths soon after starting
    restart_at: float | None = None  # set when its death is noticed: when to start it again


@dataclass
class WorkerPool:
    """`serve`'s local workers: `backprop worker` child processes, restarted when they die.

    Each child runs in a process group of its own, so a Ctrl-C in the terminal reaches
    `serve` only, which then stops the API before the workers.
    """

    count: int
    grace_seconds: float
    slots: list[WorkerSlot] = field(default_factory=list)

    def start(self) -> None:
        self.slots = [WorkerSlot(number) for number in range(1, self.count + 1)]
        for slot in self.slots:
            self._spawn(slot)

    def _spawn(self, slot: WorkerSlot) -> None:
        command = [sys.executable, "-m", "service.cli", "worker"]
        command += ["--worker-id", f"{os.uname().nodename}:serve-{os.getpid()}-{slot.number}"]
        command += ["--parent-pid", str(os.getpid())]
        slot.process = subprocess.Popen(command, process_group=0)
        slot.started_at = time.monotonic()
        log.info("worker %d started (pid %d)", slot.number, slot.process.pid)

    def restart_dead(self) -> None:
        """Start again every worker that exited on its own (with a delay if it crash-loops)."""
        now = time.monotonic()
        for slot in self.slots:
            if slot.process is None or slot.process.poll() is None:
                continue
            if slot.restart_at is None:  # the death is new
                lived = now - slot.started_at
                slot.crashes = slot.crashes + 1 if lived < CRASH_LOOP_SECONDS else 0
                delay = (
                    min(2.0 ** (slot.crashes - 1), MAX_RESTART_DELAY_SECONDS) if slot.crashes else 0
                )
                slot.restart_at = now + delay
                forget_metrics_of(slot.process.pid)
                log.warning(
                    "worker %d (pid %d) exited unexpectedly with code %s; restarting it in %.0f s",
                    slot.number,
                    slot.process.pid,
                    slot.process.returncode,
                    delay,
                )
            if now >= slot.restart_at:
                slot.restart_at = None
                self._spawn(slot)

    def stop(self, hurry: threading.Event) -> bool:
        """SIGTERM every worker and wait; SIGKILL those still running after the grace period
        (or at once when ``hurry`` is set). True if none had to be killed."""
        running = [s.process for s in self.slots if s.process and s.process.poll() is None]
        for process in running:
            process.send_signal(signal.SIGTERM)
        if running:
            log.info("stopping %d worker(s): running jobs are checkpointed", len(running))
        deadline = time.monotonic() + self.grace_seconds
        while any(p.poll() is None for p in running) and time.monotonic() < deadline:
            if hurry.wait(0.05):
                break
        clean = True
        for process in running:
            if process.poll() is None:
                log.warning("worker pid %d did not stop; killing it", process.pid)
                process.kill()
                process.wait()
                clean = False
            forget_metrics_of(process.pid)
        return clean


def forget_metrics_of(pid: int) -> None:
    """A worker died: drop its live gauges from the metrics directory (service.core.metrics)."""
    from service.core.metrics import forget_process

    forget_process(pid)


@contextmanager
def metrics_directory() -> Iterator[str]:
    """A fresh PROMETHEUS_MULTIPROC_DIR for this `serve`: its API (in this process) and its
    workers (children, which inherit the environment) write their figures there; /metrics
    sums them. Fresh, so a restart never counts the last run's files twice; removed at exit.

    Set before anything imports prometheus_client, which reads the variable once, at import.
    """
    path = tempfile.mkdtemp(prefix="backprop-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = path
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def run_api_and_workers(*, no_migrate: bool, grace_seconds: float) -> int:
    """`serve`'s work, once the metrics directory is set: migrate, start the workers and
    the API; stop all on SIGINT/SIGTERM. The exit code: 0, or 1 if the API stopped."""
    import uvicorn

    from service.core.logs import uvicorn_log_config
    from service.core.migrate import upgrade
    from service.core.settings import get_settings

    settings = get_settings()
    if not database_opens(settings.database_url):
        return 1
    if not no_migrate:
        log.info("migrating %s to the latest revision", shown_url(settings.database_url))
        upgrade(settings.database_url)

    config = uvicorn.Config(
        "service.app:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
        log_config=uvicorn_log_config(settings),
        timeout_graceful_shutdown=API_SHUTDOWN_SECONDS,
    )
    server = uvicorn.Server(config)
    stop, hurry = threading.Event(), threading.Event()

    def request_stop(_signum: int, _frame: FrameType | None) -> None:
        if stop.is_set():  # a second Ctrl-C: close open connections, kill the workers
            server.force_exit = True
            hurry.set()
        stop.set()
        server.should_exit = True

    # uvicorn runs in a thread, where it installs no signal handlers: the main thread's are ours.
    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)

    pool = WorkerPool(settings.workers, grace_seconds)
    pool.start()
    api = threading.Thread(target=server.run, name="uvicorn")
    api.start()

    exit_code, announced = 0, False
    while not stop.wait(0.2):
        if not api.is_alive():
            log.error("the API stopped (see above); stopping the workers")
            exit_code = 1
            break
        if server.started and not announced:
            announce(settings.host, settings.port, settings.workers, settings.database_url)
            announced = True
        pool.restart_dead()

    server.should_exit = True
    api.join()
    if not pool.stop(hurry):
        log.warning("some workers had to be killed; their jobs resume when their lease expires")
    log.info("backprop serve stopped")
    return exit_code


def announce(host: str, port: int, workers: int, database_url: str) -> None:
    """Tell the person at the terminal where to go."""
    shown_host = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    base = f"http://{shown_host}:{port}"
    listening = f" (listening on {host})" if shown_host != host else ""
    print(
        f"\nbackprop: API at {base}{listening}\n"
        f"          docs at {base}/docs\n"
        f"          {workers} worker process(es), database {shown_url(database_url)}\n"
        f"          Ctrl-C stops everything\n",
        flush=True,
    )
