"""One Settings object, read from environment variables prefixed BACKPROP_."""

import os
from functools import lru_cache
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


class Settings(BaseSettings):
    """Every knob of the service; see the README's table for each variable."""

    model_config = SettingsConfigDict(env_prefix="BACKPROP_", extra="ignore")

    # Where everything lives: an embedded SQLite file, or postgresql+psycopg://...
    database_url: str = "sqlite:///./backprop.db"
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = Field(default_factory=_cores)  # local worker processes `serve` starts

    # Limits on what a request may ask for.
    max_upload_bytes: int = 512 * 1024 * 1024
    max_rows: int = 5_000_000
    max_columns: int = 2_000
    max_classes: int = 1_000
    # Distinct levels a categorical column may have (and distinct values a column's
    # summary counts); past it a column is left out of training with a warning.
    max_levels: int = 10_000
    max_hidden_units: int = 4_096
    max_epochs: int = 1_000_000
    max_prediction_rows: int = 10_000
    # POST /v1/models/{id}/evaluations of a dataset of at most this many rows answers at
    # once (200); a larger one is scored by a worker (202), block by block.
    inline_evaluation_rows: int = 100_000
    scoring_block_rows: int = 65_536  # rows a worker scores (and stores) at a time
    page_limit: int = 100  # the largest page a listing returns
    max_work: int = 10_000_000_000  # epochs x rows one job may ask for
    max_queued_jobs_per_key: int = 1_000  # queued jobs one API key may have at once
    max_json_body_bytes: int = 8 * 1024 * 1024  # JSON request bodies (predictions, jobs)

    # Each project's quotas when its row (projects) leaves one NULL; None: unlimited.
    # PUT /v1/project/quotas sets a project's own (service.core.quotas, docs/quotas.md).
    project_max_stored_bytes: int | None = Field(default=None, ge=0)  # its uploads' bytes
    project_max_queued_jobs: int | None = Field(default=None, ge=0)
    project_max_running_jobs: int | None = Field(default=None, ge=0)  # the fair claim's cap

    # Access. With no keys set, the API is open, and only on loopback (serve refuses to
    # bind anything else). Keys are comma-separated; read-only keys may only GET.
    # repr=False: printing or logging the settings never shows a key.
    api_keys: str = Field(default="", repr=False)
    read_only_api_keys: str = Field(default="", repr=False)

    # The queue.
    lease_seconds: float = 30.0  # a job whose worker is silent this long is re-queued
    heartbeat_seconds: float = 5.0  # how often a worker renews its lease
    poll_seconds: float = 1.0  # idle workers poll this often; new jobs wake them at once
    sweep_seconds: float = 5.0  # how often workers look for expired leases
    max_attempts: int = 3  # claims a job gets before it fails as worker_lost
    checkpoint_seconds: float = 10.0  # store a checkpoint at most this often
    flush_seconds: float = 0.25  # write buffered history at least this often

    log_level: str = "info"
    # json: one JSON object per line (time, level, logger, message, pid, job_id...); text: plain.
    log_format: Literal["json", "text"] = "json"

    @property
    def read_write_key_list(self) -> tuple[str, ...]:
        """BACKPROP_API_KEYS as a list: split at commas, spaces around each key dropped."""
        return split_keys(self.api_keys)

    @property
    def read_only_key_list(self) -> tuple[str, ...]:
        """BACKPROP_READ_ONLY_API_KEYS as a list, split as read_write_key_list is."""
        return split_keys(self.read_only_api_keys)

    @property
    def keys_configured(self) -> bool:
        """True when any API key is set: every request but the probes and docs then needs one."""
        return bool(self.read_write_key_list or self.read_only_key_list)


def split_keys(text: str) -> tuple[str, ...]:
    """Split at commas: "k1, k2,,k3" -> ("k1", "k2", "k3"); empty items are ignored."""
    return tuple(key for key in (item.strip() for item in text.split(",")) if key)


@lru_cache
def get_settings() -> Settings:
    return Settings()
