"""Alembic environment: the URL comes from settings (or the caller), the metadata from tables.

SQLite migrations run with foreign keys off, as Alembic advises: SQLite alters a
table by copying it, dropping the original and renaming the copy, and with
foreign keys on, dropping a parent table (jobs) would first cascade-delete its
children (history, checkpoints, models). Enforcement can only be switched off
outside a transaction, so it is done when the connection opens (online) or at
the top of the script (offline); a foreign_key_check at the end makes sure the
migrations left every reference intact.
"""

from alembic import context

from service.core.database import create_db_engine
from service.core.settings import get_settings
from service.core.tables import Base

config = context.config
target_metadata = Base.metadata


def database_url() -> str:
    # Tests and the CLI pass the URL on the Config; otherwise BACKPROP_DATABASE_URL decides.
    return config.attributes.get("url") or get_settings().database_url


def run_migrations_offline() -> None:
    sqlite = database_url().startswith("sqlite")
    context.configure(
        url=database_url(),
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=sqlite,
    )
    if sqlite:
        context.execute("PRAGMA foreign_keys=OFF")
    with context.begin_transaction():
        context.run_migrations()
    if sqlite:
        context.execute("PRAGMA foreign_keys=ON")


def run_migrations_online() -> None:
    url = database_url()
    sqlite = url.startswith("sqlite")
    engine = create_db_engine(url, pooled=False, foreign_keys=not sqlite)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=sqlite,  # SQLite alters tables by copying them
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()
            if sqlite:
                broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                if broken:
                    raise RuntimeError(f"migration broke foreign keys: {broken[:5]}")
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
