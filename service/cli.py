"""The `backprop` command: `serve` (API + local workers), `worker` and `migrate`; and the
client commands (upload, train, jobs, status, cancel, history, predict) of service.cli_client.

Settings come from BACKPROP_* environment variables (service.core.settings); an option
given on the command line overrides its variable, for this process and the
processes it starts.

`serve` runs uvicorn in a thread of its own process and N `backprop worker`
child processes. The main thread supervises: it restarts a worker that dies on
its own, and on SIGINT (Ctrl-C) or SIGTERM stops the API, sends SIGTERM to the
workers (each checkpoints and releases its job), waits for them, and exits 0.
A second Ctrl-C stops at once: open connections are closed, workers are killed
(their jobs are re-queued when their leases expire).

`serve`, `worker` and `migrate` log as BACKPROP_LOG_FORMAT says (JSON lines by default,
service.core.logs); the client commands log plain text, for a person. `serve` gives its API
and its workers a fresh metrics directory (PROMETHEUS_MULTIPROC_DIR, removed when it
stops), so the API's /metrics sums the figures of all of them.
"""

import argparse
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import FrameType

log = logging.getLogger("backprop")

# A worker that dies this soon after starting is crash-looping: wait before the next start.
CRASH_LOOP_SECONDS = 10.0
MAX_RESTART_DELAY_SECONDS = 30.0
# Open streams (GET /v1/jobs/{id}/events) must not hold the API open forever at shutdown.
API_SHUTDOWN_SECONDS = 5


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `backprop` console script; returns the exit code."""
    args = build_parser().parse_args(argv)
    apply_overrides(args)
    from service.core.logs import configure_logging
    from service.core.settings import get_settings

    # A client command's few log lines are for the person at the terminal: plain text.
    configure_logging(get_settings(), log_format=None if args.service_command else "text")
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)  # one line per plugin
    try:
        return args.run(args)
    except KeyboardInterrupt:  # Ctrl-C before `serve` took over the signals, e.g. mid-migration
        return 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="backprop",
        description="Train and serve logistic regressions and two-layer networks.",
        epilog="Settings come from BACKPROP_* environment variables (see the README's "
        "Configuration table); options override them.",
    )
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    parser.set_defaults(service_command=False)  # serve, worker and migrate set it

    serve = commands.add_parser(
        "serve",
        help="migrate the database, then run the API and local worker processes",
        description="Upgrade the database to the latest revision, start N worker processes "
        "and the HTTP API. Ctrl-C or SIGTERM stops everything; running jobs are "
        "checkpointed and released for the next start.",
    )
    serve.add_argument("--host", help="interface the API listens on (BACKPROP_HOST, 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port the API listens on (BACKPROP_PORT, 8000)")
    serve.add_argument(
        "--workers",
        type=non_negative_int,
        metavar="N",
        help="local worker processes; 0 runs the API only (BACKPROP_WORKERS, one per core)",
    )
    serve.add_argument(
        "--no-migrate",
        action="store_true",
        help="do not upgrade the database first (e.g. when a separate `migrate` step does it)",
    )
    serve.add_argument(
        "--grace-seconds",
        type=float,
        default=30.0,
        metavar="S",
        help="how long stopping workers may take before they are killed (default: 30)",
    )
    serve.set_defaults(run=run_serve, service_command=True)

    worker = commands.add_parser(
        "worker",
        help="run one worker process: claim queued jobs and train them",
        description="Claim queued jobs from the database (BACKPROP_DATABASE_URL) and train "
        "them until stopped. Run as many as you like, on any machine that reaches the "
        "database. SIGTERM or Ctrl-C checkpoints the running job, releases it and exits.",
    )
    worker.add_argument("--worker-id", help="the name this worker records on the jobs it claims")
    # `serve` starts its workers with its pid: a worker outliving its `serve` stops itself.
    worker.add_argument("--parent-pid", type=int, help=argparse.SUPPRESS)
    worker.set_defaults(run=run_worker, service_command=True)

    migrate = commands.add_parser(
        "migrate",
        help="upgrade the database schema (Alembic)",
        description="Upgrade the database at BACKPROP_DATABASE_URL to the latest revision, "
        "or to --revision.",
    )
    migrate.add_argument(
        "--revision", default="head", help="the revision to upgrade to (default: head)"
    )
    migrate.add_argument(
        "--sql",
        action="store_true",
        help="print the SQL of the upgrade instead of running it (offline mode)",
    )
    migrate.set_defaults(run=run_migrate, service_command=True)

    from service.cli_client import add_client_commands

    add_client_commands(commands)
    return parser


def non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def apply_overrides(args: argparse.Namespace) -> None:
    """Options become BACKPROP_* variables, so the app factory and child processes see them."""
    from service.core.settings import get_settings

    for name in ("host", "port", "workers"):
        value = getattr(args, name, None)
        if value is not None:
            os.environ[f"BACKPROP_{name.upper()}"] = str(value)
    get_settings.cache_clear()


def shown_url(database_url: str) -> str:
    """The database URL without its password, for logs."""
    from service.core.database import shown_url

    return shown_url(database_url)


def database_opens(database_url: str) -> bool:
    """Open the database once. If it cannot be (no such database, a SQLite file in a folder
    that does not exist, no server), log one line naming it (password hidden) and the
    server's reason, and return False: the command then exits 1, as on a busy port."""
    from service.core.database import DatabaseUnavailable, check_database

    try:
        check_database(database_url)
    except DatabaseUnavailable as error:
        log.error("%s", error)
        return False
    return True


# ---------------------------------------------------------------------------------------
# migrate


def run_migrate(args: argparse.Namespace) -> int:
    """`backprop migrate`: Alembic upgrade to --revision (head)."""
    from alembic import command

    from service.core.migrate import alembic_config, upgrade
    from service.core.settings import get_settings

    url = get_settings().database_url
    if args.sql:
        command.upgrade(alembic_config(url), args.revision, sql=True)
        return 0
    if not database_opens(url):
        return 1
    log.info("migrating %s to %s", shown_url(url), args.revision)
    upgrade(url, args.revision)
    return 0


# ---------------------------------------------------------------------------------------
# worker


def run_worker(args: argparse.Namespace) -> int:
    """`backprop worker`: one worker in this process until SIGTERM / SIGINT; exits 1 at
    once if the database cannot be opened.

    run_worker handles the signals itself: the first one finishes the current epoch,
    checkpoints and releases the job; a second one kills at once.
    """
    from service.core.settings import get_settings
    from service.queue.worker import run_worker as work

    settings = get_settings()
    if not database_opens(settings.database_url):
        return 1  # at start only: once running, an outage is waited out (service.queue.worker)
    stop = threading.Event()
    if args.parent_pid is not None:
        watch_parent(args.parent_pid, stop)
    work(settings, worker_id=args.worker_id, stop_event=stop)
    return 0


def watch_parent(parent_pid: int, stop: threading.Event) -> None:
    """Set ``stop`` once ``parent_pid`` is no longer our parent (it died, even by SIGKILL)."""

    def watch() -> None:
        while not stop.wait(1.0):
            if os.getppid() != parent_pid:
                log.warning("worker: serve (pid %d) is gone; stopping", parent_pid)
                stop.set()

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


# ---------------------------------------------------------------------------------------
# serve


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


def run_serve(args: argparse.Namespace) -> int:
    """`backprop serve`: migrate, start the workers and the API; stop all on SIGINT/SIGTERM.

    Exits 2 at once, before migrating or binding anything, when the API would be open
    to the network (a non-loopback --host without BACKPROP_API_KEYS) or a key is unusable;
    exits 1, before starting anything, when the database cannot be opened.
    """
    from service.core.auth import AccessSettingsError, KeyRing, check_binding
    from service.core.settings import get_settings

    settings = get_settings()
    try:
        check_binding(settings.host, KeyRing.from_settings(settings))
    except AccessSettingsError as error:
        print(f"backprop serve: {error}", file=sys.stderr)
        return 2
    with metrics_directory():
        return run_api_and_workers(args)


def run_api_and_workers(args: argparse.Namespace) -> int:
    """run_serve's work, once the metrics directory is set."""
    import uvicorn

    from service.core.logs import uvicorn_log_config
    from service.core.migrate import upgrade
    from service.core.settings import get_settings

    settings = get_settings()
    if not database_opens(settings.database_url):
        return 1
    if not args.no_migrate:
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

    pool = WorkerPool(settings.workers, args.grace_seconds)
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


if __name__ == "__main__":
    sys.exit(main())
