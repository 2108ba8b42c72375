"""docs/tenants.md's table of roles is service.core.roles.ROUTE_ROLES, entry for entry."""

import re
from pathlib import Path

from service.core.roles import ROUTE_ROLES

DOC = Path(__file__).resolve().parents[2] / "docs" / "tenants.md"


def roles_table() -> str:
    """The table as the doc must hold it, in ROUTE_ROLES' order."""
    rows = [f"| `{operation}` | {role.name} |" for operation, role in ROUTE_ROLES.items()]
    return "\n".join(["| Operation | Least role |", "| --- | --- |", *rows])


def test_the_docs_table_of_roles_is_route_roles():
    text = DOC.read_text()
    found = re.search(r"<!-- roles:start -->\n(.*?)\n<!-- roles:end -->", text, flags=re.S)
    assert found, "docs/tenants.md has no <!-- roles:start --> ... <!-- roles:end --> table"
    assert found.group(1) == roles_table(), (
        "docs/tenants.md's table of roles differs from service.core.roles.ROUTE_ROLES; "
        "put this between its markers:\n" + roles_table()
    )
