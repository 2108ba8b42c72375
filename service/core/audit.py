"""The audit log: who (a key id) changed what, and when, one row per change the API made.

``record`` adds the row to the caller's session, so it commits with the change it
describes or not at all: a refused or rolled-back change leaves no trace, a committed
one always does. The row takes the request's key id (service.core.auth) and, as every
project-scoped row, the request's project; outside a request (`backprop keys`) the
caller names the project and the key id is None.

Actions read ``<resource>.<verb>``: dataset.create, job.cancel, key.revoke... The list of
every action the service records is ``ACTIONS`` (docs/keys.md shows it too).
"""

from typing import Any

from sqlalchemy.orm import Session

from service.core.auth import current_api_key_id
from service.core.tables import AuditEvent
from service.core.tenancy import request_project

ACTIONS = (
    "dataset.create",
    "dataset.delete",
    "job.create",
    "job.cancel",
    "job.delete",
    "model.delete",
    "sweep.create",
    "sweep.cancel",
    "registered_model.create",
    "model_version.create",
    "alias.set",
    "alias.delete",
    "batch_prediction.create",
    "evaluation.create",
    "key.create",
    "key.revoke",
    "project.quotas",
)


def record(
    session: Session,
    action: str,
    target: str,
    detail: dict[str, Any] | None = None,
    *,
    project: str | None = None,
    key_id: str | None = None,
) -> AuditEvent:
    """Add an audit event to ``session``'s transaction (no flush, no commit).

    ``project`` and ``key_id`` default to the request's; the CLI, which runs outside any
    request, passes its project and leaves the key id None.
    """
    if action not in ACTIONS:  # a typo would file events under a name no one reads
        raise ValueError(f"unknown audit action {action!r}: add it to ACTIONS")
    event = AuditEvent(
        project=project or request_project(),
        key_id=key_id if key_id is not None else current_api_key_id(),
        action=action,
        target=target,
        detail=detail,
    )
    session.add(event)
    return event
