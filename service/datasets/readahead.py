"""Reading ahead within bounds, and the sinks rows go to, for service.datasets.reader's streamed
reading of an upload.

Decoding the next record batches while the last one is converted and stored
keeps two cores busy (pyarrow decodes without the GIL, and the database
drivers wait without it); bounding how far ahead keeps memory from growing
with the file.
"""

import ctypes
import io
import queue
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, suppress
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pyarrow as pa
import pyarrow.csv as pv

PACE_TIMEOUT = 1.0  # seconds a PacedFile read waits for its turn before it goes ahead anyway
MIN_AHEAD = 3  # blocks read beyond the batches taken that Arrow may need for the next batch
SCAN_BYTES = 2**20  # read at a time when looking for quotes
try:  # glibc only; elsewhere memory is left to the allocator
    MALLOC_TRIM = ctypes.CDLL("libc.so.6").malloc_trim
except (OSError, AttributeError):
    MALLOC_TRIM = None


class RowSink(Protocol):
    """Where the matrix goes: (b, n_x) float64 C-order rows, in file order.

    The rows are only lent for the call (their memory holds the next batch's): a sink
    copies what it keeps. ``reset`` forgets every row so far: the file is read again.
    """

    def write(self, values: np.ndarray) -> None: ...

    def reset(self) -> None: ...


class MatrixSink:
    """A RowSink that keeps the rows, for a matrix in memory."""

    def __init__(self) -> None:
        self.blocks: list[np.ndarray] = []

    def write(self, values: np.ndarray) -> None:
        self.blocks.append(values.copy())

    def reset(self) -> None:
        self.blocks = []

    def matrix(self, n_x: int) -> np.ndarray:
        """(m, n_x) float64, C order."""
        if not self.blocks:
            return np.empty((0, n_x), dtype=np.float64)
        return np.concatenate(self.blocks)


class DiscardSink:
    """A RowSink that keeps nothing: for checking a file whose dataset is stored already."""

    def write(self, values: np.ndarray) -> None:
        pass

    def reset(self) -> None:
        pass


class PacedFile(io.RawIOBase):
    """A file that Arrow's CSV reader may read at most ``ahead`` blocks ahead of the
    batches taken from it.

    Arrow's streaming CSV reader reads its input in a background thread up to 32
    blocks ahead (256 MiB at 8 MiB blocks), with no option to say less (ARROW-12090).
    Here each read waits (without the GIL) until fewer than ``ahead`` blocks have
    been read beyond the batches taken (``took_block``). Each block makes a batch,
    of the rows that end in it; Arrow reads one block beyond a batch before handing
    it over, and a row may straddle one block boundary (not two), so a batch may need
    three blocks read: ``ahead`` must be at least MIN_AHEAD. A read that waits longer
    than PACE_TIMEOUT goes ahead anyway: should Arrow ever need more, that costs
    memory, never a deadlock.
    """

    def __init__(self, path: Path, *, ahead: int = MIN_AHEAD):
        super().__init__()
        if ahead < MIN_AHEAD:
            raise ValueError(f"ahead must be at least {MIN_AHEAD}, not {ahead}")
        self.file = pa.OSFile(str(path))
        self.ahead = ahead
        self.reads = 0
        self.taken = 0
        self.overdue = 0  # reads that went ahead after PACE_TIMEOUT (none, if Arrow is as said)
        self.turn = threading.Condition()

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> pa.Buffer | bytes:
        with self.turn:
            if not self.turn.wait_for(
                lambda: self.closed or self.reads - self.taken < self.ahead, PACE_TIMEOUT
            ):
                self.overdue += 1
            self.reads += 1
        if self.closed:
            return b""
        # An Arrow buffer, from Arrow's memory pool: Python bytes of this size would come
        # from the reading thread's malloc arena, which keeps them after they are freed.
        return self.file.read_buffer(size if size >= 0 else None)

    def took_block(self) -> None:
        with self.turn:
            self.taken += 1
            self.turn.notify_all()

    def close(self) -> None:
        """Also ends a read waiting for its turn (it returns nothing, as at the file's end)."""
        with self.turn:
            super().close()
            self.turn.notify_all()
        self.file.close()


class Prefetcher(AbstractContextManager["Prefetcher"]):
    """Iterates ``items`` in a thread of its own, up to ``depth`` items ahead of the consumer.

    Leaving the ``with`` block (at the end, or early on an error) stops the producer
    after the item it is on and waits for it, so whatever it iterates may be closed
    next. An exception in the producer is raised in the consumer.
    """

    def __init__(self, items: Iterator[Any], *, depth: int):
        self.items = items
        self.handoff: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=depth)
        self.stop = threading.Event()
        self.producer = threading.Thread(target=self._produce, name="upload-reader", daemon=True)

    def __enter__(self) -> Iterator[Any]:
        self.producer.start()
        return self._consume()

    def __exit__(self, *exc_info: object) -> None:
        self.stop.set()
        while self.producer.is_alive():  # free a producer waiting to hand over an item
            with suppress(queue.Empty):
                self.handoff.get(timeout=0.01)
        self.producer.join()

    def _produce(self) -> None:
        try:
            for item in self.items:
                self.handoff.put(("item", item))
                if self.stop.is_set():
                    return
            self.handoff.put(("end", None))
        except BaseException as error:  # handed to the consumer, who raises it
            self.handoff.put(("error", error))

    def _consume(self) -> Iterator[Any]:
        while True:
            what, value = self.handoff.get()
            if what == "end":
                return
            if what == "error":
                raise value
            yield value


def quote_free(path: Path) -> bool:
    """Whether no quote character follows the header's first line end.

    Without quotes rows end at line ends, whatever the block size, so such files are
    read in small blocks (less memory); files with quotes are read in BLOCK_BYTES ones,
    where a line end inside quotes ends a row only at a block's end, as it always has.
    """
    buffer = bytearray(SCAN_BYTES)
    in_header = True
    with path.open("rb", buffering=0) as file:
        while size := file.readinto(buffer):
            start = 0
            if in_header:
                ends = [buffer.find(b"\n", 0, size), buffer.find(b"\r", 0, size)]
                if max(ends) < 0:
                    continue
                start, in_header = min(end for end in ends if end >= 0), False
            if buffer.find(b'"', start, size) >= 0:
                return False
    return True


def give_back_memory() -> None:
    """Return the memory a read freed to the system, where allocators would keep it.

    mimalloc (Arrow's) keeps freed pages a while and those of finished threads longer:
    hundreds of MB after a large Parquet file. glibc's malloc keeps what the reading
    threads freed in their arenas (tens of MB), so later uploads would start higher.
    """
    pa.default_memory_pool().release_unused()
    if MALLOC_TRIM is not None:
        MALLOC_TRIM(0)


def first_block_schema(path: Path, **options: Any) -> pa.Schema:
    """The CSV header's names and the types Arrow infers from its first block (``options``
    as pyarrow.csv.open_csv takes them), read from a PacedFile, so that Arrow reads a
    few blocks ahead, not the 32 it would.
    """
    paced = PacedFile(path)
    try:
        with pv.open_csv(paced, **options) as reader:
            return reader.schema
    finally:
        paced.close()
