"""Runs a model's per-block work over the columns of X on every core.

NumPy's element-wise functions (tanh, the derivative products) run on one
core while BLAS uses all of them, so a plain full-batch step leaves cores
idle for most of an epoch. Here the m columns are cut into cache-sized blocks
and the blocks are dealt to a fixed number of *lanes*; each lane adds up its
blocks' gradients in order, on whichever thread runs it, with BLAS held to one
thread. The lanes are then summed in lane order. Block size and lane count
depend only on the model's shapes and dtype, never on the number of cores,
so a result is bit-identical on 1 thread or 16, and a checkpoint resumed on
another machine continues the same arithmetic.
"""

import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from functools import cache

import numpy as np
from threadpoolctl import ThreadpoolController

from engine.models import BlockResult, Model
from engine.outputs import output_units
from engine.parameters import Parameters
from engine.workspace import Workspace

BLOCK_BYTES = 1 << 20  # one (width, block) scratch array: about L2-cache sized
MAX_LANES = 16
LANE_BYTES = 64 << 20  # all lanes' gradient buffers together stay under this


def block_columns(model: Model) -> int:
    """Samples per block: a power of two whose widest scratch array is about BLOCK_BYTES."""
    width = max(model.n_features, getattr(model, "hidden_units", 1), model.n_classes)
    columns = BLOCK_BYTES // (width * model.dtype.itemsize)
    return int(2 ** np.clip(np.floor(np.log2(max(columns, 1))), 6, 13))  # 64 .. 8192


def lane_count(model: Model) -> int:
    """How many partial gradients the blocks are summed into (at least 2, at most 16)."""
    buffer_bytes = model.parameters.theta.nbytes
    return int(np.clip(LANE_BYTES // max(buffer_bytes, 1), 2, MAX_LANES))


@cache
def blas_controller() -> ThreadpoolController:
    """threadpoolctl's view of the loaded BLAS libraries, taken once per process: finding
    them walks every loaded shared library (~1 ms, more than a small job's whole fit)."""
    return ThreadpoolController()


def available_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


class BlockRunner:
    """Sums a model's per-block results over all columns of X, on ``threads`` threads."""

    def __init__(self, model: Model, threads: int | None = None):
        self.model = model
        self.threads = max(1, threads or available_cores())
        self.columns = block_columns(model)
        self.lanes = lane_count(model)
        self._local = threading.local()
        self._lane_grads: list[Parameters] = []
        self._executor: ThreadPoolExecutor | None = None

    @contextmanager
    def running(self) -> Iterator["BlockRunner"]:
        """Start the threads, with BLAS held to one thread each, for the duration of a fit."""
        if self.threads == 1:
            yield self
            return
        with (
            blas_controller().limit(limits=1, user_api="blas"),
            ThreadPoolExecutor(self.threads) as pool,
        ):
            self._executor = pool
            try:
                yield self
            finally:
                self._executor = None

    def workspace(self) -> Workspace:
        work = getattr(self._local, "work", None)
        if work is None:
            work = self._local.work = Workspace()
        return work

    def _spans(self, m: int) -> list[tuple[int, int]]:
        return [(start, min(start + self.columns, m)) for start in range(0, m, self.columns)]

    def _map(self, function: Callable[[int], BlockResult], count: int) -> list[BlockResult]:
        if self._executor is None or count == 1:
            return [function(index) for index in range(count)]
        return list(self._executor.map(function, range(count)))

    def loss_and_gradients(
        self, X: np.ndarray, Y: np.ndarray, labels: np.ndarray, grads: Parameters
    ) -> BlockResult:
        """Σ L, correct count and Σ gradients over the columns of X (n_x, m) into ``grads``.

        ``grads`` is overwritten with sums, not means: the caller divides by m.
        """
        spans = self._spans(X.shape[1])
        grads.theta[...] = 0.0
        if len(spans) == 1:  # one block: no lanes, no threads
            return self.model.accumulate_block(X, Y, labels, grads, self.workspace())
        lanes = min(self.lanes, len(spans))
        while len(self._lane_grads) < lanes:
            self._lane_grads.append(grads.zeros_like())

        def run_lane(lane: int) -> BlockResult:
            lane_grads = self._lane_grads[lane]
            lane_grads.theta[...] = 0.0
            total = BlockResult()
            work = self.workspace()
            for start, stop in spans[lane::lanes]:
                columns = slice(start, stop)
                total.add(
                    self.model.accumulate_block(
                        X[:, columns], Y[:, columns], labels[columns], lane_grads, work
                    )
                )
            return total

        total = BlockResult()
        for lane, result in enumerate(self._map(run_lane, lanes)):
            grads.theta += self._lane_grads[lane].theta
            total.add(result)
        return total

    def loss(self, X: np.ndarray, Y: np.ndarray, labels: np.ndarray) -> BlockResult:
        """Σ L and correct count over the columns of X (n_x, m): a forward pass only."""
        spans = self._spans(X.shape[1])
        lanes = min(self.lanes, len(spans))
        output = self.model.output

        def run_lane(lane: int) -> BlockResult:
            total = BlockResult()
            work = self.workspace()
            for start, stop in spans[lane::lanes]:
                columns = slice(start, stop)
                Z = self.model.block_logits(X[:, columns], work)
                predicted = output.predicted_index(Z)
                correct = int(np.count_nonzero(predicted == labels[columns]))
                total.add(BlockResult(output.loss_sum(Z, Y[:, columns]), correct))
            return total

        total = BlockResult()
        for result in self._map(run_lane, lanes):
            total.add(result)
        return total

    def logits(self, X: np.ndarray) -> np.ndarray:
        """Z of the output layer for all columns of X (n_x, m): (n_y, m)."""
        Z = np.empty((output_units(self.model.n_classes), X.shape[1]), dtype=self.model.dtype)
        work = self.workspace()
        for start, stop in self._spans(X.shape[1]):
            Z[:, start:stop] = self.model.block_logits(X[:, start:stop], work)
        return Z
