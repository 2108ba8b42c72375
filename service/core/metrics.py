"""Prometheus metrics: what the API and the workers count, and the jobs table at scrape time.

Two kinds of figures:

* facts of the database, computed when /metrics is scraped by one GROUP BY on the jobs
  table (``JobsCollector``): jobs by state, the queue's depth and its oldest job's age.
  They are right however many API and worker processes, on however many machines,
  share the database;
* events of a process, counted where they happen: claims and lease expiries
  (workers), the duration of each job attempt and of each epoch (workers), and the
  duration of each HTTP request by method, route template and status (the API,
  ``RequestDurationMiddleware``).

Multiprocess mode. prometheus_client keeps each process's counters in memory unless
``PROMETHEUS_MULTIPROC_DIR`` names a directory when it is first imported: then every
process writes its figures to files there (one per process and metric type) and a
scrape sums the files of all of them. `backprop serve` creates a fresh directory and
passes it to its API and to every worker it starts (service.cli), so its /metrics
counts the workers' claims and epochs too. Without the variable (an app built in
process by the tests, a lone `backprop worker`) each process has its own registry, and
/metrics shows the API process's figures and the database's.
"""

import logging
import os
import time
from collections.abc import Iterator, Sequence
from datetime import datetime

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.core.database import Database
from service.core.states import JOB_STATES, QUEUED
from service.core.tables import Job, utcnow
from service.core.tenancy import project_scope

log = logging.getLogger("service.core.metrics")

# No *_created series beside each counter and histogram: Prometheus does not need them
# (multiprocess mode has none either), and they double the lines of a scrape.
disable_created_metrics()

MULTIPROC_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"

# Epochs last from tens of microseconds (logistic regression on a few rows) to minutes
# (a wide network on millions of rows, full batch): roughly x2.5 steps over that range.
EPOCH_BUCKETS = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
    0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
)  # fmt: skip
# A job attempt: from a fraction of a second to a day.
JOB_BUCKETS = (
    0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0,
    1800.0, 3600.0, 7200.0, 14400.0, 43200.0, 86400.0,
)  # fmt: skip
# A request: a prediction or a job's page takes a millisecond or less, an upload or an
# events stream may take minutes.
HTTP_BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
)  # fmt: skip

JOB_CLAIMS = Counter("backprop_job_claims_total", "Jobs claimed from the queue by workers")
LEASE_EXPIRIES = Counter(
    "backprop_lease_expiries_total",
    "Jobs whose worker went silent past its lease, settled by a worker's sweeper "
    "(re-queued, failed as worker_lost, or cancelled)",
)
JOB_DURATION = Histogram(
    "backprop_job_duration_seconds",
    "Wall time of a job attempt, from its claim to its end, by outcome: succeeded, failed, "
    "cancelled, released (given back on SIGTERM) or lost (ended without recording its end: "
    "lease lost, or the database unreachable)",
    ["outcome"],
    buckets=JOB_BUCKETS,
)
EPOCH_DURATION = Histogram(
    "backprop_epoch_duration_seconds",
    "Wall time of one training epoch, as the engine measured it",
    buckets=EPOCH_BUCKETS,
)
HTTP_DURATION = Histogram(
    "backprop_http_request_duration_seconds",
    "Time from a request's arrival to the end of its response, by method, route template "
    '(e.g. /v1/jobs/{job_id}; "unmatched" when no route matches) and status code',
    ["method", "route", "status"],
    buckets=HTTP_BUCKETS,
)

# Outcomes of a job attempt (the outcome label of JOB_DURATION), besides the job states
# succeeded, failed and cancelled: given back to the queue, or ended without a word.
RELEASED, LOST = "released", "lost"

UNMATCHED = "unmatched"
# Any other method a client makes up is counted as "other": labels must stay few.
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def multiprocess_mode() -> bool:
    return MULTIPROC_DIR_VARIABLE in os.environ


def forget_process(pid: int) -> None:
    """Drop a dead process's live gauges from the metrics directory (its counters and
    histograms stay: a total must not go down when a worker is restarted)."""
    if multiprocess_mode():
        mark_process_dead(pid)


# -- the scrape -----------------------------------------------------------------------------


class JobsCollector(Collector):
    """The jobs table's figures, read at scrape time: one GROUP BY status."""

    def __init__(self, database: Database):
        self.database = database

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "backprop_database_up",
            "1 when this scrape read the jobs table; 0 when it could not (the job gauges "
            "are then absent)",
        )
        try:
            counts, oldest = self._read()
        except SQLAlchemyError as error:
            log.warning("metrics: could not read the jobs table: %s", str(error).splitlines()[0])
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        by_state = GaugeMetricFamily(
            "backprop_jobs", "Jobs in the database by state", labels=["state"]
        )
        for state in JOB_STATES:
            by_state.add_metric([state], counts.get(state, 0))
        yield by_state
        yield GaugeMetricFamily(
            "backprop_queue_depth", "Queued jobs waiting for a worker", value=counts.get(QUEUED, 0)
        )
        age = max((utcnow() - oldest).total_seconds(), 0.0) if oldest is not None else 0.0
        yield GaugeMetricFamily(
            "backprop_queue_oldest_job_age_seconds",
            "Age of the oldest queued job (0 when the queue is empty)",
            value=age,
        )

    def _read(self) -> tuple[dict[str, int], datetime | None]:
        """({state: count}, created_at of the oldest queued job or None)."""
        statement = select(Job.status, func.count(), func.min(Job.created_at)).group_by(Job.status)
        # The whole queue, every project's: the scrape is the operator's view (an admin's).
        with project_scope(None), self.database.reads() as session:
            rows = session.execute(statement).all()
        counts = {status: count for status, count, _ in rows}
        oldest = next((first for status, _, first in rows if status == QUEUED), None)
        return counts, oldest


class ProcessRegistry(Collector):
    """The default registry of this process, as one collector of a scrape's registry."""

    def collect(self) -> Iterator[Metric]:
        return REGISTRY.collect()


def exposition(database: Database, accept: str | None) -> tuple[bytes, str]:
    """(body, content type) of a scrape: Prometheus text, or OpenMetrics if ``accept`` asks.

    A registry per scrape: the database's collector is this app's, and in multiprocess
    mode the process figures are read from the directory's files, not from memory.
    """
    registry = CollectorRegistry(auto_describe=False)
    if multiprocess_mode():
        MultiProcessCollector(registry)
    else:
        registry.register(ProcessRegistry())
    registry.register(JobsCollector(database))
    encode, content_type = choose_encoder(accept or "")
    return encode(registry), content_type


# -- HTTP requests ----------------------------------------------------------------------------


class RequestDurationMiddleware:
    """Observes every HTTP request's duration by method, route template and status.

    A pure ASGI middleware (a few microseconds a request: a timer, a wrapped ``send``
    and a cached histogram child), added outermost so that it also times the requests
    that the key and body-limit middlewares refuse. The route label is the template of
    the matched route (/v1/jobs/{job_id}), never the raw path, so the labels stay few.
    The router leaves the route it chose in ``scope["route"]``; a request answered before
    routing (401, 413), one for a mount (/static) and one no route serves (404) are
    matched against the routes here, which costs more but happens on none of the API's
    own successful requests.
    """

    def __init__(self, app: ASGIApp, routes: Sequence[BaseRoute]):
        self.app = app
        # Built when the app's middleware stack is, at its first request: every route is in.
        # Keyed by id(): routes compare by value, and FastAPI puts the route itself in the scope.
        # Imported here: workers use this module's counters and need not load FastAPI.
        from fastapi.routing import iter_route_contexts

        self.routes = list(iter_route_contexts(routes))
        self.templates = {id(route.original_route): route.path_format for route in self.routes}
        self._children: dict[tuple[str, str, int], Histogram] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500  # what ServerErrorMiddleware answers if the app raises before answering

        async def send_noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        # A mount rewrites the scope's paths as it routes: keep the request's own.
        path, root_path = scope["path"], scope.get("root_path", "")
        start = time.perf_counter()
        try:
            await self.app(scope, receive, send_noting_status)
        finally:
            seconds = time.perf_counter() - start
            template = self.templates.get(id(scope.get("route"))) or self.template_of(
                {"type": "http", "method": scope["method"], "path": path, "root_path": root_path}
            )
            self.observe(scope["method"], template, status, seconds)

    def observe(self, method: str, template: str, status: int, seconds: float) -> None:
        method = method if method in HTTP_METHODS else "other"
        key = (method, template, status)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = HTTP_DURATION.labels(method, template, str(status))
        child.observe(seconds)

    def template_of(self, scope: Scope) -> str:
        """The template of the route that serves (or would have served) a request of this
        method and path; one that has the path but not the method (405) if none has both."""
        partial = None
        for route in self.routes:
            match, _ = route.matches(scope)
            if match is Match.FULL:
                return route.path_format or UNMATCHED
            if match is Match.PARTIAL and partial is None:
                partial = route
        return (partial.path_format if partial is not None else None) or UNMATCHED
