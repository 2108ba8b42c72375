"""Parameters as one flat vector with named, shaped views into it.

Optimizers, checkpoints and L-BFGS all want one contiguous vector θ; the
models want W1, b1, W2, b2 with their shapes. Keeping the named arrays as
views of θ gives both with no copying: an update to θ is an update to W1.
"""

from collections.abc import Iterator, Mapping

import numpy as np

Shapes = Mapping[str, tuple[int, ...]]


class Parameters(Mapping[str, np.ndarray]):
    """A flat vector ``theta`` (P,) and its named views, e.g. W1 (n_h, n_x), b1 (n_h, 1)."""

    def __init__(self, shapes: Shapes, dtype: np.dtype | type, theta: np.ndarray | None = None):
        self.shapes = dict(shapes)
        size = sum(int(np.prod(shape)) for shape in self.shapes.values())
        if theta is None:
            theta = np.zeros(size, dtype=dtype)
        if theta.shape != (size,) or theta.dtype != np.dtype(dtype):
            raise ValueError(
                f"theta must be ({size},) {np.dtype(dtype)}, got {theta.shape} {theta.dtype}"
            )
        self.theta = theta
        self._views: dict[str, np.ndarray] = {}
        offset = 0
        for name, shape in self.shapes.items():
            count = int(np.prod(shape))
            self._views[name] = theta[offset : offset + count].reshape(shape)
            offset += count

    def __getitem__(self, name: str) -> np.ndarray:
        return self._views[name]

    def __setitem__(self, name: str, value: np.ndarray) -> None:
        """Write into the view (``grads["W1"] += dW1`` lands in theta)."""
        view = self._views[name]
        if value is not view:
            view[...] = value

    def __iter__(self) -> Iterator[str]:
        return iter(self._views)

    def __len__(self) -> int:
        return len(self._views)

    @property
    def dtype(self) -> np.dtype:
        return self.theta.dtype

    def zeros_like(self) -> "Parameters":
        """A new zeroed set of the same names and shapes (e.g. a gradient buffer)."""
        return Parameters(self.shapes, self.dtype)

    def copy(self) -> "Parameters":
        return Parameters(self.shapes, self.dtype, self.theta.copy())

    def norms(self) -> dict[str, float]:
        """The L2 norm of each named array."""
        return {name: float(np.linalg.norm(view)) for name, view in self._views.items()}
