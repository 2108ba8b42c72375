"""The house rules the import contracts cannot state: short modules, a layout that is true.

The import rules themselves (the engine stands alone, dependencies point down, routers call
service functions) are import-linter contracts in pyproject.toml, run by `make lint`.
"""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MAX_MODULE_LINES = 400  # a module a newcomer reads in one sitting
SOURCES = sorted(
    path
    for package in ("engine", "service")
    for path in (ROOT / package).rglob("*.py")
    if "static" not in path.parts
)


@pytest.mark.parametrize("path", SOURCES, ids=lambda path: str(path.relative_to(ROOT)))
def test_no_module_is_longer_than_a_sitting(path):
    lines = len(path.read_text().splitlines())
    assert lines <= MAX_MODULE_LINES, f"{path.relative_to(ROOT)} has {lines} lines: split it"


def test_the_readme_layout_names_every_package_of_the_service():
    readme = (ROOT / "README.md").read_text()
    layout = re.search(r"^## Layout\n.*?```text\n(.*?)```", readme, flags=re.S | re.M)
    assert layout, "the README has a Layout section with the tree"
    packages = sorted(path.parent.name for path in (ROOT / "service").glob("*/__init__.py"))
    assert packages, "service/ is packaged by feature"
    missing = [name for name in packages if not re.search(rf"\b{name}/", layout.group(1))]
    assert not missing, f"the README's layout does not show service/{missing}"


def test_every_service_package_says_what_it_holds():
    for init in (ROOT / "service").glob("*/__init__.py"):
        assert init.read_text().startswith('"""'), f"{init.relative_to(ROOT)} has no docstring"
