import numpy as np
import pytest


@pytest.fixture
def blobs() -> tuple[np.ndarray, np.ndarray]:
    """Two overlapping Gaussian classes, rows (m, n_x) = (300, 5), labels 0/1."""
    rng = np.random.default_rng(42)
    labels = np.arange(300) % 2
    rows = rng.standard_normal((300, 5)) + labels[:, None] * 1.5
    return rows * 10 + 3, labels  # far from standardized: the engine must scale it


@pytest.fixture
def xor() -> tuple[np.ndarray, np.ndarray]:
    """The XOR problem: no line separates the classes."""
    rows = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]] * 10)
    return rows, (rows[:, 0] != rows[:, 1]).astype(int)
