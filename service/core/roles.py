"""Roles, and which one each operation needs: one decision per route, made here.

A key has one role in its project. ``reader`` may read (GET); ``trainer`` may also
upload, train, predict, score, register and cancel; ``admin`` may also delete, manage
keys and quotas, and read the audit log. Each role may do what the ones below it may.

``ROUTE_ROLES`` names the least role of every operation. The app refuses to start when a
route has no entry (``RoutePolicy``), and the authorization matrix test reads the same
table through the OpenAPI document (``x-required-role``), so a new route cannot ship
without a decision.
"""

import re
from collections.abc import Iterable, Sequence
from enum import IntEnum
from typing import Any


class Role(IntEnum):
    reader = 1
    trainer = 2
    admin = 3


ROUTE_ROLES: dict[str, Role] = {
    # Operations: what Prometheus scrapes spans every project, so it is an admin's.
    "GET /metrics": Role.admin,
    # Datasets.
    "POST /v1/datasets": Role.trainer,
    "GET /v1/datasets": Role.reader,
    "GET /v1/datasets/{dataset_id}": Role.reader,
    "DELETE /v1/datasets/{dataset_id}": Role.admin,
    "GET /v1/datasets/{dataset_id}/rows": Role.reader,
    # Jobs.
    "POST /v1/jobs": Role.trainer,
    "GET /v1/jobs": Role.reader,
    "GET /v1/jobs/{job_id}": Role.reader,
    "DELETE /v1/jobs/{job_id}": Role.admin,
    "POST /v1/jobs/{job_id}/cancel": Role.trainer,
    "GET /v1/jobs/{job_id}/history": Role.reader,
    "GET /v1/jobs/{job_id}/events": Role.reader,
    # Models.
    "GET /v1/models": Role.reader,
    "GET /v1/models/{model_id}": Role.reader,
    "DELETE /v1/models/{model_id}": Role.admin,
    "GET /v1/models/{model_id}/download": Role.reader,
    "GET /v1/models/{model_id}/export": Role.reader,
    "POST /v1/models/{model_id}/predictions": Role.trainer,
    "POST /v1/models/{model_id}/batch-predictions": Role.trainer,
    "GET /v1/models/{model_id}/batch-predictions/{batch_id}": Role.reader,
    "GET /v1/models/{model_id}/batch-predictions/{batch_id}/result": Role.reader,
    "POST /v1/models/{model_id}/evaluations": Role.trainer,
    "GET /v1/models/{model_id}/evaluations/{evaluation_id}": Role.reader,
    # The registry: naming and pointing are a trainer's; removing a pointer an admin's.
    "POST /v1/registered-models": Role.trainer,
    "GET /v1/registered-models": Role.reader,
    "GET /v1/registered-models/{name}": Role.reader,
    "POST /v1/registered-models/{name}/versions": Role.trainer,
    "GET /v1/registered-models/{name}/versions/{version}": Role.reader,
    "PUT /v1/registered-models/{name}/aliases/{alias}": Role.trainer,
    "GET /v1/registered-models/{name}/aliases/{alias}": Role.reader,
    "DELETE /v1/registered-models/{name}/aliases/{alias}": Role.admin,
    "POST /v1/registered-models/{name}/aliases/{alias}/predictions": Role.trainer,
    # Sweeps.
    "POST /v1/sweeps": Role.trainer,
    "GET /v1/sweeps": Role.reader,
    "GET /v1/sweeps/{sweep_id}": Role.reader,
    "POST /v1/sweeps/{sweep_id}/cancel": Role.trainer,
    # The project: its own keys, quotas and audit log.
    "GET /v1/project": Role.reader,
    "PUT /v1/project/quotas": Role.admin,
    "POST /v1/keys": Role.admin,
    "GET /v1/keys": Role.admin,
    "DELETE /v1/keys/{key_id}": Role.admin,
    "GET /v1/audit-events": Role.admin,
}


class UndecidedRoutes(RuntimeError):
    """Routes that ROUTE_ROLES says nothing about: each needs a decision before it ships."""


class RoutePolicy:
    """The role a request needs, from its method and path, in one regex match.

    Built from the app's API routes (method, path template); routes are tried in the
    router's order, so the template found is the one the router will pick.
    """

    def __init__(self, operations: Iterable[tuple[str, str]], public: Iterable[str] = ()):
        operations = list(operations)
        undecided = sorted(
            f"{method} {path}"
            for method, path in operations
            if f"{method} {path}" not in ROUTE_ROLES and path not in set(public)
        )
        if undecided:
            raise UndecidedRoutes(
                "no role decided for " + ", ".join(undecided) + " (service.core.roles.ROUTE_ROLES)"
            )
        by_method: dict[str, list[str]] = {}
        for method, path in operations:
            if f"{method} {path}" in ROUTE_ROLES:
                by_method.setdefault(method, []).append(path)
        self._patterns = {
            method: (re.compile("|".join(f"({_regex(p)})" for p in paths)), paths)
            for method, paths in by_method.items()
        }

    def role_for(self, method: str, path: str) -> Role | None:
        """The least role for ``method path``; None when no API route serves it (404/405)."""
        if method == "HEAD":
            method = "GET"
        found = self._patterns.get(method)
        if found is None:
            return None
        pattern, paths = found
        match = pattern.fullmatch(path)
        if match is None:
            return None
        return ROUTE_ROLES[f"{method} {paths[match.lastindex - 1]}"]


def api_operations(routes: Sequence[Any]) -> list[tuple[str, str]]:
    """(method, path template) of every API route the app serves (mounts left out)."""
    from fastapi.routing import APIRoute, iter_route_contexts

    operations = []
    for context in iter_route_contexts(routes):
        route = context.original_route
        if isinstance(route, APIRoute):
            operations += [(method, context.path_format) for method in sorted(route.methods)]
    return operations


def _regex(template: str) -> str:
    """/v1/jobs/{job_id} -> /v1/jobs/[^/]+ (what Starlette's default converter matches)."""
    parts = re.split(r"\{[^}]+\}", template)
    return "[^/]+".join(re.escape(part) for part in parts)
