"""The database as the service commands (serve, worker, migrate) first meet it."""

import logging

log = logging.getLogger("backprop")


def shown_url(database_url: str) -> str:
    """The database URL without its password, for logs."""
    from service.core.database import shown_url

    return shown_url(database_url)


def database_opens(database_url: str) -> bool:
    """Open the database once. If it cannot be (no such database, a SQLite file in a folder
    that does not exist, no server), log one line naming it (password hidden) and the
    server's reason, and return False: the command then exits 1, as on a busy port."""
    from service.core.database import DatabaseUnavailable, check_database

    try:
        check_database(database_url)
    except DatabaseUnavailable as error:
        log.error("%s", error)
        return False
    return True
