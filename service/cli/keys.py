"""`backprop keys create|list|revoke`: API keys, made and revoked in the service's database.

These commands talk to the database itself (BACKPROP_DATABASE_URL, as `backprop serve`),
not to the API: they are how the first key of a project is made, and they work while the
API is down. A key is printed once, when it is made; the database keeps its SHA-256.
Every API process refuses a revoked key within a second, without a restart. Each change
is written to the project's audit log (key id null, detail {"by": "cli"}).

Exit status: 0 done (revoking a revoked key too); 1 the database cannot be opened or
has no such key; 2 a usage error (a project name or role that cannot be).
"""

import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any

import typer

from service.cli.common import (
    EXIT_ERROR,
    BackpropCommand,
    JsonOption,
    UsageProblem,
    examples,
    sub_app,
)
from service.cli.output import print_fields, print_json, print_table, timestamp

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

keys_app = sub_app(
    "keys",
    "API keys in the service's database (BACKPROP_DATABASE_URL): create, list, revoke.",
)

# service.core.roles.Role and service.core.tenancy.PROJECT_PATTERN, restated: importing
# SQLAlchemy to check a word would slow `backprop keys --help` (tests/test_cli_keys.py
# checks they agree).
ROLES = ("reader", "trainer", "admin")
PROJECT_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,63}$"
KEY_ID_PATTERN = r"^[0-9a-f]{12}$"  # service.keys.schemas.KEY_ID_PATTERN
NAME_MAX = 200  # the api_keys.name column
SHOWN_ONCE = "this key is shown once, now: store it; the service keeps only its SHA-256"


def project_name(value: str) -> str:
    if not re.fullmatch(PROJECT_PATTERN, value):
        raise UsageProblem(
            f"argument --project: {value!r} is not a project name: 1-64 lower-case letters, "
            "digits, '-', '_' or '.', starting with a letter or digit"
        )
    return value


def role_name(value: str) -> str:
    if value not in ROLES:
        choices = ", ".join(repr(role) for role in ROLES)
        raise UsageProblem(f"argument --role: invalid choice: {value!r} (choose from {choices})")
    return value


def key_name(value: str) -> str:
    if len(value) > NAME_MAX or "\x00" in value:
        raise UsageProblem(f"argument --name: at most {NAME_MAX} characters, got {len(value)}")
    return value


@contextmanager
def database_session() -> Iterator["Session"]:
    """A write session on the service's database; a database that cannot be opened or
    is not migrated is one line on stderr and exit 1, never a traceback."""
    from sqlalchemy.exc import DBAPIError

    from service.core.database import Database, DatabaseUnavailable, check_database, shown_url
    from service.core.settings import get_settings

    url = get_settings().database_url
    try:
        check_database(url)
    except DatabaseUnavailable as error:
        print(f"error: {error}", file=sys.stderr)
        raise typer.Exit(EXIT_ERROR) from None
    database = Database(url)
    try:
        with database.writes() as session:
            yield session
    except DBAPIError as error:
        print(
            f"error: {shown_url(url)}: {error.orig} (is it migrated? `backprop migrate`)",
            file=sys.stderr,
        )
        raise typer.Exit(EXIT_ERROR) from None
    finally:
        database.dispose()


@keys_app.command(
    "create",
    cls=BackpropCommand,
    epilog=examples(
        "backprop keys create --project team-a --role trainer --name 'nightly training'",
        "backprop keys create --project default --role admin --json",
    ),
)
def create(
    project: Annotated[
        str,
        typer.Option("--project", metavar="PROJECT", parser=project_name, help="the key's project"),
    ],
    role: Annotated[
        str,
        typer.Option(
            "--role",
            metavar="ROLE",
            parser=role_name,
            help="reader (GET only), trainer (also upload, train, predict, cancel) or "
            "admin (also delete, keys, quotas, the audit log)",
        ),
    ],
    name: Annotated[
        str | None,
        typer.Option("--name", metavar="TEXT", parser=key_name, help="what the key is for"),
    ] = None,
    json_output: Annotated[
        bool,
        typer.Option("--json", help="print key, key_id, project and role as JSON"),
    ] = False,
) -> None:
    """Make a key of PROJECT with ROLE (the project is made if new); prints the key once."""
    from service.core.api_keys import create_key
    from service.core.audit import record
    from service.core.roles import Role

    with database_session() as session:
        key, row = create_key(session, project=project, role=Role[role], name=name)
        detail = {"by": "cli", "role": role, "name": name}
        record(session, "key.create", row.key_id, detail, project=project)
        session.commit()
    if json_output:
        print_json({"key": key, "key_id": row.key_id, "project": project, "role": role})
        return
    print_fields([("key", key), ("key id", row.key_id), ("project", project), ("role", role)])
    print(f"note: {SHOWN_ONCE}", file=sys.stderr)


KEY_HEADERS = ["KEY ID", "PROJECT", "ROLE", "NAME", "CREATED (UTC)", "REVOKED (UTC)"]


def key_json(view: dict[str, Any]) -> dict[str, Any]:
    return {
        name: value.isoformat() if hasattr(value, "isoformat") else value
        for name, value in view.items()
    }


@keys_app.command(
    "list",
    cls=BackpropCommand,
    epilog=examples("backprop keys list", "backprop keys list --project team-a --json"),
)
def list_keys(
    project: Annotated[
        str | None,
        typer.Option(
            "--project", metavar="PROJECT", parser=project_name, help="only this project's keys"
        ),
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """List keys, oldest first, revoked ones included: ids, projects, roles; never a key."""
    from service.core.api_keys import key_view, list_keys

    with database_session() as session:
        views = [key_json(key_view(row)) for row in list_keys(session, project=project)]
    if json_output:
        print_json({"data": views})
        return
    rows = [
        [
            view["key_id"],
            view["project"],
            view["role"],
            view["name"] or "-",
            timestamp(view["created_at"]),
            timestamp(view["revoked_at"]),
        ]
        for view in views
    ]
    print_table(KEY_HEADERS, rows)


@keys_app.command(
    "revoke",
    cls=BackpropCommand,
    epilog=examples("backprop keys revoke 3f2a1b9c8d7e"),
)
def revoke(
    key_id: Annotated[str, typer.Argument(metavar="KEY_ID", help="the key's id (keys list)")],
) -> None:
    """Revoke a key: every API process refuses it within a second. Revoking it again is
    harmless; an unknown id exits 1."""
    from service.core.api_keys import revoke_key
    from service.core.audit import record
    from service.core.tables import ApiKey

    with database_session() as session:
        # Only what could be a key id reaches the database (PostgreSQL refuses a NUL).
        row = session.get(ApiKey, key_id) if re.fullmatch(KEY_ID_PATTERN, key_id) else None
        was_revoked = row.revoked_at if row is not None else None
        if row is not None and was_revoked is None:
            revoke_key(session, key_id)
            record(session, "key.revoke", key_id, {"by": "cli"}, project=row.project)
            session.commit()
    if row is None:
        print(
            f"error: no API key has the id {key_id!r} (see `backprop keys list`)", file=sys.stderr
        )
        raise typer.Exit(EXIT_ERROR)
    if was_revoked is not None:
        print(f"key {key_id} was already revoked at {timestamp(was_revoked.isoformat())} UTC")
    else:
        print(
            f"revoked key {key_id} of project {row.project!r}: the API refuses it within a second"
        )
