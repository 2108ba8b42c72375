"""/v1/keys: an admin makes, lists and revokes the keys of its own project.

The key a POST makes is in that answer only (with ``Cache-Control: no-store``: no proxy
or browser keeps it); listings show its id, never the key or its digest. A revoked key
stops working on every API process within a second (service.core.api_keys), without a
restart. A key id of another project answers exactly as an unknown one: 404.
"""

from typing import Annotated

from fastapi import APIRouter, Path, Response
from pydantic import WithJsonSchema

from service.core.deps import PageDep, SessionDep, WriteSessionDep
from service.core.schemas import LIMIT_PROBLEM, json_answer, problem_responses
from service.keys import service
from service.keys.schemas import (
    EXAMPLE_CREATED,
    EXAMPLE_KEY,
    EXAMPLE_KEY_ID,
    KEY_ID_PATTERN,
    KeyCreate,
    KeyCreated,
    KeysPublic,
)

router = APIRouter(prefix="/v1/keys", tags=["keys"])

# The pattern is documented, not enforced: any other id names no key, and the answer is
# the 404 an unknown key gets (as service.core.deps.IdPath does for row ids).
KeyIdPath = Annotated[
    str,
    WithJsonSchema({"type": "string", "pattern": KEY_ID_PATTERN}),
    Path(description="a key's id (`key_id` of GET /v1/keys)"),
]
KEY_MISSING = {404: f"API key {EXAMPLE_KEY_ID!r} does not exist"}


@router.post(
    "",
    status_code=201,
    summary="Make a key of the caller's project (the key is shown once)",
    responses={
        201: json_answer(
            EXAMPLE_CREATED,
            "Created: `key` is in this answer only",
            headers={"Cache-Control": {"description": "no-store", "schema": {"type": "string"}}},
        ),
        **problem_responses(
            422,
            503,
            details={422: "role: Input should be 'reader', 'trainer' or 'admin'"},
        ),
    },
)
def create_key(key_in: KeyCreate, session: WriteSessionDep, response: Response) -> KeyCreated:
    """A new key of the caller's project with `role`; the service keeps its SHA-256 only."""
    created = service.create(session=session, key_in=key_in)
    response.headers["Cache-Control"] = "no-store"
    response.headers["Location"] = f"/v1/keys/{created.key_id}"
    return created


@router.get(
    "",
    summary="List the project's keys, newest first (revoked ones included)",
    responses={
        200: json_answer({"data": [EXAMPLE_KEY], "next_cursor": None}, "A page of keys"),
        **problem_responses(422, 503, details={422: LIMIT_PROBLEM}),
    },
)
def list_keys(session: SessionDep, page: PageDep) -> KeysPublic:
    """One page of the caller's project's keys: ids, roles, names; never a key."""
    data, next_cursor = service.list_page(session=session, limit=page.limit, cursor=page.cursor)
    return KeysPublic(data=data, next_cursor=next_cursor)


@router.delete(
    "/{key_id}",
    status_code=204,
    response_class=Response,
    summary="Revoke a key of the project (every API process refuses it within a second)",
    responses={
        204: {"description": "Revoked (or it already was)"},
        **problem_responses(404, 503, details=KEY_MISSING),
    },
)
def revoke_key(key_id: KeyIdPath, session: WriteSessionDep) -> Response:
    """Revoke the key; revoking it again answers 204 as well."""
    service.revoke(session=session, key_id=key_id)
    return Response(status_code=204)
