"""The bodies of /v1/project: the project's view, and the quotas an admin sets."""

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StrictInt

from service.core.quotas import QuotaName

# The columns' ranges: max_stored_bytes is a BIGINT, the job counts INTEGERs.
BYTES_MAX = 2**63 - 1
COUNT_MAX = 2**31 - 1

EXAMPLE_QUOTAS = {"max_stored_bytes": 1_073_741_824, "max_queued_jobs": 100, "max_running_jobs": 2}


class QuotasUpdate(BaseModel):
    """A project's own quotas. Each is an integer >= 0, or null (or left out) for the
    service's default (BACKPROP_PROJECT_MAX_*, itself unlimited unless set)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [EXAMPLE_QUOTAS]})

    max_stored_bytes: Annotated[StrictInt | None, Field(ge=0, le=BYTES_MAX)] = Field(
        default=None, description="Bytes of uploaded files its datasets may hold"
    )
    max_queued_jobs: Annotated[StrictInt | None, Field(ge=0, le=COUNT_MAX)] = Field(
        default=None, description="Jobs it may have queued at once (sweep trials count)"
    )
    max_running_jobs: Annotated[StrictInt | None, Field(ge=0, le=COUNT_MAX)] = Field(
        default=None, description="Jobs of it that workers run at once"
    )


class QuotasPublic(BaseModel):
    """The quotas in force (null: unlimited) and which of them are the service's defaults."""

    max_stored_bytes: int | None
    max_queued_jobs: int | None
    max_running_jobs: int | None
    from_defaults: list[QuotaName] = Field(
        description="The quotas the project leaves to the service (BACKPROP_PROJECT_MAX_*)"
    )


class UsagePublic(BaseModel):
    """What the project uses now, counted as its quotas are."""

    stored_bytes: int = Field(description="size_bytes of its datasets, summed")
    queued_jobs: int
    running_jobs: int = Field(description="Jobs running or cancelling on a worker")


class ProjectPublic(BaseModel):
    """The caller's project: its name, the caller's role in it, quotas and usage."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "name": "default",
                    "role": "admin",
                    "quotas": {**EXAMPLE_QUOTAS, "from_defaults": []},
                    "usage": {"stored_bytes": 52_428, "queued_jobs": 3, "running_jobs": 1},
                }
            ]
        }
    )

    name: str
    role: str = Field(description="The caller's role: reader, trainer or admin")
    quotas: QuotasPublic
    usage: UsagePublic
