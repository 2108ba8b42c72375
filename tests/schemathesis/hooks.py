"""Schemathesis hooks: upload bodies worth sending, and ids of rows that exist.

Loaded by `st run` through the config's `hooks` key (tests/schemathesis/schemathesis.toml),
with the repository as the working directory.

* Bodies. Schemathesis has no serializer for application/csv, and for the binary
  media types it sends random bytes only. These strategies send, besides random
  bytes, the parser's hard cases (tests/property/strategies.py): ragged rows, odd
  tokens, BOMs, invalid UTF-8, valid numeric tables, nested Parquet columns.
* Ids. A random `job_id` only ever reaches the 404 branch. The test seeds a
  dataset, jobs (succeeded, diverged), a model and a sweep, and passes their ids
  in SCHEMATHESIS_KNOWN_IDS (JSON: parameter name -> ids); `map_case` puts one of
  them in place of a generated id in about half of the positive cases, chosen
  from the case's own contents so that a seed replays the same run. A DELETE gets
  a spare dataset's id (`spare_dataset_id`) instead: the dataset that jobs and sweeps
  train on must last the whole run, or they would only ever reach its 404.
* Idempotency keys. A key already used with another body is a 422 that depends on
  earlier requests, not on this one: a positive case's `Idempotency-Key` is made
  from its body, so the same key always comes with the same body.
* Cursors. `cursor` is an opaque token: a generated one is never one the service
  issued, and its 422 is a rule JSON Schema cannot state. A positive case's cursor is
  therefore always one the service issued (seeded as "cursor"), or empty: the first
  page. Negative cases keep theirs, so their 422s are still checked.
"""

import json
import os
import sys
import zlib
from pathlib import Path
from typing import Any

import schemathesis
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository, for tests.*

from tests.property.strategies import (
    csv_documents,
    numeric_csv,
    numeric_tables,
    parquet_documents,
)

CSV_TYPES = ("text/csv", "application/csv")
PARQUET_TYPES = ("application/vnd.apache.parquet", "application/x-parquet")
KNOWN_IDS: dict[str, list[str]] = json.loads(os.environ.get("SCHEMATHESIS_KNOWN_IDS", "{}"))

valid_csv = numeric_tables().map(lambda table: numeric_csv(*table))
csv_bodies = st.one_of(csv_documents(), valid_csv, st.binary(max_size=256))
parquet_bodies = st.one_of(parquet_documents(), st.binary(max_size=256))

schemathesis.openapi.media_type(CSV_TYPES[0], csv_bodies, aliases=CSV_TYPES[1:])
schemathesis.openapi.media_type(
    PARQUET_TYPES[0], parquet_bodies, aliases=[*PARQUET_TYPES[1:], "application/octet-stream"]
)


@schemathesis.hook
def before_load_schema(context: Any, raw_schema: dict[str, Any]) -> None:
    """Drop the CSV bodies' text examples.

    With a strategy registered for a media type, schemathesis sends bytes only, and an
    example written as JSON text cannot be sent (the examples phase would fail with
    "Serialization not possible"). Valid CSV files are among the strategy's own bodies.
    """
    for operations in raw_schema.get("paths", {}).values():
        for operation in operations.values():
            if not isinstance(operation, dict):
                continue
            content = operation.get("requestBody", {}).get("content", {})
            for media_type in CSV_TYPES:
                content.get(media_type, {}).pop("example", None)


ALWAYS_KNOWN = {"cursor"}  # parameters whose generated values the service never issued


def _known(name: str, generated: Any) -> Any:
    """One of the seeded ids for parameter ``name`` instead of ``generated``, half the time."""
    ids = KNOWN_IDS.get(name)
    if not ids:
        return generated
    choices = len(ids) if name in ALWAYS_KNOWN else 2 * len(ids)
    pick = zlib.crc32(repr(generated).encode()) % choices
    return ids[pick] if pick < len(ids) else generated


@schemathesis.hook
def map_case(context: Any, case: Any) -> Any:
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive:
        return case  # a negative case must stay invalid
    deleting = str(getattr(case, "method", "")).upper() == "DELETE"
    for parameters in (case.path_parameters, case.query):
        for name, value in list((parameters or {}).items()):
            if isinstance(value, str):
                # A DELETE gets the spare dataset: the one jobs train on must outlive it.
                parameters[name] = _known(f"spare_{name}" if deleting else name, value)
    if isinstance(case.body, dict) and isinstance(case.body.get("dataset_id"), str):
        case.body["dataset_id"] = _known("dataset_id", case.body["dataset_id"])
    headers = case.headers or {}
    for name in [name for name in headers if name.lower() == "idempotency-key"]:
        body = json.dumps(case.body, sort_keys=True, default=repr).encode()
        headers[name] = f"{headers[name][:40]}-{zlib.crc32(body):08x}"
    return case
