"""The real service, on SQLite and on PostgreSQL, against named peers in one run; one table.

    python benchmarks/service.py                   # every section, both databases (~5 min)
    python benchmarks/service.py --quick           # smaller sizes, fewer repeats (~2 min)
    python benchmarks/service.py --only overhead,predict --databases sqlite
    make bench-service BENCH_ARGS="--quick --markdown"

The service runs as it is deployed: ``python -m uvicorn --factory service.app:create_app``
on 127.0.0.1 and ``python -m service.queue.worker`` processes, every setting at its default
but the database: a fresh SQLite file in a temporary folder, then a fresh PostgreSQL
database (created, migrated with `backprop migrate`, dropped at the end). Each section
starts and stops its own processes:

- overhead: POST /v1/jobs -> `succeeded` for a 1-epoch logistic regression on 1,000
  rows, minus engine.fit() of the same specs in this process; 1 idle worker.
- predict: POST /v1/models/{id}/predictions (1 row, 1,000 rows) under a fixed-concurrency
  keep-alive load, against benchmarks/bare_app.py served by uvicorn with the same options.
- alias: 1-row predictions through a registry alias (POST /v1/registered-models/{name}/
  aliases/{alias}/predictions) against by model id, interleaved on the same API; and the
  cost of each one's per-request database lookup, timed in this process.
- upload: POST /v1/datasets of a 200 MB CSV streamed from disk, against
  pyarrow.csv.read_csv of the same file; the API process's peak RSS meanwhile.
- mixed: the same for a 190 MB CSV of 20 number columns and 5 columns of words (3 to
  1,000 levels, 2% empty cells), typed at upload (issue 12).
- scale: a two-layer network on 1,000,000 x 100 float32 rows by one worker: its peak
  RSS against the data, its seconds per epoch against engine.fit() in this process.
- batch: POST /v1/models/{id}/batch-predictions of 1,000,000 x 24 rows -> `succeeded`,
  a logistic regression and a two-layer network, against engine predict_proba on the
  same array in this process; the worker's peak RSS for 1,000,000 rows against 100,000.
- drain: 200 queued short jobs drained by 1, then 2 workers; GET /v1/jobs latency
  meanwhile.
- history: GET /v1/jobs/{id}/history on a 100,000-epoch history (sampled, and a page),
  with GET /healthz as the HTTP floor.

Progress goes to stderr; the table, printed once at the end, to stdout.
"""

# ruff: noqa: E402  (the service package can only be imported once sys.path is fixed, below)

import sys
from pathlib import Path

# `python benchmarks/service.py` puts this folder first on sys.path, where this file's own
# name would shadow the service package: drop the folder, and put the repository first so
# the helper modules import as benchmarks._*.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

import argparse
import json
import platform
import shutil
import signal
import sqlite3
import statistics
import subprocess
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from typing import Any, NoReturn

import fastapi
import numpy as np
import psycopg
import pyarrow
import pyarrow.csv as pa_csv
import pydantic
import sqlalchemy
import uvicorn
from sqlalchemy.engine import make_url

import engine
from benchmarks._api import PARQUET_TYPE, Service, running_bare_app, running_service, timestamp
from benchmarks._data import Table, write_csv, write_mixed_csv, write_parquet_float32
from benchmarks._load import LoadResult, run_load
from benchmarks._machine import cpu_model
from benchmarks._processes import fresh_database, peak_rss_bytes, reset_peak_rss, rss_bytes
from engine.blocks import available_cores
from service.jobs.schemas import JobCreate

DATABASES = ("sqlite", "postgresql")
POSTGRES_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"

# Polling: the events stream (GET /v1/jobs/{id}/events) looks at the database every 0.2 s,
# so it would add up to 200 ms to every job; GET /v1/jobs/{id} every 2 ms adds at most 2 ms
# plus one GET's time (the overhead's server-clock figure leaves even that out).
END_POLL_SECONDS = 0.002
SLOW_POLL_SECONDS = 0.25  # for long jobs, where a quarter second does not matter
SHORT_JOB_TIMEOUT = 120.0
LONG_JOB_TIMEOUT = 1800.0
WORKER_START_TIMEOUT = 60.0
WORKER_START_SECONDS = 3.0  # a new worker's imports are done well within this
ENGINE_WARMUPS = 3  # engine.fit() runs before the timed ones
REQUEST_WARMUPS = 3  # rounds of the history section's requests before the timed ones
WARMUP_ROWS = 4096  # the scale section's warm-up fit: every code path, little time

SMALL_ROWS, SMALL_FEATURES = 1_000, 20
UPLOAD_FEATURES = 24  # + the 0/1 label: 25 columns
MIXED_NUMERIC = 20  # + 5 word columns + the label: 26 columns
SCALE_FEATURES = 100
HISTORY_ROWS, HISTORY_FEATURES = 40, 2
LISTING_LIMIT = 50  # GET /v1/jobs's default page
# A dashboard polls; a client hammering back to back would only measure the 2 cores being
# shared three ways (API, workers, client). 20 ms keeps ~30 listings a second going.
LISTING_PAUSE_SECONDS = 0.02
DONE_CHECK_SECONDS = 0.25  # how often the drain loop asks whether the queue is empty

# The targets.
OVERHEAD_P50_MS, OVERHEAD_P99_MS = 50.0, 200.0
PREDICT_RATIO = 0.7  # service >= 0.7x the bare endpoint's requests/s, 1 row
ALIAS_RATIO = 0.9  # predictions through an alias >= 0.9x by model id, 1 row (issue 13)
ALIAS_ROUNDS = 3  # loads of each, interleaved
UPLOAD_RATIO = 0.6  # service MB/s >= 0.6x pyarrow.csv.read_csv
MIXED_RATIO = 0.5  # the same, for a CSV with columns of words and empty cells (issue 12)
UPLOAD_RSS_RATIO = 2.0  # API peak RSS < 2x the parsed matrix
SCALE_RSS_RATIO = 1.5  # worker peak RSS < 1.5x the dataset
SCALE_EPOCH_RATIO = 1.3  # worker seconds per epoch <= 1.3x the engine's in-process
BATCH_RATIO = 0.7  # batch scoring rows/s >= 0.7x engine predict_proba in process
DRAIN_RATIO = 0.6  # 2 workers' drain <= 0.6x 1 worker's
LISTING_P99_MS = 100.0
HISTORY_MS = 50.0  # p50 and p99


@dataclass(frozen=True)
class Sizes:
    """How much each section does; --quick swaps in QUICK."""

    overhead_jobs: int = 100
    overhead_warmup_jobs: int = 5
    fit_repeats: int = 30  # engine.fit() runs in process, median kept
    connections: int = 8  # load generator processes, one keep-alive connection each
    load_warmup: float = 1.0
    load_seconds: float = 5.0
    upload_rows: int = 1_000_000
    upload_repeats: int = 2  # uploads and read_csv runs, best of each kept
    scale_rows: int = 1_000_000
    scale_epochs: int = 3
    batch_rows: int = 1_000_000  # and a tenth of it: the worker's peak RSS must not follow
    drain_jobs: int = 200
    history_epochs: int = 100_000
    history_requests: int = 30


FULL = Sizes()
QUICK = Sizes(
    overhead_jobs=20,
    overhead_warmup_jobs=2,
    fit_repeats=10,
    load_warmup=0.5,
    load_seconds=2.0,
    upload_rows=100_000,
    upload_repeats=1,
    scale_rows=100_000,
    scale_epochs=2,
    batch_rows=100_000,
    drain_jobs=40,
    history_epochs=10_000,
)


@dataclass(frozen=True)
class Figure:
    """One measured line of one database's run; lines match across databases by `what`."""

    section: str
    what: str
    value: str
    ratio: str = "-"
    target: str = "-"
    result: str = "-"


# -- small helpers ------------------------------------------------------------------------------
def note(message: str) -> None:
    """Progress on stderr, so stdout stays the report."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def status(passed: bool) -> str:
    return "PASS" if passed else "MISS"


def ms(seconds: float) -> str:
    return f"{seconds * 1e3:.1f} ms"


def mb(size: float) -> str:
    return f"{size / 1e6:.0f} MB"


def p50_p99(seconds: Sequence[float]) -> tuple[float, float]:
    return float(np.percentile(seconds, 50)), float(np.percentile(seconds, 99))


def stopwatch(function: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    value = function()
    return time.perf_counter() - started, value


def engine_specs(body: dict[str, Any]) -> tuple[engine.ModelSpec, engine.TrainingSpec]:
    """The engine's specs for a job body, through the API's own schema: the worker's specs."""
    job = JobCreate.model_validate(body)
    return job.model.to_engine(), job.training.to_engine()


def logistic_job(dataset_id: str) -> dict[str, Any]:
    """A short job: a 1-epoch logistic regression, every other field the service's default."""
    return {
        "dataset_id": dataset_id,
        "model": {"type": "logistic_regression"},
        "training": {"epochs": 1},
    }


class DataSets:
    """The run's data files, written on first use into its folder and shared by both databases."""

    def __init__(self, folder: Path, sizes: Sizes):
        self.folder, self.sizes = folder, sizes
        self._tables: dict[str, Table] = {}

    def _table(self, name: str, make: Callable[[Path], Table]) -> Table:
        if name not in self._tables:
            started = time.perf_counter()
            self._tables[name] = make(self.folder / name)
            seconds = time.perf_counter() - started
            note(f"  wrote {name} ({mb(self._tables[name].size_bytes)}) in {seconds:.1f} s")
        return self._tables[name]

    def small(self, seed: int) -> Table:
        """1,000 rows x 20 features, CSV."""
        return self._table(
            f"small-{seed}.csv", lambda path: write_csv(path, SMALL_ROWS, SMALL_FEATURES, seed)
        )

    def upload_csv(self) -> Table:
        """1,000,000 x 24 floats + label, ~200 MB of CSV (not kept in memory)."""
        rows = self.sizes.upload_rows
        return self._table(
            "upload.csv", lambda path: write_csv(path, rows, UPLOAD_FEATURES, 11, keep=False)
        )

    def mixed_csv(self) -> Table:
        """1,000,000 x (20 floats, 5 word columns with empty cells) + label, ~190 MB of CSV."""
        rows = self.sizes.upload_rows
        return self._table("mixed.csv", lambda path: write_mixed_csv(path, rows, MIXED_NUMERIC, 13))

    def scale_parquet(self) -> Table:
        """1,000,000 x 100 float32 + label, Parquet; X kept in memory (400 MB)."""
        rows = self.sizes.scale_rows
        return self._table(
            "scale.parquet",
            lambda path: write_parquet_float32(path, rows, SCALE_FEATURES, 12),
        )

    def batch_csv(self, rows: int) -> Table:
        """rows x 24 floats + label, CSV, kept in memory: what batch scoring scores."""
        return self._table(
            f"batch-{rows}.csv", lambda path: write_csv(path, rows, UPLOAD_FEATURES, 17)
        )

    def tiny(self) -> Table:
        return self._table(
            "tiny.csv", lambda path: write_csv(path, HISTORY_ROWS, HISTORY_FEATURES, 13)
        )

    def json_body(self, name: str, body: dict[str, Any]) -> Path:
        path = self.folder / name
        if not path.exists():
            path.write_text(json.dumps(body))
        return path


@dataclass
class Run:
    sizes: Sizes
    data: DataSets
    logs: Path  # the service processes' output, for the error messages
    work: Path  # scratch files (load generator outputs)
    profiles: Path | None = None  # --profile: py-spy's samples of the servers under load

    @contextmanager
    def profiled(self, pid: int, name: str) -> Iterator[None]:
        """With --profile: py-spy samples ``pid`` meanwhile (collapsed stacks, name.txt)."""
        if self.profiles is None:
            yield
            return
        spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
        output = self.profiles / f"{name}.txt"
        command = [spy, "record", "--pid", str(pid), "--format", "raw", "--threads"]
        recorder = subprocess.Popen(
            [*command, "--rate", "200", "--output", str(output), "--nonblocking"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            yield
        finally:
            recorder.send_signal(signal.SIGINT)  # py-spy writes its file when interrupted
            recorder.wait(timeout=30)
            note(f"  profile: {output}")


# -- overhead ------------------------------------------------------------------------------------
def section_overhead(run: Run, database_url: str) -> list[Figure]:
    """POST -> succeeded, sequential jobs on 1 idle worker, minus the engine's own fit."""
    sizes, table = run.sizes, run.data.small(seed=1)
    end_to_end: list[float] = []
    server_side: list[float] = []  # finished_at - created_at, the service's own clock
    with running_service(run.logs, database_url, workers=1) as service:
        dataset = service.upload(table.path, name="overhead")
        body = logistic_job(dataset["id"])
        for index in range(sizes.overhead_warmup_jobs + sizes.overhead_jobs):
            started = time.perf_counter()
            job_id = service.create_job(body)
            job = service.wait_for_job(job_id, timeout=SHORT_JOB_TIMEOUT, interval=END_POLL_SECONDS)
            seconds = time.perf_counter() - started
            if index >= sizes.overhead_warmup_jobs:
                end_to_end.append(seconds)
                server_side.append(timestamp(job["finished_at"]) - timestamp(job["created_at"]))
    # The engine runs after the service stopped: nothing else wants the cores.
    model, training = engine_specs(body)
    X, y = table.arrays()
    for _ in range(ENGINE_WARMUPS):
        engine.fit(X, y, model, training)
    fits = [
        stopwatch(lambda: engine.fit(X, y, model, training))[0] for _ in range(sizes.fit_repeats)
    ]
    fit = statistics.median(fits)
    p50, p99 = p50_p99(end_to_end)
    overhead50, overhead99 = p50 - fit, p99 - fit
    server50 = float(np.percentile(server_side, 50)) - fit
    jobs = f"{len(end_to_end)} jobs"
    return [
        Figure(
            "overhead",
            f"engine.fit() in process, same specs (median of {sizes.fit_repeats})",
            ms(fit),
            "peer",
        ),
        Figure(
            "overhead",
            f"POST /v1/jobs -> succeeded seen, p50 / p99 ({jobs})",
            f"{ms(p50)} / {ms(p99)}",
            f"{p50 / fit:.1f}x fit",
        ),
        Figure(
            "overhead",
            "job overhead p50 (end to end - fit)",
            ms(overhead50),
            target=f"< {OVERHEAD_P50_MS:g} ms",
            result=status(overhead50 * 1e3 < OVERHEAD_P50_MS),
        ),
        Figure(
            "overhead",
            "job overhead p99 (end to end - fit)",
            ms(overhead99),
            target=f"< {OVERHEAD_P99_MS:g} ms",
            result=status(overhead99 * 1e3 < OVERHEAD_P99_MS),
        ),
        Figure("overhead", "created_at -> finished_at - fit, p50 (server clock)", ms(server50)),
    ]


# -- predict -------------------------------------------------------------------------------------
def predictions_answered(base_url: str, path: str, body_file: Path, rows: int) -> None:
    """One request outside the load: a 200 with one prediction per row, or the section fails."""
    import httpx

    response = httpx.post(
        base_url + path,
        content=body_file.read_bytes(),
        headers={"Content-Type": "application/json"},
        timeout=60.0,
    )
    if response.status_code != 200 or len(response.json()["predictions"]) != rows:
        raise RuntimeError(f"POST {path}: {response.status_code} {response.text[:300]}")


def load_text(result: LoadResult) -> str:
    failed = f", {result.failed} not 200" if result.failed else ""
    return f"{result.requests_per_second:.0f} req/s ({ms(result.p50)} / {ms(result.p99)}{failed})"


def section_predict(run: Run, database_url: str) -> list[Figure]:
    """Requests/s of predictions under fixed concurrency, the service against the bare app."""
    sizes, table = run.sizes, run.data.small(seed=2)
    X, _ = table.arrays()
    bodies = {
        1: run.data.json_body("predict-1.json", {"rows": X[:1].tolist()}),
        1_000: run.data.json_body("predict-1000.json", {"rows": X[:1_000].tolist()}),
    }
    figures = []

    def load(who: str, port: int, pid: int, path: str, body: Path) -> LoadResult:
        with run.profiled(pid, f"{body.stem}-{who}-{Path(run.logs).name}-{port}"):
            return run_load(
                port=port,
                server_pid=pid,
                path=path,
                body_file=body,
                out_dir=run.work,
                connections=sizes.connections,
                warmup=sizes.load_warmup,
                duration=sizes.load_seconds,
            )

    with (
        running_service(run.logs, database_url, workers=1) as service,
        running_bare_app(run.logs) as (bare_pid, bare_port),
    ):
        dataset = service.upload(table.path, name="predict")
        job_id = service.create_job(
            {
                "dataset_id": dataset["id"],
                "model": {"type": "two_layer_network", "hidden_units": 32, "activation": "tanh"},
                "training": {"epochs": 100},
            }
        )
        model_id = service.wait_for_job(job_id, timeout=SHORT_JOB_TIMEOUT, interval=0.05)[
            "model_id"
        ]
        service.stop_workers()  # the API alone, as the peer is alone
        path = f"/v1/models/{model_id}/predictions"
        bare_url = f"http://127.0.0.1:{bare_port}"
        for rows, body in bodies.items():
            predictions_answered(service.base_url, path, body, rows)
            predictions_answered(bare_url, path, body, rows)
            label = f"{rows:,} row{'s' if rows > 1 else ''}"
            note(f"  {label}: bare app")
            peer = load("bare", bare_port, bare_pid, path, body)
            note(f"  {label}: service")
            measured = load("service", service.port, service.api.pid, path, body)
            ratio = measured.requests_per_second / peer.requests_per_second
            clean = peer.failed == 0 and measured.failed == 0
            target, result = "-", "-"
            if rows == 1:
                target = f">= {PREDICT_RATIO}x bare"
                result = status(clean and ratio >= PREDICT_RATIO)
            figures += [
                Figure(
                    "predict",
                    f"bare FastAPI peer, {label}: req/s (p50 / p99)",
                    load_text(peer),
                    "peer",
                ),
                Figure(
                    "predict",
                    f"POST /v1/models/{{id}}/predictions, {label}: req/s (p50 / p99)",
                    load_text(measured),
                    f"{ratio:.2f}x bare",
                    target,
                    result,
                ),
                Figure(
                    "predict",
                    f"response bytes, {label}: service / bare",
                    f"{measured.response_bytes:,} / {peer.response_bytes:,}",
                ),
                Figure(
                    "predict",
                    f"CPU cores busy, {label}: server + load generator, service / bare",
                    f"{measured.server_cores:.2f} + {measured.generator_cores:.2f} / "
                    f"{peer.server_cores:.2f} + {peer.generator_cores:.2f}",
                ),
            ]
    return figures


# -- alias ---------------------------------------------------------------------------------------
def lookup_costs(database_url: str, model_id: str) -> tuple[float, float]:
    """Seconds per read, in this process against the run's database, of the one read each
    kind of prediction makes, as the API makes it on its event loop (service.core.point_reads):
    by id, is the cached model still stored?; by alias, where does it point?"""
    import asyncio

    from service.core.database import Database
    from service.models.service import STORED_SQL
    from service.registry.service import RESOLVE_SQL

    database = Database(database_url)
    reads = database.point_reads

    async def timed(sql: str, params: tuple[Any, ...], calls: int) -> float:
        await reads.one_async(sql, params)  # connect first
        timings = []
        for _ in range(5):
            started = time.perf_counter()
            for _ in range(calls):
                if await reads.one_async(sql, params) is None:
                    raise RuntimeError(f"{sql} found nothing")
            timings.append((time.perf_counter() - started) / calls)
        return statistics.median(timings)

    async def both() -> tuple[float, float]:
        return (
            await timed(STORED_SQL, (model_id,), 2_000),
            await timed(RESOLVE_SQL, ("bench", "live"), 2_000),
        )

    try:
        return asyncio.run(both())
    finally:
        database.dispose()


def section_alias(run: Run, database_url: str) -> list[Figure]:
    """One-row predictions through a registry alias against by model id, same server, same
    run: the alias is resolved from the database on every request (no cache to go stale)."""
    import httpx

    sizes, table = run.sizes, run.data.small(seed=2)
    X, _ = table.arrays()
    body = run.data.json_body("predict-1.json", {"rows": X[:1].tolist()})
    with running_service(run.logs, database_url, workers=1) as service:
        dataset = service.upload(table.path, name="alias")
        job_id = service.create_job(
            {
                "dataset_id": dataset["id"],
                "model": {"type": "two_layer_network", "hidden_units": 32, "activation": "tanh"},
                "training": {"epochs": 100},
            }
        )
        job = service.wait_for_job(job_id, timeout=SHORT_JOB_TIMEOUT, interval=0.05)
        model_id = job["model_id"]
        service.stop_workers()
        registry = f"{service.base_url}/v1/registered-models"
        for method, path, payload in (
            ("POST", "", {"name": "bench"}),
            ("POST", "/bench/versions", {"model_id": model_id}),
            ("PUT", "/bench/aliases/live", {"version": 1}),
        ):
            response = httpx.request(method, registry + path, json=payload, timeout=30)
            if response.status_code not in (200, 201):
                raise RuntimeError(f"{method} {path}: {response.status_code} {response.text}")
        paths = {
            "by id": f"/v1/models/{model_id}/predictions",
            "by alias": "/v1/registered-models/bench/aliases/live/predictions",
        }
        results: dict[str, list[LoadResult]] = {name: [] for name in paths}
        for path in paths.values():
            predictions_answered(service.base_url, path, body, 1)
        for round_ in range(ALIAS_ROUNDS):  # interleaved, so drift hits both alike
            for name, path in paths.items():
                note(f"  1 row {name}, round {round_ + 1}")
                results[name].append(
                    run_load(
                        port=service.port,
                        server_pid=service.api.pid,
                        path=path,
                        body_file=body,
                        out_dir=run.work,
                        connections=sizes.connections,
                        warmup=sizes.load_warmup,
                        duration=sizes.load_seconds,
                    )
                )
        check_seconds, resolve_seconds = lookup_costs(database_url, model_id)
    rates = {
        name: statistics.mean(r.requests_per_second for r in runs) for name, runs in results.items()
    }
    ratio = rates["by alias"] / rates["by id"]
    clean = all(r.failed == 0 for runs in results.values() for r in runs)

    def shown(name: str) -> str:
        runs = results[name]
        each = ", ".join(f"{r.requests_per_second:.0f}" for r in runs)
        return f"{rates[name]:.0f} req/s (rounds {each}; p50 {ms(runs[-1].p50)})"

    return [
        Figure("alias", "POST /v1/models/{id}/predictions, 1 row", shown("by id"), "peer"),
        Figure(
            "alias",
            "POST /v1/registered-models/{name}/aliases/{alias}/predictions, 1 row",
            shown("by alias"),
            f"{ratio:.2f}x by id",
            f">= {ALIAS_RATIO}x by id",
            status(clean and ratio >= ALIAS_RATIO),
        ),
        Figure(
            "alias",
            "per request, by id: is the cached model still stored? (one read)",
            f"{check_seconds * 1e6:.0f} us",
        ),
        Figure(
            "alias",
            "per request, by alias: where does the alias point? (one read, no cache)",
            f"{resolve_seconds * 1e6:.0f} us",
        ),
    ]


# -- upload --------------------------------------------------------------------------------------
def section_upload(run: Run, database_url: str) -> list[Figure]:
    """MB/s of POST /v1/datasets against pyarrow reading the same file; the API's peak RSS."""
    return upload_figures(run, database_url, run.data.upload_csv(), "upload", UPLOAD_RATIO)


def section_mixed(run: Run, database_url: str) -> list[Figure]:
    """The same for a CSV of numbers and words with empty cells, typed at upload."""
    return upload_figures(run, database_url, run.data.mixed_csv(), "mixed", MIXED_RATIO)


def upload_figures(
    run: Run, database_url: str, table: Table, section: str, target: float
) -> list[Figure]:
    """MB/s of POST /v1/datasets of ``table`` against pyarrow.csv.read_csv of the same file
    (best of each), and the API's peak RSS against the stored matrix (m x n x 8 bytes)."""
    sizes = run.sizes
    matrix_bytes = table.rows * table.features * 8  # the stored matrix, float64
    peer_runs = []
    for _ in range(sizes.upload_repeats):
        seconds, parsed = stopwatch(lambda: pa_csv.read_csv(table.path))
        if parsed.num_rows != table.rows:
            raise RuntimeError(f"read_csv read {parsed.num_rows} rows of {table.rows}")
        del parsed
        peer_runs.append(seconds)
    upload_runs, before, peaks, after = [], [], [], []  # RSS of the API, per upload
    with running_service(run.logs, database_url, workers=0) as service:
        pid = service.api.pid
        for attempt in range(sizes.upload_repeats):
            before.append(rss_bytes(pid))
            reset_peak_rss(pid)
            seconds, dataset = stopwatch(
                lambda attempt=attempt: service.upload(table.path, name=f"upload-{attempt}")
            )
            peaks.append(peak_rss_bytes(pid))
            after.append(rss_bytes(pid))
            if dataset["rows"] != table.rows or len(dataset["features"]) != table.features:
                raise RuntimeError(f"the upload stored {dataset['rows']} rows: {dataset}")
            upload_runs.append(seconds)
            if attempt + 1 < sizes.upload_repeats:  # the same bytes again would be deduplicated
                service.delete_dataset(dataset["id"])
    peer, upload = min(peer_runs), min(upload_runs)
    size = table.size_bytes
    ratio = (size / upload) / (size / peer)
    best = f"best of {sizes.upload_repeats}"
    shape = f"{table.rows:,} x {table.features + 1}"
    # The target is judged on the first upload, into a fresh API process; later uploads
    # start from whatever the first one left resident, shown beside it.
    figures = [
        Figure(
            section,
            f"pyarrow.csv.read_csv, {mb(size)} CSV ({shape}), {best}",
            f"{peer:.2f} s, {size / peer / 1e6:.0f} MB/s",
            "peer",
        ),
        Figure(
            section,
            f"POST /v1/datasets, streamed from disk, {best}",
            f"{upload:.2f} s, {size / upload / 1e6:.0f} MB/s",
            f"{ratio:.2f}x pyarrow",
            f">= {target}x pyarrow",
            status(ratio >= target),
        ),
        Figure(
            section,
            "API RSS before / after the first upload (VmRSS)",
            f"{mb(before[0])} / {mb(after[0])}",
        ),
        Figure(
            section,
            f"API peak RSS during the first upload (VmHWM) vs matrix {mb(matrix_bytes)}",
            mb(peaks[0]),
            f"{peaks[0] / matrix_bytes:.2f}x matrix",
            f"< {UPLOAD_RSS_RATIO:g}x matrix",
            status(peaks[0] < UPLOAD_RSS_RATIO * matrix_bytes),
        ),
    ]
    if len(peaks) > 1:
        figures.append(
            Figure(
                section,
                "API peak RSS during the next upload (after deleting the first)",
                mb(max(peaks[1:])),
                f"{max(peaks[1:]) / matrix_bytes:.2f}x matrix",
            )
        )
    return figures


# -- scale ---------------------------------------------------------------------------------------
def scale_job(dataset_id: str, epochs: int) -> dict[str, Any]:
    return {
        "dataset_id": dataset_id,
        "model": {"type": "two_layer_network", "hidden_units": 32, "activation": "tanh"},
        "training": {
            "optimizer": "adam",
            "batch_size": 1024,
            "dtype": "float32",
            "epochs": epochs,
            "validation_fraction": 0.1,
            "early_stopping": None,  # every epoch runs, in both places
            "tolerance": 0.0,
        },
    }


def epochs_text(seconds: Sequence[float]) -> str:
    each = ", ".join(f"{value:.2f}" for value in seconds)
    return f"{statistics.median(seconds):.2f} s/epoch ({each})"


def section_scale(run: Run, database_url: str) -> list[Figure]:
    """One worker trains a network on 1M x 100 float32: its peak RSS and its epoch time."""
    sizes, table = run.sizes, run.data.scale_parquet()
    X, y = table.arrays()
    data_bytes = X.nbytes
    with running_service(run.logs, database_url, workers=0) as service:
        upload_seconds, dataset = stopwatch(
            lambda: service.upload(table.path, name="scale", media_type=PARQUET_TYPE)
        )
        [worker] = service.start_workers(1)
        time.sleep(WORKER_START_SECONDS)  # the peak below is the job's, not the imports'
        service.check_alive()
        idle = rss_bytes(worker.pid)
        reset_peak_rss(worker.pid)
        body = scale_job(dataset["id"], sizes.scale_epochs)
        job_id = service.create_job(body)
        job = service.wait_for_job(job_id, timeout=LONG_JOB_TIMEOUT, interval=SLOW_POLL_SECONDS)
        peak = peak_rss_bytes(worker.pid)
        worker_epochs = [point["seconds"] for point in service.history(job_id)]
    if len(worker_epochs) != sizes.scale_epochs:
        raise RuntimeError(f"job {job['id']} ran {len(worker_epochs)} epochs: {job}")
    note("  engine.fit() in process")
    model, training = engine_specs(body)
    # A 1-epoch fit on a slice first, as the worker had its first job's imports and threads.
    engine.fit(X[:WARMUP_ROWS], y[:WARMUP_ROWS], model, replace(training, epochs=1))
    result = engine.fit(X, y, model, training)
    engine_epochs = [metrics.seconds for metrics in result.history]
    ratio = statistics.median(worker_epochs) / statistics.median(engine_epochs)
    shape = f"{table.rows:,} x {SCALE_FEATURES} float32"
    return [
        Figure(
            "scale",
            f"POST /v1/datasets, Parquet {mb(table.size_bytes)} ({shape})",
            f"{upload_seconds:.2f} s, {table.size_bytes / upload_seconds / 1e6:.0f} MB/s",
        ),
        Figure("scale", "worker RSS before the job (VmRSS)", mb(idle)),
        Figure(
            "scale",
            f"worker peak RSS while training (VmHWM) vs data {mb(data_bytes)}",
            mb(peak),
            f"{peak / data_bytes:.2f}x data",
            f"< {SCALE_RSS_RATIO:g}x data",
            status(peak < SCALE_RSS_RATIO * data_bytes),
        ),
        Figure(
            "scale",
            "engine.fit() in process: epoch seconds, median (each)",
            epochs_text(engine_epochs),
            "peer",
        ),
        Figure(
            "scale",
            "worker: epoch seconds from the job's history, median (each)",
            epochs_text(worker_epochs),
            f"{ratio:.2f}x engine",
            f"<= {SCALE_EPOCH_RATIO:g}x engine",
            status(ratio <= SCALE_EPOCH_RATIO),
        ),
    ]


# -- drain ---------------------------------------------------------------------------------------
def watch_listing(service: Service, dataset_id: str, timeout: float) -> list[tuple[float, float]]:
    """GET /v1/jobs?limit=50 in a loop until no job of the dataset is left to run.

    Returns (wall-clock send time, latency) pairs, so the drain's window can be cut out.
    """
    timed: list[tuple[float, float]] = []
    deadline = time.monotonic() + timeout
    last_check = time.monotonic()
    pending = {"dataset_id": dataset_id, "status": "queued,running,cancelling", "limit": 1}
    while True:
        sent, started = time.time(), time.perf_counter()
        response = service.client.get("/v1/jobs", params={"limit": LISTING_LIMIT})
        timed.append((sent, time.perf_counter() - started))
        if response.status_code != 200:
            raise RuntimeError(f"GET /v1/jobs: {response.status_code} {response.text[:300]}")
        if time.monotonic() - last_check >= DONE_CHECK_SECONDS:
            last_check = time.monotonic()
            left = service.client.get("/v1/jobs", params=pending).json()["data"]
            if not left:
                return timed
            service.check_alive()
            if last_check > deadline:
                raise TimeoutError(f"jobs still queued or running after {timeout:.0f} s")
        time.sleep(LISTING_PAUSE_SECONDS)


def drain_round(run: Run, service: Service, workers: int) -> tuple[float, list[float]]:
    """Start ``workers`` and let them go idle, then queue every job at once, as one sweep
    (one transaction: no worker sees a partial queue), and wait for the queue to empty.

    Starting the workers first keeps their start-up (imports, ~1 s) out of the race: with
    jobs queued before, the first worker up drained much of the queue alone.
    Returns the drain time (last finished_at - first started_at) and the listing latencies
    of requests sent inside that window.
    """
    count = run.sizes.drain_jobs
    table = run.data.small(seed=20 + workers)  # a dataset per round: its jobs are the round's
    dataset = service.upload(table.path, name=f"drain-{workers}")
    started = service.start_workers(workers)
    try:
        for worker in started:
            service.wait_until_idle(worker, timeout=WORKER_START_TIMEOUT)
        with ExitStack() as profiles:
            kind = make_url(service.database_url).get_backend_name()
            for index, worker in enumerate(started, 1):
                profiles.enter_context(run.profiled(worker.pid, f"drain-{kind}-{workers}w-{index}"))
            sweep = service.create_sweep(drain_sweep(dataset["id"], count))
            timed = watch_listing(service, dataset["id"], timeout=LONG_JOB_TIMEOUT)
    finally:
        service.stop_workers()
    jobs = [job for job in service.jobs_of_dataset(dataset["id"]) if job["sweep_id"] == sweep]
    unfinished = [job for job in jobs if job["status"] != "succeeded"]
    if len(jobs) != count or unfinished:
        raise RuntimeError(f"{len(jobs)} of {count} jobs found, {len(unfinished)} not succeeded")
    first = min(timestamp(job["started_at"]) for job in jobs)
    last = max(timestamp(job["finished_at"]) for job in jobs)
    return last - first, [latency for sent, latency in timed if first <= sent <= last]


def drain_sweep(dataset_id: str, count: int) -> dict[str, Any]:
    """``count`` short jobs in one request: 1-epoch logistic regressions (as logistic_job),
    each with its own learning rate drawn by a random search."""
    return {
        **logistic_job(dataset_id),
        "search": {
            "strategy": "random",
            "space": {"learning_rate": {"low": 0.001, "high": 0.1, "log": True}},
            "n_trials": count,
        },
    }


def workers_text(count: int) -> str:
    return f"{count} worker{'s' if count > 1 else ''}"


def section_drain(run: Run, database_url: str) -> list[Figure]:
    count = run.sizes.drain_jobs
    drains, listings = {}, {}
    with running_service(run.logs, database_url, workers=0) as service:
        for workers in (1, 2):
            note(f"  {count} jobs, {workers_text(workers)}")
            drains[workers], listings[workers] = drain_round(run, service, workers)
    ratio = drains[2] / drains[1]
    figures = [
        Figure(
            "drain",
            f"drain {count} queued 1-epoch jobs, 1 worker",
            f"{drains[1]:.2f} s ({count / drains[1]:.0f} jobs/s)",
            "1.00x",
        ),
        Figure(
            "drain",
            f"drain {count} queued 1-epoch jobs, 2 workers",
            f"{drains[2]:.2f} s ({count / drains[2]:.0f} jobs/s)",
            f"{ratio:.2f}x 1 worker",
            f"<= {DRAIN_RATIO}x 1 worker",
            status(ratio <= DRAIN_RATIO),
        ),
    ]
    for workers, latencies in listings.items():
        by = workers_text(workers)
        what = f"GET /v1/jobs?limit={LISTING_LIMIT} during the drain by {by}, p50 / p99"
        if not latencies:
            figures.append(Figure("drain", what, "no request inside the drain"))
            continue
        p50, p99 = p50_p99(latencies)
        figures.append(
            Figure(
                "drain",
                what,
                f"{ms(p50)} / {ms(p99)} ({len(latencies)} requests)",
                target=f"p99 < {LISTING_P99_MS:g} ms",
                result=status(p99 * 1e3 < LISTING_P99_MS),
            )
        )
    return figures


# -- history -------------------------------------------------------------------------------------
def section_history(run: Run, database_url: str) -> list[Figure]:
    """A real 100,000-epoch history, then its sampled view and a page, against /healthz."""
    sizes, table, epochs = run.sizes, run.data.tiny(), run.sizes.history_epochs
    timings: dict[str, list[float]] = {}
    with running_service(run.logs, database_url, workers=1) as service:
        dataset = service.upload(table.path, name="history")
        body = {
            "dataset_id": dataset["id"],
            "model": {"type": "logistic_regression"},
            "training": {
                "optimizer": "gd",
                "epochs": epochs,
                "early_stopping": None,
                "tolerance": 0.0,  # never converged: every epoch runs
            },
        }
        job_id = service.create_job(body)
        job = service.wait_for_job(job_id, timeout=LONG_JOB_TIMEOUT, interval=SLOW_POLL_SECONDS)
        if job["progress"]["epoch"] != epochs:
            raise RuntimeError(f"job {job_id} ran {job['progress']['epoch']} epochs of {epochs}")
        service.stop_workers()
        training = timestamp(job["finished_at"]) - timestamp(job["started_at"])
        history = f"/v1/jobs/{job_id}/history"
        middle = epochs // 2
        requests = {
            "GET /healthz (the HTTP floor)": ("/healthz", {}, None),
            "GET .../history?max_points=500": (history, {"max_points": 500}, None),
            f"GET .../history?since_epoch={middle}&limit=1000": (
                history,
                {"since_epoch": middle, "limit": 1000},
                1000,
            ),
        }
        for index in range(REQUEST_WARMUPS + sizes.history_requests):
            for name, (path, params, points) in requests.items():  # interleaved: same noise
                started = time.perf_counter()
                response = service.client.get(path, params=params)
                seconds = time.perf_counter() - started
                if response.status_code != 200:
                    raise RuntimeError(f"{name}: {response.status_code} {response.text[:300]}")
                if points is not None and len(response.json()["points"]) != points:
                    raise RuntimeError(f"{name}: {len(response.json()['points'])} points")
                if index >= REQUEST_WARMUPS:
                    timings.setdefault(name, []).append(seconds)
    floor50, _ = p50_p99(timings["GET /healthz (the HTTP floor)"])
    figures = [
        Figure(
            "history",
            f"train {epochs:,} epochs of logistic regression (gd), worker",
            f"{training:.1f} s ({epochs / training:,.0f} epochs/s)",
        )
    ]
    for name, seconds in timings.items():
        p50, p99 = p50_p99(seconds)
        floor = name.startswith("GET /healthz")
        figures.append(
            Figure(
                "history",
                f"{name}, p50 / p99 ({len(seconds)} requests)",
                f"{ms(p50)} / {ms(p99)}",
                "peer" if floor else f"{p50 / floor50:.1f}x healthz",
                "-" if floor else f"p50, p99 < {HISTORY_MS:g} ms",
                "-" if floor else status(p99 * 1e3 < HISTORY_MS and p50 * 1e3 < HISTORY_MS),
            )
        )
    return figures


# -- batch ---------------------------------------------------------------------------------------
def batch_scoring(service: Service, model_id: str, dataset_id: str, pid: int) -> tuple[float, int]:
    """(seconds from POST /batch-predictions to `succeeded`, the worker's peak RSS meanwhile)."""
    reset_peak_rss(pid)
    started = time.perf_counter()
    response = service.client.post(
        f"/v1/models/{model_id}/batch-predictions", json={"dataset_id": dataset_id}
    )
    if response.status_code != 202:
        raise RuntimeError(f"POST batch-predictions: {response.status_code} {response.text}")
    location = response.headers["location"]
    deadline = time.monotonic() + SHORT_JOB_TIMEOUT
    while (task := service.client.get(location).json())["status"] not in ("succeeded", "failed"):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{location} still {task['status']}")
        # Every 2 ms at first, then 2% of the time so far: polling a multi-second task every
        # 2 ms kept the API busy on a core the worker needs, for at most 2% of precision.
        time.sleep(max(END_POLL_SECONDS, 0.02 * (time.perf_counter() - started)))
    seconds = time.perf_counter() - started
    if task["status"] != "succeeded":
        raise RuntimeError(f"{location} failed: {task['error']}")
    return seconds, peak_rss_bytes(pid)


def section_batch(run: Run, database_url: str) -> list[Figure]:
    """A worker scores N rows (POST to result ready) against engine predict_proba on the
    same array in this process, for a logistic regression and a two-layer network; the
    worker's peak RSS scoring N rows against N / 10."""
    large = run.data.batch_csv(run.sizes.batch_rows)
    small = run.data.batch_csv(run.sizes.batch_rows // 10)
    timings: dict[str, tuple[float, float]] = {}  # model -> (service s, small service s)
    with running_service(run.logs, database_url, workers=0) as service:
        large_id = service.upload(large.path, name="batch-large")["id"]
        small_id = service.upload(small.path, name="batch-small")["id"]
        service.start_workers(1)
        models = {}
        for model_type in ("logistic_regression", "two_layer_network"):
            body = {**logistic_job(small_id), "model": {"type": model_type}}
            job = service.wait_for_job(
                service.create_job(body), timeout=SHORT_JOB_TIMEOUT, interval=0.05
            )
            models[model_type] = job["model_id"]
        service.stop_workers()  # a fresh worker: its peak is the scoring's, not the training's
        [worker] = service.start_workers(1)
        service.wait_until_idle(worker, timeout=WORKER_START_TIMEOUT)
        idle = rss_bytes(worker.pid)
        peaks = []
        for model_type, model_id in models.items():
            batch_scoring(service, model_id, small_id, worker.pid)  # warm-up: the first claim
            small_seconds, small_peak = batch_scoring(service, model_id, small_id, worker.pid)
            large_seconds, large_peak = batch_scoring(service, model_id, large_id, worker.pid)
            timings[model_type] = (large_seconds, small_seconds)
            peaks.append((small_peak, large_peak))
        artifacts = {
            model_type: service.client.get(f"/v1/models/{model_id}/download").content
            for model_type, model_id in models.items()
        }
    X, rows = large.arrays()[0], large.rows
    figures = []
    for model_type, (large_seconds, small_seconds) in timings.items():
        classifier = engine.load(artifacts[model_type])
        classifier.predict_proba(X[:WARMUP_ROWS])
        engine_seconds = min(stopwatch(lambda c=classifier: c.predict_proba(X))[0] for _ in "123")
        ratio = engine_seconds / large_seconds  # service rows/s over the engine's
        figures += [
            Figure(
                "batch",
                f"{model_type}: engine predict_proba in process, {rows:,} x {UPLOAD_FEATURES}",
                f"{engine_seconds:.2f} s, {rows / engine_seconds:,.0f} rows/s",
                "peer",
            ),
            Figure(
                "batch",
                f"{model_type}: batch scoring of {rows:,} rows through the service "
                "(POST to result ready)",
                f"{large_seconds:.2f} s, {rows / large_seconds:,.0f} rows/s",
                f"{ratio:.2f}x engine",
                f">= {BATCH_RATIO:g}x engine",
                status(ratio >= BATCH_RATIO),
            ),
            Figure(
                "batch",
                f"{model_type}: the same, {small.rows:,} rows",
                f"{small_seconds:.2f} s, {small.rows / small_seconds:,.0f} rows/s",
            ),
        ]
    small_peak, large_peak = max(p[0] for p in peaks), max(p[1] for p in peaks)
    growth = large_peak - small_peak
    # The worker holds a fixed number of blocks whatever the rows: the one it scores and the
    # one read ahead (plus their chunks and results). From N / 10 to N rows its peak may
    # grow by no more than two blocks of stored rows: not with the rows.
    block = 2 * 65_536 * UPLOAD_FEATURES * 8
    return [
        *figures,
        Figure("batch", "worker RSS idle (VmRSS)", mb(idle)),
        Figure(
            "batch",
            f"worker peak RSS scoring {rows:,} rows vs {small.rows:,} (VmHWM)",
            f"{mb(large_peak)} vs {mb(small_peak)}",
            f"{growth / 1e6:+.0f} MB",
            f"< +{mb(block)} (2 blocks' rows)",
            status(growth < block),
        ),
    ]


SECTIONS: dict[str, Callable[[Run, str], list[Figure]]] = {
    "overhead": section_overhead,
    "predict": section_predict,
    "alias": section_alias,
    "upload": section_upload,
    "mixed": section_mixed,
    "scale": section_scale,
    "batch": section_batch,
    "drain": section_drain,
    "history": section_history,
}


# -- the report ----------------------------------------------------------------------------------
def table_lines(
    results: dict[str, list[Figure]], databases: Sequence[str]
) -> tuple[list[str], list[list[str]]]:
    """One line per measurement, a (value, ratio, PASS/MISS) triple per database."""
    order: list[tuple[str, str]] = []
    by_database: dict[str, dict[tuple[str, str], Figure]] = {db: {} for db in databases}
    targets: dict[tuple[str, str], str] = {}
    for database in databases:
        for figure in results.get(database, []):
            key = (figure.section, figure.what)
            if key not in targets:
                order.append(key)
                targets[key] = figure.target
            by_database[database][key] = figure
    names = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}
    header = ["section", "measurement", "target"]
    for database in databases:
        header += [names[database], "ratio", "PASS/MISS"]
    lines = []
    for key in order:
        line = [key[0], key[1], targets[key]]
        for database in databases:
            figure = by_database[database].get(key)
            line += [figure.value, figure.ratio, figure.result] if figure else ["-", "-", "-"]
        lines.append(line)
    return header, lines


def markdown_table(header: Sequence[str], lines: Sequence[Sequence[str]]) -> str:
    text = [f"| {' | '.join(header)} |", f"|{'|'.join('---' for _ in header)}|"]
    text += [f"| {' | '.join(line)} |" for line in lines]
    return "\n".join(text)


def text_table(header: Sequence[str], lines: Sequence[Sequence[str]]) -> str:
    widths = [max(len(row[i]) for row in [header, *lines]) for i in range(len(header))]

    def joined(row: Sequence[str]) -> str:
        return "  ".join(
            cell.ljust(width) for cell, width in zip(row, widths, strict=True)
        ).rstrip()

    rule = "  ".join("-" * width for width in widths)
    return "\n".join([joined(header), rule, *(joined(line) for line in lines)]).rstrip()


def server_versions(databases: Sequence[str], postgres_admin_url: str) -> str:
    versions = [f"SQLite {sqlite3.sqlite_version}"] if "sqlite" in databases else []
    if "postgresql" in databases:
        try:
            with psycopg.connect(postgres_admin_url) as connection:
                row = connection.execute("SHOW server_version").fetchone()
            versions.append(f"PostgreSQL {row[0] if row else '?'}")
        except psycopg.Error as error:
            versions.append(f"PostgreSQL (unreachable: {error})")
    return ", ".join(versions)


def header_lines(args: argparse.Namespace, sizes: Sizes, seconds: float, interrupted: bool) -> str:
    mode = "QUICK run (--quick: smaller sizes, fewer repeats)" if args.quick else "full run"
    lines = [
        f"- {mode}; sections: {', '.join(args.only)}; total {seconds / 60:.1f} min"
        + ("; INTERRUPTED (Ctrl-C): partial results" if interrupted else ""),
        f"- python {platform.python_version()}, {platform.platform()}",
        f"- CPU: {cpu_model()}, {available_cores()} cores available",
        f"- fastapi {fastapi.__version__}, uvicorn {uvicorn.__version__} (loop and http 'auto'), "
        f"pydantic {pydantic.VERSION}, sqlalchemy {sqlalchemy.__version__}, "
        f"psycopg {psycopg.__version__}, pyarrow {pyarrow.__version__}, numpy {np.__version__}",
        f"- databases: {server_versions(args.databases, args.postgres_url)}",
        f"- sizes: overhead {sizes.overhead_jobs} jobs; predict {sizes.connections} connections "
        f"x {sizes.load_seconds:g} s after {sizes.load_warmup:g} s; upload {sizes.upload_rows:,} "
        f"rows; scale {sizes.scale_rows:,} rows x {sizes.scale_epochs} epochs; drain "
        f"{sizes.drain_jobs} jobs; history {sizes.history_epochs:,} epochs",
        "- latencies are p50 / p99; job ends are seen by polling GET /v1/jobs/{id} every 2 ms "
        "(the events stream polls the database every 0.2 s)",
    ]
    return "\n".join(lines)


def report(
    args: argparse.Namespace,
    sizes: Sizes,
    results: dict[str, list[Figure]],
    seconds: float,
    interrupted: bool,
) -> None:
    header, lines = table_lines(results, args.databases)
    title = "service benchmark" + (" (QUICK)" if args.quick else "")
    info = header_lines(args, sizes, seconds, interrupted)
    if args.markdown:
        print(f"### {title}\n\n{info}\n\n{markdown_table(header, lines)}", flush=True)
    else:
        print(f"{title}\n{info}\n\n{text_table(header, lines)}", flush=True)


# -- main ----------------------------------------------------------------------------------------
def comma_list(allowed: Sequence[str]) -> Callable[[str], list[str]]:
    def parse(text: str) -> list[str]:
        names = [name.strip() for name in text.split(",") if name.strip()]
        unknown = [name for name in names if name not in allowed]
        if unknown or not names:
            raise argparse.ArgumentTypeError(f"choose from {', '.join(allowed)}; got {text!r}")
        return [name for name in allowed if name in names]  # the canonical order

    return parse


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--only",
        type=comma_list(tuple(SECTIONS)),
        default=list(SECTIONS),
        metavar="SECTION[,SECTION]",
        help=f"sections to run (default: all): {', '.join(SECTIONS)}",
    )
    parser.add_argument(
        "--databases",
        type=comma_list(DATABASES),
        default=list(DATABASES),
        metavar="DB[,DB]",
        help="sqlite, postgresql or both (default: both)",
    )
    parser.add_argument(
        "--quick", action="store_true", help="smaller sizes and fewer repeats, for development"
    )
    parser.add_argument(
        "--markdown", action="store_true", help="print the table as Markdown (for the README)"
    )
    parser.add_argument(
        "--profile",
        type=Path,
        metavar="DIR",
        help="record py-spy samples (collapsed stacks) of the servers under load into DIR",
    )
    parser.add_argument(
        "--postgres-url",
        default=POSTGRES_ADMIN_URL,
        help="a PostgreSQL server where the run may create and drop a database "
        f"(default {POSTGRES_ADMIN_URL})",
    )
    return parser.parse_args(argv)


def stop_on_sigterm(_signum: int, _frame: object) -> NoReturn:
    raise KeyboardInterrupt  # the finally blocks stop every process and drop the database


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, stop_on_sigterm)
    sizes = QUICK if args.quick else FULL
    started = time.monotonic()
    results: dict[str, list[Figure]] = {database: [] for database in args.databases}
    interrupted = False
    with tempfile.TemporaryDirectory(prefix="backprop-bench-") as folder_name:
        folder = Path(folder_name)
        run = Run(sizes, DataSets(folder, sizes), folder / "logs", folder / "work", args.profile)
        if args.profile is not None:
            args.profile.mkdir(parents=True, exist_ok=True)
        run.logs.mkdir()
        run.work.mkdir()
        try:
            for database in args.databases:
                note(f"{database}: a fresh database")
                with fresh_database(database, folder, args.postgres_url) as url:
                    for name in args.only:
                        note(f"{database}: {name}")
                        try:
                            results[database] += SECTIONS[name](run, url)
                        except Exception as error:  # one broken section must not lose the rest
                            note(f"{database}: {name} failed:\n{traceback.format_exc()}")
                            message = f"{type(error).__name__}: {error}".splitlines()[0][:100]
                            results[database].append(Figure(name, "ERROR", message))
        except KeyboardInterrupt:
            interrupted = True
            note("interrupted: processes stopped, temporary files and databases removed")
    report(args, sizes, results, time.monotonic() - started, interrupted)
    return 130 if interrupted else 0


if __name__ == "__main__":
    sys.exit(main())
