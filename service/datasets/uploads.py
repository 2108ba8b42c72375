"""Receiving an upload: the request body streamed to a temporary file, never held whole.

``POST /v1/datasets`` takes either a multipart/form-data body with a part named
"file" (and optional "name", "label", "categorical" and "ignore" parts), or the file
itself as the body with a Content-Type that says CSV or Parquet. Bytes are counted and
hashed as they arrive and written to disk by a thread of the upload's own; past
``max_upload_bytes`` the request is refused at once (413), whether or not it
declared a Content-Length.
The client's file name is kept only as a default dataset name, never as a path.
"""

import os
import tempfile
from collections import deque
from collections.abc import AsyncIterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from hashlib import sha256
from pathlib import Path, PurePosixPath
from typing import IO, Any

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request

from service.core.errors import BadRequest, PayloadTooLarge, Unprocessable, UnsupportedMediaType

MULTIPART = "multipart/form-data"
CSV_TYPES = ("text/csv", "application/csv")
PARQUET_TYPES = ("application/vnd.apache.parquet", "application/x-parquet")
SNIFFED_TYPE = "application/octet-stream"  # Parquet if it starts with PARQUET_MAGIC, else CSV
BODY_TYPES = (*CSV_TYPES, *PARQUET_TYPES, SNIFFED_TYPE)
ALLOWED_TYPES = (MULTIPART, *BODY_TYPES)
PARQUET_MAGIC = b"PAR1"

# What browsers and curl send as a file part's type when they do not know the kind
# (.csv is application/vnd.ms-excel on Windows): these are sniffed like SNIFFED_TYPE.
UNTYPED_PARTS = ("", SNIFFED_TYPE, "text/plain", "application/vnd.ms-excel")
FILE_PART = "file"
FIELD_PARTS = ("name", "label", "categorical", "ignore")
FIELD_MAX_BYTES = {"name": 1024, "label": 1024, "categorical": 64 * 1024, "ignore": 64 * 1024}
# Room for boundaries, part headers and the small fields around the file in a
# multipart body; the file part itself is held to max_upload_bytes.
MULTIPART_ALLOWANCE = 64 * 1024
FLUSH_BYTES = 1024 * 1024  # bytes gathered before each write (by the spool's thread)
WRITES_IN_FLIGHT = 8  # writes handed to that thread before the receiving waits for it


@dataclass
class Upload:
    """A received upload, on disk until the ``receive_upload`` block ends."""

    path: Path  # a temporary file this service named
    format: str  # csv or parquet
    sha256: str  # hex digest of the file's bytes
    size_bytes: int
    filename: str | None = None  # the client's name for it: shown, never used as a path
    fields: dict[str, str] = field(default_factory=dict)  # FIELD_PARTS sent as multipart parts

    @property
    def default_name(self) -> str:
        """The client's file name without folders or extension, else "dataset"."""
        if not self.filename:
            return "dataset"
        base = PurePosixPath(self.filename.replace("\\", "/")).name
        stem = base.rsplit(".", 1)[0] if "." in base.lstrip(".") else base
        return stem.strip()[:200] or "dataset"


@asynccontextmanager
async def receive_upload(request: Request, *, max_bytes: int) -> AsyncIterator[Upload]:
    """Stream the request's file to a temporary file, deleted when the block ends."""
    media_type, options = _media_type(request.headers.get("content-type"))
    if media_type not in ALLOWED_TYPES:
        raise unsupported_media_type(f"Content-Type {media_type or '(none)'!r} is not supported")
    allowance = MULTIPART_ALLOWANCE if media_type == MULTIPART else 0
    declared = _content_length(request)
    if declared is not None and declared > max_bytes + allowance:
        raise too_large(max_bytes, declared=declared)

    descriptor, name = tempfile.mkstemp(prefix="backprop-upload-")
    path = Path(name)
    try:
        with os.fdopen(descriptor, "wb") as file:
            spool = Spool(file, limit=max_bytes)
            try:
                if media_type == MULTIPART:
                    form = await _receive_multipart(request, spool, options, max_bytes + allowance)
                    filename, fields, declared_type = form.filename, form.fields, form.file_type
                else:
                    await _receive_body(request, spool)
                    filename, fields, declared_type = None, {}, media_type
            finally:
                await spool.close()
        if spool.size == 0:
            raise Unprocessable("the uploaded file is empty", field=FILE_PART)
        yield Upload(
            path=path,
            format=_format_of(declared_type, spool.head),
            sha256=spool.hash.hexdigest(),
            size_bytes=spool.size,
            filename=filename,
            fields=fields,
        )
    finally:
        path.unlink(missing_ok=True)


class Spool:
    """Counts, hashes and writes a file's bytes as they arrive.

    The event loop only counts, hashes (a tenth of a millisecond per 256 kB read) and
    gathers the bytes; every FLUSH_BYTES gathered are written by a thread of the
    upload's own, so the disk and the network work at once. At most WRITES_IN_FLIGHT writes wait for
    that thread before the receiving waits for it in turn (a disk slower than the
    network), which bounds the memory held to about that many FLUSH_BYTES.
    """

    def __init__(self, file: IO[bytes], *, limit: int):
        self.file = file
        self.limit = limit
        self.size = 0
        self.hash = sha256()
        self.head = b""  # the first bytes, for sniffing Parquet's magic number
        self.pending: list[bytes] = []
        self.pending_bytes = 0
        self.writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="upload-spool")
        self.writes: deque[Future[None]] = deque()

    def add(self, data: bytes) -> None:
        """Take ``data``; 413 as soon as the file passes the limit."""
        self.size += len(data)
        if self.size > self.limit:
            raise too_large(self.limit)
        if len(self.head) < len(PARQUET_MAGIC):
            self.head += data[: len(PARQUET_MAGIC) - len(self.head)]
        self.hash.update(data)
        self.pending.append(data)
        self.pending_bytes += len(data)

    async def flush(self, *, force: bool = False) -> None:
        """Hand what is pending to the writer once there is enough of it; with ``force``,
        all of it, and wait until it is all written."""
        if self.pending and (force or self.pending_bytes >= FLUSH_BYTES):
            self.writes.append(self.writer.submit(self.file.writelines, self.pending))
            self.pending, self.pending_bytes = [], 0
        while self.writes and (force or len(self.writes) > WRITES_IN_FLIGHT):
            await run_in_threadpool(self.writes.popleft().result)  # raises the write's error

    async def close(self) -> None:
        """Stop the writer thread (dropping writes not yet begun, after a refusal)."""
        await run_in_threadpool(self.writer.shutdown, wait=True, cancel_futures=True)


async def _receive_body(request: Request, spool: Spool) -> None:
    try:
        async for chunk in request.stream():
            spool.add(chunk)
            await spool.flush()
    except ClientDisconnect:
        raise BadRequest("the client disconnected before the upload ended") from None
    await spool.flush(force=True)


class MultipartForm:
    """python-multipart callbacks: the "file" part goes to the spool, small fields to memory."""

    def __init__(self, spool: Spool):
        self.spool = spool
        self.filename: str | None = None
        self.file_type = ""  # the "file" part's own Content-Type
        self.fields: dict[str, str] = {}
        self.has_file = False
        self.ended = False  # the closing boundary was seen
        self._header_name = bytearray()
        self._header_value = bytearray()
        self._headers: dict[bytes, bytes] = {}
        self._part: str | None = None  # FILE_PART, a FIELD_PARTS name, or None: skipped
        self._value = bytearray()

    def callbacks(self) -> dict[str, Any]:
        return {
            "on_part_begin": self.on_part_begin,
            "on_header_field": self.on_header_field,
            "on_header_value": self.on_header_value,
            "on_header_end": self.on_header_end,
            "on_headers_finished": self.on_headers_finished,
            "on_part_data": self.on_part_data,
            "on_part_end": self.on_part_end,
            "on_end": self.on_end,
        }

    def on_part_begin(self) -> None:
        self._headers = {}
        self._part = None
        self._value = bytearray()

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def on_header_end(self) -> None:
        self._headers[bytes(self._header_name).lower()] = bytes(self._header_value)
        self._header_name, self._header_value = bytearray(), bytearray()

    def on_headers_finished(self) -> None:
        _, options = parse_options_header(self._headers.get(b"content-disposition", b""))
        if b"name" not in options:
            raise BadRequest("a multipart part has no name in its Content-Disposition header")
        name = options[b"name"].decode("utf-8", "replace")
        if name == FILE_PART:
            if self.has_file:
                raise Unprocessable('send one part named "file", not several', field=FILE_PART)
            self.has_file = True
            self.filename = options.get(b"filename", b"").decode("utf-8", "replace") or None
            self.file_type, _ = _media_type(self._headers.get(b"content-type"))
            if self.file_type not in (*BODY_TYPES, *UNTYPED_PARTS):
                raise unsupported_media_type(
                    f'the "file" part\'s Content-Type {self.file_type!r} is not supported'
                )
        self._part = name if name in (FILE_PART, *FIELD_PARTS) else None

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self._part == FILE_PART:
            self.spool.add(data[start:end])
        elif self._part is not None:
            self._value += data[start:end]
            if len(self._value) > FIELD_MAX_BYTES[self._part]:
                raise Unprocessable(
                    f'form field "{self._part}" is longer than {FIELD_MAX_BYTES[self._part]} bytes',
                    field=self._part,
                )

    def on_part_end(self) -> None:
        if self._part in FIELD_PARTS:
            try:
                self.fields[self._part] = self._value.decode("utf-8")
            except UnicodeDecodeError:
                raise Unprocessable(
                    f'form field "{self._part}" is not UTF-8 text', field=self._part
                ) from None

    def on_end(self) -> None:
        self.ended = True


async def _receive_multipart(
    request: Request, spool: Spool, options: dict[bytes, bytes], body_limit: int
) -> MultipartForm:
    boundary = options.get(b"boundary")
    if not boundary:
        raise BadRequest("a multipart/form-data Content-Type needs a boundary parameter")
    form = MultipartForm(spool)
    received = 0
    try:
        parser = MultipartParser(boundary, form.callbacks())
        async for chunk in request.stream():
            received += len(chunk)
            if received > body_limit:  # parts other than the file count here
                raise too_large(spool.limit)
            parser.write(chunk)
            await spool.flush()
    except FormParserError as error:
        raise BadRequest(f"the multipart body is malformed: {error}") from None
    except ClientDisconnect:
        raise BadRequest("the client disconnected before the upload ended") from None
    await spool.flush(force=True)
    if not form.ended:
        raise BadRequest("the multipart body ended before its closing boundary")
    if not form.has_file:
        raise Unprocessable('the multipart body has no part named "file"', field=FILE_PART)
    return form


def _format_of(declared_type: str, head: bytes) -> str:
    if declared_type in CSV_TYPES:
        return "csv"
    if declared_type in PARQUET_TYPES:
        return "parquet"
    return "parquet" if head == PARQUET_MAGIC else "csv"


def _media_type(header: str | bytes | None) -> tuple[str, dict[bytes, bytes]]:
    media_type, options = parse_options_header(header)
    return media_type.decode("latin-1").strip().lower(), options


def _content_length(request: Request) -> int | None:
    header = request.headers.get("content-length")
    if header is None:
        return None
    try:
        length = int(header)
    except ValueError:
        raise BadRequest(f"Content-Length {header!r} is not a number of bytes") from None
    if length < 0:
        raise BadRequest(f"Content-Length {header!r} is not a number of bytes")
    return length


def too_large(limit: int, *, declared: int | None = None) -> PayloadTooLarge:
    said = f"declares {declared:,} bytes" if declared is not None else "is larger than that"
    return PayloadTooLarge(
        f"uploads are limited to {limit:,} bytes (BACKPROP_MAX_UPLOAD_BYTES, max_upload_bytes) "
        f"and this one {said}",
        limit=limit,
        setting="max_upload_bytes",
    )


def unsupported_media_type(reason: str) -> UnsupportedMediaType:
    return UnsupportedMediaType(
        f'{reason}; send multipart/form-data with a part named "file", or the file as the '
        f"body with one of: {', '.join(BODY_TYPES)}",
        allowed=list(ALLOWED_TYPES),
    )
