"""Reading ahead within bounds: Arrow reads a PacedFile a few blocks ahead, never the whole
file, and a Prefetcher hands over its producer's items, errors and end."""

import itertools
import threading

import pyarrow as pa
import pyarrow.csv as pv
import pytest

from service.datasets.readahead import MIN_AHEAD, PacedFile, Prefetcher

BLOCK = 64  # bytes: a file of a few kB is many blocks


class CountingPacedFile(PacedFile):
    """A PacedFile that remembers the most blocks it was ever read ahead of those taken."""

    most_ahead = 0

    def read(self, size: int = -1) -> pa.Buffer | bytes:
        data = super().read(size)
        with self.turn:
            self.most_ahead = max(self.most_ahead, self.reads - self.taken)
        return data


def read_paced(path, ahead=MIN_AHEAD) -> tuple[pa.Table, CountingPacedFile]:
    paced = CountingPacedFile(path, ahead=ahead)
    batches = []
    options = pv.ReadOptions(block_size=BLOCK, use_threads=False)
    with pv.open_csv(paced, read_options=options) as reader:
        for batch in reader:
            paced.took_block()
            batches.append(batch)
    paced.close()
    return pa.Table.from_batches(batches), paced


@pytest.mark.parametrize(
    "rows",
    [
        ["1,2"] * 300,  # short rows, many to a block
        [f"{'7' * 40},{i}" for i in range(60)],  # rows that straddle a block boundary
        ["1,2", *[""] * 200, "3,4"] * 3,  # empty lines, whole blocks of them
    ],
    ids=["short-rows", "straddling-rows", "empty-lines"],
)
@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_arrow_reads_a_paced_file_a_few_blocks_ahead_and_never_waits_out_the_timeout(
    tmp_path, rows, newline
):
    path = tmp_path / "data.csv"
    path.write_text(newline.join(["a,b", *rows]) + newline)
    table, paced = read_paced(path)
    expected = pv.read_csv(path, read_options=pv.ReadOptions(block_size=BLOCK))
    assert table.equals(expected)
    assert paced.reads > 10  # many blocks: the bound below means something
    assert paced.most_ahead <= MIN_AHEAD
    assert paced.overdue == 0


def test_a_paced_file_needs_room_for_the_blocks_arrow_needs(tmp_path):
    with pytest.raises(ValueError, match="ahead must be at least 3"):
        PacedFile(tmp_path, ahead=2)


def test_closing_a_paced_file_ends_a_read_waiting_for_its_turn(tmp_path):
    path = tmp_path / "data.bin"
    path.write_bytes(b"x" * 1000)
    paced = PacedFile(path, ahead=MIN_AHEAD)
    for _ in range(MIN_AHEAD):
        paced.read(10)
    got = []
    waiting = threading.Thread(target=lambda: got.append(paced.read(10)))
    waiting.start()
    waiting.join(timeout=0.2)
    assert waiting.is_alive()  # its turn has not come: no block was taken
    paced.close()
    waiting.join(timeout=5)
    assert got == [b""]
    assert paced.overdue == 0


def test_a_prefetcher_hands_over_every_item_in_order():
    with Prefetcher(iter(range(100)), depth=2) as items:
        assert list(items) == list(range(100))


def test_a_prefetchers_producer_error_is_raised_in_the_consumer():
    def failing():
        yield 1
        raise ValueError("bad block")

    with Prefetcher(failing(), depth=2) as items:
        assert next(items) == 1
        with pytest.raises(ValueError, match="bad block"):
            next(items)


def test_leaving_a_prefetcher_early_stops_its_producer_soon_after():
    produced = itertools.count()

    def endless():
        while True:
            yield next(produced)

    prefetcher = Prefetcher(endless(), depth=2)
    with prefetcher as items:
        assert [next(items) for _ in range(3)] == [0, 1, 2]
    assert not prefetcher.producer.is_alive()
    assert next(produced) <= 3 + 2 + 2  # taken, queued, and the ones in hand when told
