"""The streamed reading every upload format shares: batches in, matrix rows out to a sink.

``DatasetStream.read`` runs the column readers (service.datasets.reader_columns) over
each record batch, sends the rows to a sink, and, once the file is read, checks it in
the order a reading of the whole file would (service.datasets.reader says which) and
describes every column. service.datasets.reader has the formats (CSV, Parquet).
"""

from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from service.core.settings import Settings
from service.datasets.readahead import Prefetcher, RowSink, give_back_memory
from service.datasets.reader_columns import FeatureColumn, TextColumn, feature_reader
from service.datasets.reader_errors import override_error, shape_error, too_many_rows
from service.datasets.reader_labels import LabelColumn
from service.datasets.reader_summary import label_entry, unread_entry
from service.datasets.reader_types import Restart, Retype, declared_type

PREFETCH = 4  # batches decoded ahead of the one being converted and stored


@dataclass(frozen=True)
class StreamedDataset:
    """A validated dataset whose matrix went to a sink: everything but X."""

    features: list[str]  # the columns of X: every column but the label and ignore=, in order
    label: str
    label_type: str  # integer, number, string or boolean
    classes: list[Any]  # sorted distinct labels, as plain JSON values
    y_index: np.ndarray  # (m,) int32: each row's index into classes
    class_counts: dict[str, int]  # str(label) -> rows
    schema: list[dict[str, Any]]  # one entry per column of the file, in order (reader_summary)
    rows: int  # m


@dataclass(frozen=True)
class ParsedDataset(StreamedDataset):
    """A validated dataset with its matrix in memory."""

    X: np.ndarray  # (m, n_x) float64, C order

    @property
    def labels(self) -> np.ndarray:
        """(m,) the label column's values, in the dataset's own type."""
        return np.asarray(self.classes, dtype=object)[self.y_index]


class DatasetStream(AbstractContextManager["DatasetStream"]):
    """An upload's columns, and ``read``: its rows to a sink, and the rest of the dataset."""

    names: list[str]  # every column, in file order
    label: str | None  # None if the file has no columns
    label_type: pa.DataType  # the label column's, as read
    from_text = False  # whether labels are typed from their text (CSV)

    def __init__(self, *, label: str | None, settings: Settings, overrides: dict[str, list[str]]):
        self.max_rows = settings.max_rows
        self.max_classes = settings.max_classes
        self.max_levels = settings.max_levels
        self.asked_label = label
        self.categorical = overrides["categorical"]
        self.ignore = overrides["ignore"]
        self.viable: dict[str, list[str]] = {}  # text columns' kinds still possible, by name
        self.presets: dict[str, list[str]] = {}  # levels to code in, by name (a second reading)

    def _resolve_label(self) -> None:
        self.label = self.names[-1] if self.asked_label is None and self.names else self.asked_label

    @property
    def usable(self) -> bool:
        """Whether the file has a label column and a feature column to read."""
        return len(self.names) >= 2 and self.label in self.names

    @property
    def features(self) -> list[str]:
        """The columns read into X: all but the label and those named in ``ignore``."""
        if not self.usable:
            return []
        return [name for name in self.names if name != self.label and name not in self.ignore]

    @property
    def read_names(self) -> list[str]:
        """The columns read from the file, in its order: the features and the label."""
        return [name for name in self.names if name == self.label or name not in self.ignore]

    # Each format's: its rows in typed record batches, columns by name (in the Prefetcher's
    # thread; may raise Restart or a ServiceError); the type a feature column arrives as;
    # reading a column by the text rules from now on (CSV only); closing the file.
    def batches(self) -> Iterator[pa.RecordBatch]:
        raise NotImplementedError

    def feature_type(self, name: str) -> pa.DataType:
        raise NotImplementedError

    def declared_type(self, name: str) -> pa.DataType:
        """A column's type as the header (or footer) says, for columns that are not read."""
        return self.feature_type(name)

    def retype(self, name: str) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def __exit__(self, *exc_info: object) -> None:
        self.close()
        give_back_memory()

    def _column(self, name: str) -> FeatureColumn:
        return feature_reader(
            name,
            self.feature_type(name),
            max_levels=self.max_levels,
            strict=self.from_text,
            categorical=name in self.categorical,
            viable=self.viable.get(name),  # a reading before this one ruled some kinds out
            preset=self.presets.get(name),
        )

    def read(self, sink: RowSink) -> StreamedDataset:
        """Send the matrix to ``sink`` batch by batch; the rest of the dataset, or the
        ServiceError that says what is wrong (the sink may then have had some rows)."""
        while True:
            columns = [self._column(name) for name in self.features]
            try:
                return self._read(sink, columns)
            except Retype as retyped:
                self.retype(retyped.name)
            except Restart:
                pass
            for column in columns:  # what this reading learned holds for the next
                if isinstance(column, TextColumn):
                    self.viable[column.name] = column.viable
            sink.reset()

    def _read(self, sink: RowSink, columns: list[FeatureColumn]) -> StreamedDataset:
        labels = None
        if self.usable:
            labels = LabelColumn(self.label, self.label_type, from_text=self.from_text)
        rows = 0
        live = len(columns)  # columns still read: those before the first one refused for good
        block = np.empty((0, len(columns)), dtype=np.float64)  # (b, n_x), reused
        # A column's sum past float64's range is inf, and its mean found another way: no warning.
        with Prefetcher(self.batches(), depth=PREFETCH) as batches, np.errstate(over="ignore"):
            for batch in batches:
                if rows + batch.num_rows > self.max_rows:
                    raise too_many_rows(f"more than {self.max_rows:,}", self.max_rows)
                if batch.num_rows > len(block):
                    # Reused from batch to batch: fresh memory would be page-faulted in each time.
                    block = np.empty((batch.num_rows, len(columns)), dtype=np.float64)
                values = block[: batch.num_rows]  # (b, n_x)
                for j, column in enumerate(columns[:live]):
                    column.take(batch.column(column.name), rows, values[:, j])
                    if column.settled:
                        live = j  # refused: columns after it (and the label) cannot say first
                        break
                if live == len(columns):
                    sink.write(values)
                    if labels is not None:
                        labels.take(batch.column(self.label), rows)
                rows += batch.num_rows
        if (error := shape_error(self.names, self.label, rows)) is not None:
            raise error
        given = {"categorical": self.categorical, "ignore": self.ignore}
        if (error := override_error(self.names, self.label, **given)) is not None:
            raise error
        for column in columns:
            if (error := column.problem(rows)) is not None:
                raise error
        classes, y_index, label_type = labels.classes(max_classes=self.max_classes)
        unsorted = {column.name: column.sorted_levels() for column in columns}
        if any(levels is not None for levels in unsorted.values()):
            self.presets.update({n: levels for n, levels in unsorted.items() if levels})
            raise Restart  # read again, coding the levels in their sorted order
        counts = np.bincount(y_index, minlength=len(classes))
        class_counts = {str(c): int(n) for c, n in zip(classes, counts, strict=True)}
        entries = {column.name: column.entry(rows) for column in columns}
        entries[self.label] = label_entry(self.label, label_type, classes, counts)
        for name in set(self.names) - set(entries):  # named in ignore: not read
            entries[name] = unread_entry(name, declared_type(self.declared_type(name)))
        return StreamedDataset(
            features=self.features,
            label=self.label,
            label_type=label_type,
            classes=classes,
            y_index=y_index,
            class_counts=class_counts,
            schema=[entries[name] for name in self.names],
            rows=rows,
        )
