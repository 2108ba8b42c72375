"""Datasets: the upload streamed to disk, read by one pyarrow reader, stored in chunks.

router (HTTP) -> service (create, read, list, delete) -> uploads, reader, storage, rows.
"""
