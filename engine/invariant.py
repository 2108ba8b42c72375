"""The forward pass predictions use: a row's probabilities do not depend on the rows around it.

BLAS's GEMM does not promise that. Its kernels cut the output into tiles, and an edge
tile sums a column's products in another order than a full tile does; a one-row product
goes to GEMV, which sums in yet another order; and OpenBLAS picks its kernels from the CPU
(and ``OPENBLAS_CORETYPE``). So with ``W @ X`` the same row could get probabilities that
differ in the last bits depending on which rows share its batch or where it sits in it.

Here every sum runs in an order fixed by the shapes alone:

    P[k, i, j] = W[i, k] X[k, j]              every product, in one multiply
    Z[i, j]    = tree_sum over k of P[k, i, j] a pairwise tree whose pairs depend on n_in only
    Z         += b

Element-wise multiply and add are correctly rounded (IEEE 754) wherever NumPy runs them, in
a SIMD lane or not, so a column's bits depend on that column and the parameters only: not
on the batch, its order or size, the thread count or the BLAS kernel (tanh and exp are
NumPy's own loops, which NumPy picks from the CPU's instruction sets). The softmax's sum
over classes uses the same tree. Blocks are contiguous and their rows a multiple of
64 bytes, so NumPy's vector loops (tanh, exp) see whole vectors, never a scalar tail (the
loops of NumPy 2.4 handle tails alike; the padding keeps that true of any loop).

Training keeps BLAS (its results need not be batch-invariant, and GEMM is the floor there);
``Classifier.predict_proba`` goes through here.
"""

from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # outputs.py imports tree_sum from here; models.py imports outputs.py
    from engine.models import Model

VECTOR_BYTES = 64  # a block's rows are a multiple of this: whole AVX-512 vectors, no tail
PRODUCT_BYTES = 1 << 20  # one block's product array P: about L2-cache sized
MAX_BLOCK_COLUMNS = 4096


def tree_sum(P: np.ndarray) -> np.ndarray:
    """Σ over axis 0 of P (n, ...) as a pairwise tree fixed by n: (...), a view into P.

    Each step adds the second half onto the first, element-wise; an odd leftover moves up
    a level. P is overwritten. The pairing depends only on n, so every element of the
    result is summed in the same order whatever the other axes hold.
    """
    n = P.shape[0]
    while n > 1:
        half = n // 2
        P[:half] += P[half : 2 * half]  # (half, ...) += (half, ...)
        if n % 2:
            P[half] = P[n - 1]
        n = half + n % 2
    return P[0]


def affine(W: np.ndarray, X: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Z = W X + b for W (n_out, n_in), X (n_in, B), b (n_out, 1): (n_out, B), a new array."""
    P = np.multiply(W.T[:, :, None], X[:, None, :])  # (n_in, n_out, B): P[k] = W[:, k] X[k]
    Z = tree_sum(P)  # (n_out, B) = Σ_k W[:, k] X[k]
    Z += b
    return Z


def lane_columns(dtype: np.dtype) -> int:
    """Block widths are a multiple of this: 8 float64 or 16 float32 columns."""
    return VECTOR_BYTES // dtype.itemsize


def block_columns(model: "Model") -> int:
    """Columns per block: a multiple of lane_columns whose largest P is about PRODUCT_BYTES."""
    per_column = max(W.size for W, _, _ in model.layers()) * model.dtype.itemsize
    lanes = lane_columns(model.dtype)
    return min(max(PRODUCT_BYTES // per_column // lanes * lanes, lanes), MAX_BLOCK_COLUMNS)


def padded_blocks(rows: np.ndarray, columns: int) -> Iterator[tuple[int, np.ndarray]]:
    """(start, X) for blocks of ``rows`` (m, n_x): X (n_x, w), contiguous, zero-padded to w,
    a multiple of lane_columns. The padding columns are computed and thrown away."""
    lanes = lane_columns(rows.dtype)
    for start in range(0, rows.shape[0], columns):
        chunk = rows[start : start + columns]  # (b, n_x)
        width = -(-len(chunk) // lanes) * lanes
        X = np.zeros((rows.shape[1], width), dtype=rows.dtype)
        X[:, : len(chunk)] = chunk.T
        yield start, X


def probabilities(model: "Model", rows: np.ndarray) -> np.ndarray:
    """A (n_y, m) for standardized rows (m, n_x) in the model's dtype, batch-invariant."""
    layers = model.layers()
    n_y = layers[-1][0].shape[0]
    A = np.empty((n_y, rows.shape[0]), dtype=model.dtype)
    for start, X in padded_blocks(rows, block_columns(model)):
        for W, b, g in layers:
            X = affine(W, X, b)  # (n_out, w)
            if g is not None:
                g(X)  # in place
        stop = min(start + X.shape[1], rows.shape[0])
        A[:, start:stop] = model.output.probabilities(X)[:, : stop - start]
    return A
