"""The `backprop` command (Typer): `serve` (API + local workers), `worker`, `migrate`,
and the client commands of the other modules of service.cli.

Settings come from BACKPROP_* environment variables (service.core.settings); an option
given on the command line overrides its variable, for this process and the processes
it starts. `serve`, `worker` and `migrate` log as BACKPROP_LOG_FORMAT says (JSON lines
by default, service.core.logs); the client commands log plain text, for a person.
"""

import logging
import os
import sys
import threading
from collections.abc import Sequence
from typing import Annotated

import typer

from service.cli import datasets, export, jobs, keys, models, registry, scoring, sweeps
from service.cli.common import RICH_MARKUP_MODE, BackpropCommand, BackpropGroup, UsageProblem
from service.cli.database import database_opens, shown_url

log = logging.getLogger("backprop")

SERVICE_COMMANDS = ("serve", "worker", "migrate")

app = typer.Typer(
    name="backprop",
    cls=BackpropGroup,
    help="Train and serve logistic regressions and two-layer networks.",
    epilog="Settings come from BACKPROP_* environment variables (see the README's "
    "Configuration table); options override them. `backprop COMMAND --help` shows a "
    "command's options and examples.",
    rich_markup_mode=RICH_MARKUP_MODE,
    context_settings={"help_option_names": ["-h", "--help"]},
    # A bug's traceback must never print local variables: they hold the API key.
    pretty_exceptions_show_locals=False,
)


@app.callback(invoke_without_command=True)
def root(ctx: typer.Context) -> None:
    """Train and serve logistic regressions and two-layer networks."""
    if ctx.invoked_subcommand is None:
        raise UsageProblem("the following arguments are required: COMMAND", ctx=ctx)
    from service.core.logs import configure_logging
    from service.core.settings import get_settings

    # A client command's few log lines are for the person at the terminal: plain text.
    service_command = ctx.invoked_subcommand in SERVICE_COMMANDS
    configure_logging(get_settings(), log_format=None if service_command else "text")
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)  # one per plugin


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `backprop` console script; returns the exit code."""
    try:
        app(args=list(argv) if argv is not None else None, prog_name="backprop")
    except SystemExit as done:  # Typer ends every run with one: its code is ours
        if done.code is None or isinstance(done.code, int):
            return done.code or 0
        print(done.code, file=sys.stderr)
        return 1
    return 0


# -- serve -----------------------------------------------------------------------------------


def non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise UsageProblem(f"argument --workers: must be 0 or more, got {value}")
    return value


@app.command(
    cls=BackpropCommand,
    epilog="Examples:\n\n\b\n  backprop serve\n  backprop serve --port 8080 --workers 2\n"
    "  BACKPROP_DATABASE_URL=postgresql+psycopg://... backprop serve --workers 0",
)
def serve(
    host: Annotated[
        str | None,
        typer.Option(
            "--host", metavar="HOST", help="interface the API listens on (BACKPROP_HOST, 127.0.0.1)"
        ),
    ] = None,
    port: Annotated[
        int | None,
        typer.Option(
            "--port", metavar="PORT", help="port the API listens on (BACKPROP_PORT, 8000)"
        ),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers",
            metavar="N",
            parser=non_negative_int,
            help="local worker processes; 0 runs the API only (BACKPROP_WORKERS, one per core)",
        ),
    ] = None,
    no_migrate: Annotated[
        bool,
        typer.Option(
            "--no-migrate",
            help="do not upgrade the database first (e.g. when a separate `migrate` step does it)",
        ),
    ] = False,
    grace_seconds: Annotated[
        float,
        typer.Option(metavar="S", help="how long stopping workers may take before they are killed"),
    ] = 30.0,
) -> None:
    """Migrate the database, then run the API and local workers.

    Upgrades the database to the latest revision, starts N worker processes and the HTTP
    API. Ctrl-C or SIGTERM stops everything; running jobs are checkpointed and released
    for the next start.

    Exits 2 at once, before migrating or binding anything, when the API would be open to
    the network (a non-loopback --host with no key in BACKPROP_API_KEYS or the database)
    or a key is unusable;
    exits 1, before starting anything, when the database cannot be opened.
    """
    apply_overrides(host=host, port=port, workers=workers)
    from service.cli.supervisor import metrics_directory, run_api_and_workers
    from service.core.api_keys import database_keys
    from service.core.auth import AccessSettingsError, KeyRing, check_binding
    from service.core.database import Database
    from service.core.settings import get_settings

    settings = get_settings()
    try:
        ring, in_database = KeyRing.from_settings(settings), False
        if not ring.configured:  # keys made with `backprop keys create` close it too
            database = Database(settings.database_url)
            in_database = database_keys(database)
            database.dispose()
        check_binding(settings.host, ring, in_database)
    except AccessSettingsError as error:
        print(f"backprop serve: {error}", file=sys.stderr)
        raise typer.Exit(2) from None
    with metrics_directory():
        code = run_api_and_workers(no_migrate=no_migrate, grace_seconds=grace_seconds)
    raise typer.Exit(code)


def apply_overrides(**options: object) -> None:
    """Options become BACKPROP_* variables, so the app factory and child processes see them."""
    from service.core.settings import get_settings

    for name, value in options.items():
        if value is not None:
            os.environ[f"BACKPROP_{name.upper()}"] = str(value)
    get_settings.cache_clear()


# -- worker ----------------------------------------------------------------------------------


@app.command(
    cls=BackpropCommand,
    epilog="Examples:\n\n\b\n  backprop worker\n  backprop worker --worker-id gpu-box-1",
)
def worker(
    worker_id: Annotated[
        str | None,
        typer.Option(
            "--worker-id", metavar="NAME", help="the name this worker records on the jobs it claims"
        ),
    ] = None,
    # `serve` starts its workers with its pid: a worker outliving its `serve` stops itself.
    parent_pid: Annotated[int | None, typer.Option("--parent-pid", hidden=True)] = None,
) -> None:
    """Run one worker process: claim queued jobs and train them.

    Claims queued jobs from the database (BACKPROP_DATABASE_URL) and trains them until
    stopped. Run as many as you like, on any machine that reaches the database. SIGTERM
    or Ctrl-C checkpoints the running job, releases it and exits; the first signal
    finishes the current epoch, a second one kills at once. Exits 1 at once if the
    database cannot be opened.
    """
    from service.core.settings import get_settings
    from service.queue.worker import run_worker as work

    settings = get_settings()
    if not database_opens(settings.database_url):
        raise typer.Exit(1)  # at start only: once running, an outage is waited out
    stop = threading.Event()
    if parent_pid is not None:
        watch_parent(parent_pid, stop)
    work(settings, worker_id=worker_id, stop_event=stop)


def watch_parent(parent_pid: int, stop: threading.Event) -> None:
    """Set ``stop`` once ``parent_pid`` is no longer our parent (it died, even by SIGKILL)."""

    def watch() -> None:
        while not stop.wait(1.0):
            if os.getppid() != parent_pid:
                log.warning("worker: serve (pid %d) is gone; stopping", parent_pid)
                stop.set()

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


# -- migrate ---------------------------------------------------------------------------------


@app.command(
    cls=BackpropCommand,
    epilog="Examples:\n\n\b\n  backprop migrate\n  backprop migrate --sql > schema.sql",
)
def migrate(
    revision: Annotated[
        str,
        typer.Option(
            "--revision", help="the revision to upgrade to (default: head)", show_default=False
        ),
    ] = "head",
    sql: Annotated[
        bool,
        typer.Option("--sql", help="print the SQL of the upgrade instead of running it (offline)"),
    ] = False,
) -> None:
    """Upgrade the database schema (Alembic).

    Upgrades the database at BACKPROP_DATABASE_URL to the latest revision, or to
    --revision.
    """
    from alembic import command

    from service.core.migrate import alembic_config, upgrade
    from service.core.settings import get_settings

    url = get_settings().database_url
    if sql:
        command.upgrade(alembic_config(url), revision, sql=True)
        return
    if not database_opens(url):
        raise typer.Exit(1)
    log.info("migrating %s to %s", shown_url(url), revision)
    upgrade(url, revision)


# -- the client commands, in the order `backprop --help` lists them -------------------------

datasets.register(app)  # upload
jobs.register(app)  # train, jobs, status, cancel, history
models.register(app)  # predict
export.register(app)  # export
scoring.register(app)  # evaluate, batch-predict
app.add_typer(datasets.datasets_app)
app.add_typer(models.models_app)
app.add_typer(sweeps.sweeps_app)
app.add_typer(registry.registry_app)
app.add_typer(keys.keys_app)
