"""Deleting a fitted model, unless a registry alias points at one of its versions.

The model's row goes, and with it (ON DELETE CASCADE) its registered versions; an alias
pointing at one of them blocks the delete twice over: the check below answers 409 naming
the registered model and alias, and the aliases' RESTRICT key makes the database refuse the
delete should an alias be set between the check and the commit. Every API process's cache
stops serving the model on its next request (service.models.service.confirm_stored).
"""

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from service.core.audit import record
from service.core.errors import Conflict, not_found
from service.core.tables import Model, could_be_id
from service.models.service import ModelCache
from service.registry.service import AliasHolder, aliases_holding


def aliased_problem(model_id: str, holders: list[AliasHolder]) -> Conflict:
    """409 naming each registered model and alias that points at a version of the model."""
    named = "; ".join(
        f"alias {h.alias!r} of registered model {h.name!r} points at its version {h.version}"
        for h in holders
    )
    return Conflict(
        f"model {model_id} is in use: {named}. Move or delete the alias "
        "(PUT or DELETE /v1/registered-models/{name}/aliases/{alias}), then delete the model",
        aliases=[{"name": h.name, "alias": h.alias, "version": h.version} for h in holders],
    )


def check_not_aliased(*, session: Session, model_id: str) -> None:
    """Conflict (409) if an alias points at a version of ``model_id``."""
    holders = aliases_holding(session=session, model_ids=[model_id])
    if holders:
        raise aliased_problem(model_id, holders)


def commit_delete(session: Session, model_id: str) -> None:
    """Commit a delete that removes ``model_id``'s row; 409 if an alias took hold of one of
    its versions meanwhile (the database's RESTRICT key refused it)."""
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        holders = aliases_holding(session=session, model_ids=[model_id])
        raise aliased_problem(model_id, holders) from None


def delete_model(*, session: Session, cache: ModelCache, model_id: str) -> None:
    """Delete the model and its unaliased registered versions; commits.

    404 for an unknown model; 409 while an alias points at one of its versions. The job
    that trained it stays (with its history): the job's model_id becomes null.
    """
    found = None
    if could_be_id(model_id):
        # FOR UPDATE: a registration of this model waits for the delete, then finds it gone.
        found = session.scalar(select(Model.id).where(Model.id == model_id).with_for_update())
    if found is None:
        raise not_found("model", model_id)
    check_not_aliased(session=session, model_id=model_id)
    session.execute(delete(Model).where(Model.id == model_id))
    record(session, "model.delete", model_id)
    commit_delete(session, model_id)
    cache.discard(model_id)
