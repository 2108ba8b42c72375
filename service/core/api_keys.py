"""API keys kept in the database: made, listed and revoked by `backprop keys` and the admin
API, looked up by every API process with a cache short enough that a revocation holds
everywhere within a second.

A key is ``bpk_`` and 64 hex digits (256 random bits); the database keeps its SHA-256
only, and its id (service.core.auth.key_id: the digest's first 12 hex digits) names it
in listings, jobs and the audit log. The key itself is shown once, when it is made.
"""

import hashlib
import secrets
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.core.errors import ServiceError
from service.core.point_reads import PointReads
from service.core.roles import Role
from service.core.tables import ApiKey, Project, utcnow
from service.core.tenancy import DEFAULT_PROJECT

KEY_PREFIX = "bpk_"
KEY_ID_LENGTH = 12
# How long a process trusts what it read of a key, or of whether any key exists: a revoked
# key stops working on every process within this (the issue asks for a second).
CACHE_SECONDS = 0.5

LOOKUP_SQL = "SELECT key_id, project, role, revoked_at FROM api_keys WHERE key_sha256 = ?"
ANY_KEY_SQL = "SELECT 1 FROM api_keys LIMIT 1"


@dataclass(frozen=True)
class Principal:
    """Who a request is: a key (None: the API has no keys), its project and role."""

    key_id: str | None
    project: str
    role: Role


OPEN = Principal(key_id=None, project=DEFAULT_PROJECT, role=Role.admin)  # no keys anywhere


def digest(key: bytes) -> str:
    return hashlib.sha256(key).hexdigest()


def make_key() -> str:
    return KEY_PREFIX + secrets.token_hex(32)


def ensure_project(session: Session, project: str) -> Project:
    """The project's row, made (with the default quotas) if this is its first key."""
    row = session.get(Project, project)
    if row is None:
        row = Project(name=project)
        session.add(row)
        session.flush()
    return row


def create_key(
    session: Session,
    *,
    project: str,
    role: Role,
    name: str | None = None,
    created_by: str | None = None,
) -> tuple[str, ApiKey]:
    """A new key of ``project`` with ``role``: (the key, shown once; its row)."""
    ensure_project(session, project)
    key = make_key()
    hexdigest = digest(key.encode("ascii"))
    row = ApiKey(
        key_id=hexdigest[:KEY_ID_LENGTH],
        key_sha256=hexdigest,
        project=project,
        role=role.name,
        name=name,
        created_by=created_by,
    )
    session.add(row)
    session.flush()
    return key, row


def list_keys(session: Session, *, project: str | None = None) -> list[ApiKey]:
    """Every key (of ``project``, if given), oldest first; revoked ones included."""
    statement = select(ApiKey).order_by(ApiKey.created_at, ApiKey.key_id)
    if project is not None:
        statement = statement.where(ApiKey.project == project)
    return list(session.scalars(statement))


def revoke_key(session: Session, key_id: str, *, project: str | None = None) -> ApiKey | None:
    """Revoke the key (of ``project``, if given); None if there is no such key. Revoking a
    revoked key changes nothing."""
    row = session.get(ApiKey, key_id)
    if row is None or (project is not None and row.project != project):
        return None
    if row.revoked_at is None:
        row.revoked_at = utcnow()
    return row


def key_view(row: ApiKey) -> dict[str, Any]:
    """A key as listings show it: never the key, never its digest."""
    return {
        "key_id": row.key_id,
        "project": row.project,
        "role": row.role,
        "name": row.name,
        "created_at": row.created_at,
        "created_by": row.created_by,
        "revoked_at": row.revoked_at,
    }


def database_keys(database: Any) -> bool:
    """Whether ``database`` holds any key; False when it cannot say (not migrated, away):
    the binding check then goes by the environment's keys alone."""
    try:
        return database.point_reads.one(ANY_KEY_SQL, ()) is not None
    except Exception:
        return False


class KeyDirectory:
    """The database's keys as one API process sees them: each lookup cached CACHE_SECONDS."""

    def __init__(self, reads: PointReads, *, known: bool = False):
        """``known``: whether the database held keys when the app was made."""
        self._reads = reads
        self._found: dict[str, tuple[float, Principal | None]] = {}
        self._any: tuple[float, bool] = (-CACHE_SECONDS - 1.0, known)

    async def any_key(self) -> bool:
        """Whether any key was ever made in the database (revoked ones count: revoking the
        last key must not open the API). While the database cannot say, the last answer
        holds: keys, once seen, keep the API closed."""
        now = time.monotonic()
        if now - self._any[0] > CACHE_SECONDS:
            try:
                found = await self._reads.one_async(ANY_KEY_SQL, ()) is not None
            except ServiceError:  # away: the routes will say so, if they need it
                found = self._any[1]
            self._any = (now, found or self._any[1])
        return self._any[1]

    async def lookup(self, key: bytes) -> Principal | None:
        """The principal of a live key, or None (unknown or revoked)."""
        hexdigest = digest(key)
        now = time.monotonic()
        cached = self._found.get(hexdigest)
        if cached is not None and now - cached[0] <= CACHE_SECONDS:
            return cached[1]
        row = await self._reads.one_async(LOOKUP_SQL, (hexdigest,))
        principal = None
        if row is not None and row[3] is None:
            principal = Principal(key_id=row[0], project=row[1], role=Role[row[2]])
        if len(self._found) > 10_000:  # strangers' guesses must not grow it without bound
            self._found.clear()
        self._found[hexdigest] = (now, principal)
        return principal
