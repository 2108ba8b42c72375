"""Alembic environment: the URL comes from settings (or the caller), the metadata from tables."""

from alembic import context

from service.db import create_db_engine
from service.settings import get_settings
from service.tables import Base

config = context.config
target_metadata = Base.metadata


def database_url() -> str:
    # Tests and the CLI pass the URL on the Config; otherwise BACKPROP_DATABASE_URL decides.
    return config.attributes.get("url") or get_settings().database_url


def run_migrations_offline() -> None:
    context.configure(
        url=database_url(),
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=database_url().startswith("sqlite"),
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    url = database_url()
    engine = create_db_engine(url, pooled=False)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=url.startswith("sqlite"),  # SQLite alters tables by copying them
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
