"""The model registry: names, their numbered versions of fitted models, and aliases.

A version number is handed out by one ``UPDATE registered_models SET last_version =
last_version + 1 ... RETURNING``: on PostgreSQL the UPDATE locks the name's row until the
commit, so a concurrent registration waits and then reads the incremented value; on SQLite
every write transaction holds the database's one write lock from BEGIN IMMEDIATE on. Two
registrations never share a number, and numbers of deleted versions are not reused
(the primary key (name, version) would refuse a duplicate in any case).

An alias is set, moved and deleted under the name's row lock (SELECT ... FOR UPDATE; SQLite's
write lock), and each change appends an alias_moves row in the same transaction: the history
is exactly the sequence of states the alias went through. Predictions resolve an alias with
one read on the primary keys per request (``resolve_alias``), never from a cache, so a move
made through any API process is seen by every other process on its next request.
"""

from typing import NamedTuple

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from service.core.audit import record
from service.core.auth import current_api_key_id
from service.core.errors import Conflict, NotFound, field_problem, unknown_reference
from service.core.pagination import page
from service.core.point_reads import PointReads
from service.core.tables import (
    AliasMove,
    Model,
    ModelAlias,
    ModelVersion,
    RegisteredModel,
    could_be_id,
    utcnow,
)
from service.core.tenancy import request_project
from service.registry.schemas import (
    AliasMovePublic,
    AliasPublic,
    ModelVersionCreate,
    ModelVersionPublic,
    RegisteredModelCreate,
    RegisteredModelPublic,
)

MAX_MOVES = 100  # alias moves shown with an alias, newest first


class AliasHolder(NamedTuple):
    """An alias that points at a version of some model: what keeps the model from deletion."""

    name: str
    alias: str
    version: int


def registered_model_missing(name: str) -> NotFound:
    return NotFound(f"registered model {name!r} does not exist")


# Registered models.


def create_registered_model(
    *, session: Session, model_in: RegisteredModelCreate
) -> RegisteredModel:
    """A new name with no versions; Conflict (409) if the name is taken. Commits."""
    taken = f"registered model {model_in.name!r} already exists"
    if session.scalar(select(RegisteredModel.id).where(RegisteredModel.name == model_in.name)):
        raise Conflict(taken)
    row = RegisteredModel(
        name=model_in.name,
        description=model_in.description,
        last_version=0,
        created_by=current_api_key_id(),
    )
    session.add(row)
    record(session, "registered_model.create", model_in.name)
    try:
        session.commit()
    except IntegrityError:  # created by another request since our check (PostgreSQL)
        session.rollback()
        raise Conflict(taken) from None
    return row


def get_registered_model(*, session: Session, name: str, lock: bool = False) -> RegisteredModel:
    """The registered model ``name`` (FOR UPDATE with ``lock``), or a 404 problem."""
    statement = select(RegisteredModel).where(RegisteredModel.name == name)
    row = session.scalar(statement.with_for_update() if lock else statement)
    if row is None:
        raise registered_model_missing(name)
    return row


def list_registered_models(
    *, session: Session, limit: int, cursor: str | None
) -> tuple[list[RegisteredModelPublic], str | None]:
    """One page of registered models, newest first, each with its aliases (no versions)."""
    rows, next_cursor = page(session, select(RegisteredModel), RegisteredModel, limit, cursor)
    return [registered_model_public(session=session, row=row) for row in rows], next_cursor


def registered_model_public(
    *, session: Session, row: RegisteredModel, with_versions: bool = False
) -> RegisteredModelPublic:
    """The JSON view: aliases always, the versions (newest first) with ``with_versions``."""
    aliases = dict(
        session.execute(
            select(ModelAlias.alias, ModelAlias.version)
            .where(ModelAlias.name == row.name)
            .order_by(ModelAlias.alias)
        ).all()
    )
    latest = session.scalar(
        select(ModelVersion.version)
        .where(ModelVersion.name == row.name)
        .order_by(ModelVersion.version.desc())
        .limit(1)
    )
    versions = None
    if with_versions:
        rows = session.scalars(
            select(ModelVersion)
            .where(ModelVersion.name == row.name)
            .order_by(ModelVersion.version.desc())
        )
        versions = [version_public(version, aliases) for version in rows]
    return RegisteredModelPublic(
        id=row.id,
        name=row.name,
        description=row.description,
        latest_version=latest,
        aliases=aliases,
        versions=versions,
        created_at=row.created_at,
        created_by=row.created_by,
    )


# Versions.


def register_version(
    *, session: Session, name: str, version_in: ModelVersionCreate
) -> ModelVersionPublic:
    """Register a fitted model as ``name``'s next version; commits. 404 for an unknown name,
    422 naming model_id for an unknown model."""
    found = None
    if could_be_id(version_in.model_id):  # PostgreSQL refuses NUL in text: never sent
        found = session.scalar(select(Model.id).where(Model.id == version_in.model_id))
    if found is None:
        raise unknown_reference("model_id", "model", version_in.model_id)
    # The increment takes the row's lock (PostgreSQL) until the commit: see the module's doc.
    number = session.scalar(
        update(RegisteredModel)
        .where(RegisteredModel.name == name)
        .values(last_version=RegisteredModel.last_version + 1)
        .returning(RegisteredModel.last_version)
    )
    if number is None:
        raise registered_model_missing(name)
    row = ModelVersion(
        name=name,
        version=number,
        model_id=version_in.model_id,
        created_at=utcnow(),
        created_by=current_api_key_id(),
    )
    session.add(row)
    record(session, "model_version.create", f"{name}/{number}", {"model_id": row.model_id})
    try:
        session.commit()
    except IntegrityError:  # the model was deleted since our check: its key is gone
        session.rollback()
        raise unknown_reference("model_id", "model", version_in.model_id) from None
    return version_public(row, {})


def get_version(*, session: Session, name: str, version: int) -> ModelVersionPublic:
    """Version ``version`` of ``name``, with the aliases pointing at it; 404 naming what is
    missing (the registered model, or its version)."""
    row = session.get(ModelVersion, (request_project(), name, version))
    if row is None:
        get_registered_model(session=session, name=name)  # 404 for the name, if it is that
        raise NotFound(f"registered model {name!r} has no version {version}")
    aliases = session.scalars(
        select(ModelAlias.alias).where(ModelAlias.name == name, ModelAlias.version == version)
    )
    return version_public(row, {alias: version for alias in aliases})


def version_public(row: ModelVersion, aliases: dict[str, int]) -> ModelVersionPublic:
    return ModelVersionPublic(
        name=row.name,
        version=row.version,
        model_id=row.model_id,
        aliases=sorted(alias for alias, version in aliases.items() if version == row.version),
        created_at=row.created_at,
        created_by=row.created_by,
    )


# Aliases.


def set_alias(*, session: Session, name: str, alias: str, version: int) -> AliasPublic:
    """Point ``alias`` at ``version`` (create or move it) and record the move; commits.

    404 for an unknown name; 422 naming `version` when the name has no such version. Setting
    an alias to the version it already points at changes nothing and records no move.
    """
    get_registered_model(session=session, name=name, lock=True)
    if session.get(ModelVersion, (request_project(), name, version)) is None:
        raise field_problem(
            "version", f"registered model {name!r} has no version {version}"
        ) from None
    row = session.get(ModelAlias, (request_project(), name, alias))
    previous = row.version if row is not None else None
    if previous != version:
        now, who = utcnow(), current_api_key_id()
        if row is None:
            row = ModelAlias(name=name, alias=alias, version=version)
            session.add(row)
        row.version, row.updated_at, row.updated_by = version, now, who
        session.add(
            AliasMove(
                name=name,
                alias=alias,
                from_version=previous,
                to_version=version,
                moved_at=now,
                moved_by=who,
            )
        )
        record(session, "alias.set", f"{name}@{alias}", {"from": previous, "to": version})
    try:
        session.commit()
    except IntegrityError:  # its model (and so the version) was deleted since our check
        session.rollback()
        raise field_problem(
            "version", f"registered model {name!r} has no version {version}"
        ) from None
    return get_alias(session=session, name=name, alias=alias)


def delete_alias(*, session: Session, name: str, alias: str) -> None:
    """Remove ``alias`` (its model may then be deleted) and record it; commits."""
    get_registered_model(session=session, name=name, lock=True)
    row = session.get(ModelAlias, (request_project(), name, alias))
    if row is None:
        raise alias_missing(name, alias)
    session.add(
        AliasMove(
            name=name,
            alias=alias,
            from_version=row.version,
            to_version=None,
            moved_at=utcnow(),
            moved_by=current_api_key_id(),
        )
    )
    session.execute(delete(ModelAlias).where(ModelAlias.name == name, ModelAlias.alias == alias))
    record(session, "alias.delete", f"{name}@{alias}", {"from": row.version})
    session.commit()


def alias_missing(name: str, alias: str) -> NotFound:
    return NotFound(f"registered model {name!r} has no alias {alias!r}")


def get_alias(*, session: Session, name: str, alias: str) -> AliasPublic:
    """The alias, the model it resolves to, and its moves (newest first, at most MAX_MOVES)."""
    found = session.execute(
        select(ModelAlias, ModelVersion.model_id)
        .join(
            ModelVersion,
            (ModelVersion.name == ModelAlias.name) & (ModelVersion.version == ModelAlias.version),
        )
        .where(ModelAlias.name == name, ModelAlias.alias == alias)
    ).first()
    if found is None:
        get_registered_model(session=session, name=name)
        raise alias_missing(name, alias)
    row, model_id = found
    moves = session.scalars(
        select(AliasMove)
        .where(AliasMove.name == name, AliasMove.alias == alias)
        .order_by(AliasMove.id.desc())
        .limit(MAX_MOVES)
    )
    return AliasPublic(
        name=name,
        alias=alias,
        version=row.version,
        model_id=model_id,
        updated_at=row.updated_at,
        updated_by=row.updated_by,
        moves=[
            AliasMovePublic(
                from_version=move.from_version,
                to_version=move.to_version,
                moved_at=move.moved_at,
                moved_by=move.moved_by,
            )
            for move in moves
        ],
    )


# What other rooms ask of the registry.


# Where an alias points: one read on the two primary keys, made on every prediction through
# the alias by service.core.point_reads (so written for its ``?`` placeholders).
RESOLVE_SQL = (
    "SELECT model_versions.model_id, model_versions.version FROM model_aliases "
    "JOIN model_versions ON model_versions.project = model_aliases.project "
    "AND model_versions.name = model_aliases.name "
    "AND model_versions.version = model_aliases.version "
    "WHERE model_aliases.project = ? AND model_aliases.name = ? AND model_aliases.alias = ?"
)
# Only when the alias is missing: which 404 to answer.
NAME_SQL = "SELECT 1 FROM registered_models WHERE project = ? AND name = ?"


def resolve_alias(*, reads: PointReads, name: str, alias: str) -> tuple[str, int]:
    """(model id, version) that ``alias`` of ``name`` points at now; 404 naming what is
    missing. From a worker thread."""
    found = reads.one(RESOLVE_SQL, (request_project(), name, alias))
    if found is None:
        name_exists = reads.one(NAME_SQL, (request_project(), name)) is not None
        raise alias_missing(name, alias) if name_exists else registered_model_missing(name)
    return str(found[0]), int(found[1])


async def resolve_alias_async(*, reads: PointReads, name: str, alias: str) -> tuple[str, int]:
    """``resolve_alias`` on the event loop (awaited on PostgreSQL, inline on SQLite)."""
    found = await reads.one_async(RESOLVE_SQL, (request_project(), name, alias))
    if found is None:
        name_exists = await reads.one_async(NAME_SQL, (request_project(), name)) is not None
        raise alias_missing(name, alias) if name_exists else registered_model_missing(name)
    return str(found[0]), int(found[1])


def aliases_holding(*, session: Session, model_ids: list[str]) -> list[AliasHolder]:
    """The aliases that point at a version of any of ``model_ids`` (they block its delete)."""
    if not model_ids:
        return []
    rows = session.execute(
        select(ModelAlias.name, ModelAlias.alias, ModelAlias.version)
        .join(
            ModelVersion,
            (ModelVersion.name == ModelAlias.name) & (ModelVersion.version == ModelAlias.version),
        )
        .where(ModelVersion.model_id.in_(model_ids))
        .order_by(ModelAlias.name, ModelAlias.alias)
    )
    return [AliasHolder(*row) for row in rows]
