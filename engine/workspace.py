"""Reusable scratch arrays, so the per-block hot path allocates nothing large."""

import numpy as np


class Workspace:
    """Named buffers that grow to the largest block seen and are then reused.

    One Workspace belongs to one thread: the arrays it hands out are
    overwritten by the next call with the same name.
    """

    def __init__(self) -> None:
        self._buffers: dict[str, np.ndarray] = {}

    def array(self, name: str, rows: int, columns: int, dtype: np.dtype) -> np.ndarray:
        """A (rows, columns) view of the buffer ``name``; contents are garbage."""
        buffer = self._buffers.get(name)
        if (
            buffer is None
            or buffer.shape[0] != rows
            or buffer.shape[1] < columns
            or buffer.dtype != dtype
        ):
            buffer = np.empty((rows, columns), dtype=dtype)
            self._buffers[name] = buffer
        return buffer[:, :columns]
