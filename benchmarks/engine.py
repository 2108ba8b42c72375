"""The engine against named peers, on the same data, in one run; prints Markdown tables.

    python benchmarks/engine.py                    # the full workloads (a few minutes)
    python benchmarks/engine.py --samples 20000 --epochs 10    # a quick smoke run
    make bench-engine BENCH_ARGS="--repeats 3"

Workload A: a two-layer network (128 tanh units, sigmoid output), 50 epochs of
full-batch gradient descent at learning rate 0.5, on 100,000 x 100 standardized
rows, in float64 and float32. The engine's fit() against scikit-learn's
MLPClassifier and PyTorch set up to do the same work, and against the GEMM
floor: the five matrix products of those epochs alone, in NumPy.

Workload B: unregularized logistic regression on the same rows. scikit-learn's
LogisticRegression (lbfgs) fixes a log-loss; the engine's L-BFGS is timed until
its training loss is within 1e-4 of it.

Memory: the peak of what the engine's fit() allocates for workload A (float64),
traced by tracemalloc, against the size of X.

The environment is taken as it is (OPENBLAS_* variables included): the header
prints which BLAS kernel and how many threads each library runs with.
"""

# ruff: noqa: E402  (the engine can only be imported once sys.path is fixed, below)

import sys
from pathlib import Path

# `python benchmarks/engine.py` puts this folder first on sys.path, where this file's own
# name would shadow the engine package: drop the folder before the engine is imported.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != _HERE]

import argparse
import os
import platform
import time
import tracemalloc
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import scipy
import sklearn
import threadpoolctl
import torch
from sklearn.datasets import make_classification
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss
from sklearn.neural_network import MLPClassifier

import engine
from benchmarks._machine import cpu_model
from engine.blocks import available_cores

SEED = 0  # one seed for the data and every initialization
HIDDEN_UNITS = 128
LEARNING_RATE = 0.5
DTYPES = ("float64", "float32")
WARMUP_ROWS = 2048  # warm-up runs use this many rows: cheap, but touch every code path

FLOOR_TARGET = 1.3  # engine training loop <= 1.3x the GEMM floor
SKLEARN_SPEEDUP_TARGET = {"float64": 1.5, "float32": 1.3}  # engine fit() vs MLPClassifier.fit()
LOSS_GAP = 1e-4  # workload B: engine loss <= sklearn loss + LOSS_GAP
LBFGS_MAX_ITERATIONS = 1000  # far more than needed: the callback stops the engine
# Workload B takes a fraction of a second, and most of the engine's part of it is first-touch
# page faults on its copy of X, which vary run to run: take at least this many, and show them all.
LOGISTIC_MIN_REPEATS = 5
# Memory: beyond its standardized copy of X, the engine may hold per-sample vectors (targets,
# labels) and a workspace that does not grow with m (scratch blocks, per-lane gradients).
FIXED_WORKSPACE_BYTES = 16 << 20
PER_SAMPLE_BYTES = 24  # Y (≤ 8 bytes) + labels (8) + label-encoding scratch (8)

T = TypeVar("T")


@dataclass(frozen=True)
class Row:
    """One line of a results table."""

    workload: str
    dtype: str
    implementation: str
    value: str  # seconds (or MB for memory), already formatted
    ratio: str
    target: str = "-"
    result: str = "-"


@dataclass(frozen=True)
class Check:
    """What an implementation ended with: evidence that it did the work asked of it."""

    implementation: str
    dtype: str
    iterations: int
    final_loss: float
    parameter_dtype: str


@dataclass(frozen=True)
class Timed:
    seconds: float
    check: Check


@dataclass(frozen=True)
class EngineTimed:
    total: float  # the whole fit() call: validation, standardized copy, loop, diagnostics
    loop: float  # Σ of the history's per-epoch seconds: the training loop alone
    check: Check


# -- measuring -------------------------------------------------------------------------------
def best_of(repeats: int, run: Callable[[], T], seconds_of: Callable[[T], float]) -> T:
    """The run with the fewest seconds among ``repeats`` runs (noise only ever adds time)."""
    runs = [run() for _ in range(repeats)]
    return min(runs, key=seconds_of)


def stopwatch(function: Callable[[], T]) -> tuple[float, T]:
    started = time.perf_counter()
    value = function()
    return time.perf_counter() - started, value


def note(message: str) -> None:
    """Progress on stderr, so stdout stays the Markdown report."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def status(passed: bool) -> str:
    return "PASS" if passed else "MISS"


# -- data ------------------------------------------------------------------------------------
def make_data(samples: int, features: int) -> tuple[np.ndarray, np.ndarray]:
    """Standardized rows (m, n_x) float64 and 0/1 labels (m,).

    Standardized up front so every implementation sees the same inputs and the engine's
    own standardizer is (nearly) the identity.
    """
    rows, labels = make_classification(n_samples=samples, n_features=features, random_state=SEED)
    rows -= rows.mean(axis=0)
    rows /= rows.std(axis=0)
    return np.ascontiguousarray(rows), labels


# -- workload A: the two-layer network ---------------------------------------------------------
def network_specs(epochs: int, dtype: str) -> tuple[engine.ModelSpec, engine.TrainingSpec]:
    model = engine.ModelSpec(type="two_layer_network", hidden_units=HIDDEN_UNITS, activation="tanh")
    training = engine.TrainingSpec(
        optimizer="gd",
        learning_rate=LEARNING_RATE,
        epochs=epochs,
        batch_size=None,  # full batch
        validation_fraction=0.0,
        early_stopping=None,
        tolerance=0.0,  # never stop as converged: run every epoch
        dtype=dtype,
    )
    return model, training


def engine_network(rows: np.ndarray, labels: np.ndarray, epochs: int) -> EngineTimed:
    model, training = network_specs(epochs, rows.dtype.name)
    total, result = stopwatch(lambda: engine.fit(rows, labels, model, training))
    loop = sum(metrics.seconds for metrics in result.history)
    theta_dtype = result.classifier.model.parameters.dtype.name
    check = Check(
        "engine", rows.dtype.name, len(result.history), result.history[-1].train_loss, theta_dtype
    )
    return EngineTimed(total, loop, check)


def sklearn_network(rows: np.ndarray, labels: np.ndarray, epochs: int) -> Timed:
    """MLPClassifier doing the engine's work: plain full-batch GD, no penalty, no early exit."""
    classifier = MLPClassifier(
        hidden_layer_sizes=(HIDDEN_UNITS,),
        activation="tanh",
        solver="sgd",
        batch_size=rows.shape[0],  # full batch
        learning_rate="constant",
        learning_rate_init=LEARNING_RATE,
        momentum=0.0,
        nesterovs_momentum=False,
        alpha=0.0,
        max_iter=epochs,
        tol=0.0,
        n_iter_no_change=epochs + 1,  # never stop before max_iter
        shuffle=False,
        early_stopping=False,
        random_state=SEED,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # max_iter is the point here
        seconds, _ = stopwatch(lambda: classifier.fit(rows, labels))
    coefficient_dtype = classifier.coefs_[0].dtype.name  # float32 in, float32 kept?
    check = Check(
        "sklearn MLPClassifier",
        rows.dtype.name,
        classifier.n_iter_,
        classifier.loss_curve_[-1],
        coefficient_dtype,
    )
    return Timed(seconds, check)


def torch_network(rows: np.ndarray, labels: np.ndarray, epochs: int) -> Timed:
    """The same network and full-batch SGD in PyTorch; times the epochs, not the setup."""
    torch.manual_seed(SEED)
    dtype = getattr(torch, rows.dtype.name)
    X = torch.from_numpy(rows)  # (m, n_x), no copy
    Y = torch.from_numpy(labels.astype(rows.dtype)).unsqueeze(1)  # (m, 1)
    network = torch.nn.Sequential(
        torch.nn.Linear(rows.shape[1], HIDDEN_UNITS),
        torch.nn.Tanh(),
        torch.nn.Linear(HIDDEN_UNITS, 1),
    ).to(dtype)
    loss_function = torch.nn.BCEWithLogitsLoss()  # mean over samples: the note's J
    optimizer = torch.optim.SGD(network.parameters(), lr=LEARNING_RATE, momentum=0.0)

    def train() -> float:
        for _ in range(epochs):
            optimizer.zero_grad(set_to_none=True)
            loss = loss_function(network(X), Y)
            loss.backward()
            optimizer.step()
        return float(loss.detach())

    seconds, final_loss = stopwatch(train)
    return Timed(
        seconds,
        Check("PyTorch", rows.dtype.name, epochs, final_loss, str(dtype).removeprefix("torch.")),
    )


def gemm_floor(rows: np.ndarray, epochs: int) -> float:
    """Seconds for the matrix products of ``epochs`` full-batch epochs, nothing else.

    X is the engine's layout, the transposed view of the rows (n_x, m); outputs are
    preallocated, so only BLAS runs, with NumPy's default threads.
    """
    X = rows.T  # (n_x, m)
    n_x, m = X.shape
    rng = np.random.default_rng(SEED)
    W1 = rng.standard_normal((HIDDEN_UNITS, n_x)).astype(rows.dtype)
    W2 = rng.standard_normal((1, HIDDEN_UNITS)).astype(rows.dtype)
    A1 = np.empty((HIDDEN_UNITS, m), dtype=rows.dtype)
    dZ2 = np.empty((1, m), dtype=rows.dtype)
    dZ1 = np.empty((HIDDEN_UNITS, m), dtype=rows.dtype)
    dW1 = np.empty((HIDDEN_UNITS, n_x), dtype=rows.dtype)
    dW2 = np.empty((1, HIDDEN_UNITS), dtype=rows.dtype)

    def products(count: int) -> None:
        for _ in range(count):
            np.matmul(W1, X, out=A1)  # Z1 = W1 X: (n_h, m) = (n_h, n_x)(n_x, m)
            np.matmul(W2, A1, out=dZ2)  # Z2 = W2 A1: (1, m) = (1, n_h)(n_h, m)
            np.matmul(W2.T, dZ2, out=dZ1)  # W2ᵀ dZ2: (n_h, m) = (n_h, 1)(1, m)
            np.matmul(dZ2, A1.T, out=dW2)  # dZ2 A1ᵀ: (1, n_h) = (1, m)(m, n_h)
            np.matmul(dZ1, X.T, out=dW1)  # dZ1 Xᵀ: (n_h, n_x) = (n_h, m)(m, n_x)

    products(1)  # warm-up: BLAS threads started, pages of the outputs touched
    seconds, _ = stopwatch(lambda: products(epochs))
    return seconds


@dataclass(frozen=True)
class NetworkRun:
    dtype: str
    floor: float
    engine: EngineTimed
    sklearn: Timed
    torch: Timed


def run_network(
    rows64: np.ndarray, labels: np.ndarray, dtype: str, epochs: int, repeats: int
) -> NetworkRun:
    """Workload A in one dtype: warm every implementation up on a slice, then time each."""
    rows = rows64.astype(dtype)
    warm_rows, warm_labels = rows[:WARMUP_ROWS], labels[:WARMUP_ROWS]
    for warm_up in (engine_network, sklearn_network, torch_network):
        warm_up(warm_rows, warm_labels, 2)
    # Torch last: its OpenMP threads may spin a little after each call, stealing cores.
    floor = min(gemm_floor(rows, epochs) for _ in range(repeats))
    engine_run = best_of(repeats, lambda: engine_network(rows, labels, epochs), lambda r: r.total)
    sklearn_run = best_of(
        repeats, lambda: sklearn_network(rows, labels, epochs), lambda r: r.seconds
    )
    torch_run = best_of(repeats, lambda: torch_network(rows, labels, epochs), lambda r: r.seconds)
    return NetworkRun(dtype, floor, engine_run, sklearn_run, torch_run)


def gemm_flops(samples: int, features: int, epochs: int) -> float:
    """Floating-point operations of the five products over all epochs (2 per multiply-add)."""
    n_h = HIDDEN_UNITS
    per_epoch = 2 * samples * (n_h * features + n_h + n_h + n_h + n_h * features)
    return float(per_epoch * epochs)


def flops_line(runs: Sequence[NetworkRun], flops: float) -> str:
    """The products' arithmetic rate: how close to the cores' peak the floor and the engine get."""

    def rate(seconds: float) -> str:
        return f"{flops / seconds / 1e9:.0f}"

    rates = "; ".join(
        f"{run.dtype} floor {rate(run.floor)}, engine loop {rate(run.engine.loop)}" for run in runs
    )
    return f"The products are {flops / 1e9:.1f} GFLOP in all. GFLOP/s: {rates}."


def network_rows(run: NetworkRun) -> list[Row]:
    floor, dtype = run.floor, run.dtype
    speedup = run.sklearn.seconds / run.engine.total
    speedup_target = SKLEARN_SPEEDUP_TARGET[dtype]

    def row(implementation: str, seconds: float, target: str = "-", result: str = "-") -> Row:
        return Row(
            "A",
            dtype,
            implementation,
            f"{seconds:.3f}",
            f"{seconds / floor:.2f}x floor",
            target,
            result,
        )

    return [
        row("NumPy GEMM floor (5 matmuls x epochs)", floor),
        row(
            "engine training loop (Σ epoch seconds)",
            run.engine.loop,
            f"<= {FLOOR_TARGET}x floor",
            status(run.engine.loop <= FLOOR_TARGET * floor),
        ),
        row("engine fit() total", run.engine.total),
        row("sklearn MLPClassifier.fit()", run.sklearn.seconds),
        Row(
            "A",
            dtype,
            "engine fit() vs sklearn fit()",
            f"{run.engine.total:.3f}",
            f"{speedup:.2f}x speedup",
            f">= {speedup_target}x speedup",
            status(speedup >= speedup_target),
        ),
        row("PyTorch CPU training loop", run.torch.seconds),
    ]


# -- workload B: logistic regression -------------------------------------------------------------
@dataclass(frozen=True)
class EngineLogistic:
    wall: float | None  # from the fit() call to the target loss; None: never reached
    training: float | None  # Progress.elapsed then: the training time alone
    total: float  # the whole fit() call, stopped at the target
    loss: float  # the engine's own train_loss when it stopped
    log_loss: float  # sklearn.metrics.log_loss of the engine's predictions on the same rows
    iterations: int


@dataclass(frozen=True)
class LogisticRun:
    sklearn_seconds: float  # the best run
    sklearn_loss: float
    sklearn_iterations: int
    engine: EngineLogistic  # the best run
    sklearn_runs: list[float]  # every run's seconds, in order
    engine_runs: list[float | None]


def sklearn_logistic(rows: np.ndarray, labels: np.ndarray) -> tuple[float, float, int]:
    """(seconds, training log-loss, iterations) of the default lbfgs, effectively unpenalized."""
    model = LogisticRegression(C=1e10)  # penalty 1/(2C) ||w||² ~ 0: the engine's l2 = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # reported as n_iter_ instead
        seconds, _ = stopwatch(lambda: model.fit(rows, labels))
    return seconds, log_loss(labels, model.predict_proba(rows)), int(model.n_iter_[0])


def engine_logistic(rows: np.ndarray, labels: np.ndarray, target_loss: float) -> EngineLogistic:
    """The engine's L-BFGS, stopped by its callback at the first training loss <= target_loss."""
    training = engine.TrainingSpec(
        optimizer="lbfgs",
        epochs=LBFGS_MAX_ITERATIONS,
        validation_fraction=0.0,
        early_stopping=None,
        tolerance=1e-12,  # not converged before the target: the callback decides
    )
    reached: list[tuple[float, float]] = []  # (wall, training) seconds when the target was met
    started = time.perf_counter()

    def stop_at_target(progress: engine.Progress) -> bool:
        if progress.metrics.train_loss > target_loss:
            return False
        reached.append((time.perf_counter() - started, progress.elapsed))
        return True

    result = engine.fit(rows, labels, engine.ModelSpec(), training, callback=stop_at_target)
    total = time.perf_counter() - started
    wall, training_seconds = reached[0] if reached else (None, None)
    return EngineLogistic(
        wall=wall,
        training=training_seconds,
        total=total,
        loss=result.history[-1].train_loss,
        # On the caller's rows: the engine standardizes internally, so this checks the whole model.
        log_loss=log_loss(labels, result.classifier.predict_proba(rows)),
        iterations=len(result.history),
    )


def run_logistic(rows: np.ndarray, labels: np.ndarray, repeats: int) -> LogisticRun:
    """Workload B: sklearn fixes the loss to reach, then the engine is timed to reach it."""
    warm_rows, warm_labels = rows[:WARMUP_ROWS], labels[:WARMUP_ROWS]
    sklearn_logistic(warm_rows, warm_labels)
    engine_logistic(warm_rows, warm_labels, target_loss=np.inf)
    repeats = max(repeats, LOGISTIC_MIN_REPEATS)
    sklearn_runs = [sklearn_logistic(rows, labels) for _ in range(repeats)]
    seconds, loss, iterations = min(sklearn_runs, key=lambda run: run[0])
    engine_runs = [engine_logistic(rows, labels, loss + LOSS_GAP) for _ in range(repeats)]
    engine_run = min(engine_runs, key=lambda run: np.inf if run.wall is None else run.wall)
    return LogisticRun(
        seconds,
        loss,
        iterations,
        engine_run,
        sklearn_runs=[run[0] for run in sklearn_runs],
        engine_runs=[run.wall for run in engine_runs],
    )


def logistic_spread(run: LogisticRun) -> str:
    """Every timed run of workload B, so the spread behind the best is visible."""

    def listed(values: Sequence[float | None]) -> str:
        return ", ".join("-" if value is None else f"{value:.3f}" for value in values)

    return (
        f"All runs (s), best kept: sklearn {listed(run.sklearn_runs)}; "
        f"engine to target {listed(run.engine_runs)}."
    )


def logistic_rows(run: LogisticRun) -> list[Row]:
    base = run.sklearn_seconds

    def ratio(seconds: float | None) -> str:
        return "not reached" if seconds is None else f"{seconds / base:.2f}x sklearn"

    def seconds(value: float | None) -> str:
        return "-" if value is None else f"{value:.3f}"

    engine_run = run.engine
    reached = engine_run.wall is not None
    return [
        Row(
            "B",
            "float64",
            "sklearn LogisticRegression(C=1e10).fit(), lbfgs",
            f"{base:.3f}",
            "1.00x sklearn",
        ),
        Row(
            "B",
            "float64",
            f"engine L-BFGS fit() until loss <= sklearn + {LOSS_GAP:g}",
            seconds(engine_run.wall),
            ratio(engine_run.wall),
            "<= 1.00x sklearn",
            status(reached and engine_run.wall <= base),
        ),
        Row(
            "B",
            "float64",
            "engine, training time alone (Progress.elapsed)",
            seconds(engine_run.training),
            ratio(engine_run.training),
        ),
    ]


def logistic_checks(run: LogisticRun) -> list[Check]:
    return [
        Check(
            "sklearn LogisticRegression",
            "float64",
            run.sklearn_iterations,
            run.sklearn_loss,
            "float64",
        ),
        Check(
            "engine L-BFGS (its train_loss)",
            "float64",
            run.engine.iterations,
            run.engine.loss,
            "float64",
        ),
        Check(
            "engine L-BFGS (log_loss of predict_proba)",
            "float64",
            run.engine.iterations,
            run.engine.log_loss,
            "float64",
        ),
    ]


# -- memory ------------------------------------------------------------------------------------
def engine_peak_bytes(rows: np.ndarray, labels: np.ndarray, epochs: int) -> int:
    """The most fit() held at once beyond what existed before; NumPy reports to tracemalloc."""
    model, training = network_specs(epochs, rows.dtype.name)
    tracemalloc.start()
    try:
        engine.fit(rows, labels, model, training)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@dataclass(frozen=True)
class MemoryRun:
    x_bytes: int  # the caller's X (m, n_x) float64
    samples: int
    peak: int  # fit()'s peak on all m rows
    half_peak: int  # ... and on the first m/2 rows: the difference shows what grows with m


def run_memory(rows: np.ndarray, labels: np.ndarray, epochs: int) -> MemoryRun:
    half = rows.shape[0] // 2
    half_peak = engine_peak_bytes(rows[:half], labels[:half], epochs)
    peak = engine_peak_bytes(rows, labels, epochs)
    return MemoryRun(rows.nbytes, rows.shape[0], peak, half_peak)


def memory_rows(run: MemoryRun) -> list[Row]:
    """The peak against X: allowed are one standardized copy, per-sample vectors, a workspace."""
    x_bytes, m = run.x_bytes, run.samples
    row_bytes = x_bytes // m  # one sample of X, and of its standardized float64 copy
    budget = x_bytes + PER_SAMPLE_BYTES * m + FIXED_WORKSPACE_BYTES
    growth = (run.peak - run.half_peak) / (m - m // 2)  # bytes the peak gains per extra sample
    fixed = run.peak - growth * m  # what does not grow with m
    beyond_copy = run.peak - x_bytes

    def mb(value: float) -> str:
        return f"{value / 1e6:.1f} MB"

    def row(what: str, value: str, ratio: str, target: str = "-", result: str = "-") -> Row:
        return Row("A mem", "float64", what, value, ratio, target, result)

    return [
        row("X.nbytes (the caller's rows, before fit)", mb(x_bytes), "1.00x X"),
        row(
            "engine fit() peak allocations (tracemalloc)",
            mb(run.peak),
            f"{run.peak / x_bytes:.2f}x X",
            f"<= copy + {PER_SAMPLE_BYTES} B/sample + {FIXED_WORKSPACE_BYTES >> 20} MiB"
            f" = {mb(budget)}",
            status(run.peak <= budget),
        ),
        row(
            "peak beyond one standardized copy",
            mb(beyond_copy),
            f"{beyond_copy / x_bytes:.2f}x X",
        ),
        row(
            "peak growth per extra sample (m/2 -> m)",
            f"{growth:.0f} B",
            f"{growth / row_bytes:.2f}x a row of X",
            f"<= {row_bytes + PER_SAMPLE_BYTES} B (a row + {PER_SAMPLE_BYTES} B)",
            status(growth <= row_bytes + PER_SAMPLE_BYTES),
        ),
        row("peak part not growing with m", mb(fixed), f"{fixed / x_bytes:.2f}x X"),
        row(
            "X + engine peak (held while fitting)",
            mb(x_bytes + run.peak),
            f"{1 + run.peak / x_bytes:.2f}x X",
        ),
    ]


# -- printing ----------------------------------------------------------------------------------
def markdown_table(header: Sequence[str], lines: Sequence[Sequence[object]]) -> str:
    text = [f"| {' | '.join(header)} |", f"|{'|'.join('---' for _ in header)}|"]
    text += [f"| {' | '.join(str(cell) for cell in line)} |" for line in lines]
    return "\n".join(text)


def results_table(rows: Sequence[Row], value_name: str = "seconds") -> str:
    header = ("workload", "dtype", "implementation", value_name, "ratio", "target", "PASS/MISS")
    return markdown_table(
        header,
        [
            (r.workload, r.dtype, r.implementation, r.value, r.ratio, r.target, r.result)
            for r in rows
        ],
    )


def checks_table(checks: Sequence[Check]) -> str:
    header = ("implementation", "dtype", "iterations", "final training loss", "parameter dtype")
    return markdown_table(
        header,
        [
            (c.implementation, c.dtype, c.iterations, f"{c.final_loss:.6f}", c.parameter_dtype)
            for c in checks
        ],
    )


def report(*blocks: str) -> None:
    """Blocks of Markdown on stdout, a blank line after each."""
    for block in blocks:
        print(block, end="\n\n", flush=True)


def machine_info() -> str:
    lines = [
        f"- python {platform.python_version()}, {platform.platform()}",
        f"- CPU: {cpu_model()}, {available_cores()} cores available",
        f"- numpy {np.__version__}, scipy {scipy.__version__}, scikit-learn {sklearn.__version__}, "
        f"torch {torch.__version__} ({torch.get_num_threads()} threads)",
        f"- OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '(unset)')}, "
        f"OPENBLAS_L2_SIZE={os.environ.get('OPENBLAS_L2_SIZE', '(unset)')}",
    ]
    for pool in threadpoolctl.threadpool_info():
        library = Path(pool["filepath"]).name
        kernel = f", kernel {pool['architecture']}" if "architecture" in pool else ""
        version = f" {pool['version']}" if pool.get("version") else ""
        lines.append(
            f"- {pool['user_api']}: {pool['internal_api']}{version}{kernel}, "
            f"{pool['num_threads']} threads ({library})"
        )
    return "\n".join(lines)


# -- main --------------------------------------------------------------------------------------
def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=100_000, help="rows m (default 100000)")
    parser.add_argument("--features", type=int, default=100, help="features n_x (default 100)")
    parser.add_argument("--epochs", type=int, default=50, help="workload A epochs (default 50)")
    parser.add_argument(
        "--repeats",
        type=int,
        default=1,
        help="timed runs, best kept (default 1; workload B at least 5)",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(available_cores())  # as many threads as NumPy's BLAS and the engine use
    rows, labels = make_data(args.samples, args.features)
    report(f"# engine benchmark: {args.samples} samples x {args.features} features", machine_info())

    network_runs = []
    for dtype in DTYPES:
        note(f"workload A, {dtype}")
        network_runs.append(run_network(rows, labels, dtype, args.epochs, args.repeats))
    checks = [
        c for run in network_runs for c in (run.engine.check, run.sklearn.check, run.torch.check)
    ]
    report(
        f"## Workload A: two-layer network, {HIDDEN_UNITS} tanh units, {args.epochs} GD epochs",
        results_table([row for run in network_runs for row in network_rows(run)]),
        flops_line(network_runs, gemm_flops(args.samples, args.features, args.epochs)),
        checks_table(checks),
    )

    note("workload B")
    logistic = run_logistic(rows, labels, args.repeats)
    report(
        "## Workload B: logistic regression, L-BFGS to scikit-learn's log-loss",
        results_table(logistic_rows(logistic)),
        logistic_spread(logistic),
        checks_table(logistic_checks(logistic)),
    )

    note("memory")
    memory = run_memory(rows, labels, args.epochs)
    report(
        "## Memory: engine fit() for workload A, float64",
        results_table(memory_rows(memory), value_name="size"),
    )


if __name__ == "__main__":
    main()
