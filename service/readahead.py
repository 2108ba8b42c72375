"""Reading ahead within bounds, for service.reader's streamed reading of an upload.

Decoding the next record batches while the last one is converted and stored
keeps two cores busy (pyarrow decodes without the GIL, and the database
drivers wait without it); bounding how far ahead keeps memory from growing
with the file.
"""

import io
import queue
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, suppress
from pathlib import Path
from typing import Any

import pyarrow as pa

PACE_TIMEOUT = 1.0  # seconds a PacedFile read waits for its turn before it goes ahead anyway
MIN_AHEAD = 3  # blocks read beyond the batches taken that Arrow may need for the next batch


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
