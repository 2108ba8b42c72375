"""No pickle, no eval, no path from a request into the filesystem.

The project's own Python source (engine/ and service/) is parsed with ``ast`` and
searched for what can run code hidden in data: importing pickle and its kin,
calling eval/exec/compile, ``np.load`` without ``allow_pickle=False``, YAML loaded
without a safe loader, and pandas' ``read_pickle``. The checker is itself tested on
samples, so a pass means something. Then an upload whose file name is a path
(``../../etc/passwd``, ``/tmp/...``) is shown to create no file there: the name
is only a default dataset name.
"""

import ast
import hashlib
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.core.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
SOURCE_DIRS = ("engine", "service")
# Modules that turn bytes into arbitrary objects (joblib and shelve pickle underneath).
UNSAFE_MODULES = {"pickle", "cPickle", "_pickle", "cloudpickle", "dill", "marshal", "shelve"}
UNSAFE_MODULES |= {"joblib"}
UNSAFE_BUILTINS = {"eval", "exec", "compile"}
SAFE_YAML_LOADERS = {"SafeLoader", "CSafeLoader", "BaseLoader", "CBaseLoader"}


def _module_aliases(tree: ast.Module, module: str) -> set[str]:
    """The names ``module`` is bound to in ``tree`` (``import numpy as np`` -> {"np"})."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.asname or alias.name for alias in node.names if alias.name == module}
    return names


def _imported_functions(tree: ast.Module, module: str, function: str) -> set[str]:
    """Names bound by ``from module import function [as name]``."""
    return {
        alias.asname or alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module == module
        for alias in node.names
        if alias.name == function
    }


def _keyword(call: ast.Call, name: str) -> ast.expr | None:
    return next((k.value for k in call.keywords if k.arg == name), None)


def _is_false(node: ast.expr | None) -> bool:
    return isinstance(node, ast.Constant) and node.value is False


def _is_safe_loader(node: ast.expr | None) -> bool:
    name = node.attr if isinstance(node, ast.Attribute) else getattr(node, "id", None)
    return name in SAFE_YAML_LOADERS


def unsafe_calls(source: str, filename: str = "<sample>") -> list[str]:
    """Each unsafe import or call in ``source``, as "file:line: what"."""
    tree = ast.parse(source, filename)
    numpy = _module_aliases(tree, "numpy")
    yaml = _module_aliases(tree, "yaml")
    np_load = _imported_functions(tree, "numpy", "load")
    yaml_load = _imported_functions(tree, "yaml", "load")
    found = []

    def report(node: ast.AST, what: str) -> None:
        found.append(f"{filename}:{node.lineno}: {what}")

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in UNSAFE_MODULES:
                    report(node, f"import {alias.name}")
        elif isinstance(node, ast.ImportFrom):
            if (node.module or "").split(".")[0] in UNSAFE_MODULES:
                report(node, f"from {node.module} import ...")
        elif isinstance(node, ast.Call):
            function = node.func
            owner = (
                function.value.id
                if isinstance(function, ast.Attribute) and isinstance(function.value, ast.Name)
                else None
            )
            name = function.id if isinstance(function, ast.Name) else None
            attribute = function.attr if isinstance(function, ast.Attribute) else None
            if name in UNSAFE_BUILTINS or (owner == "builtins" and attribute in UNSAFE_BUILTINS):
                report(node, f"{name or attribute}() call")
            elif (owner in numpy and attribute == "load") or name in np_load:
                if not _is_false(_keyword(node, "allow_pickle")):
                    report(node, "np.load without allow_pickle=False")
            elif (owner in yaml and attribute == "load") or name in yaml_load:
                if not _is_safe_loader(_keyword(node, "Loader")):
                    report(node, "yaml.load without a safe Loader")
            elif owner in yaml and attribute in ("unsafe_load", "full_load", "unsafe_load_all"):
                report(node, f"yaml.{attribute}")
            elif attribute == "read_pickle" or name == "read_pickle":
                report(node, "read_pickle")
    return found


def project_sources() -> Iterator[Path]:
    for folder in SOURCE_DIRS:
        yield from sorted((ROOT / folder).rglob("*.py"))


def test_the_checker_finds_each_kind_of_unsafe_call():
    sample = """
import pickle
import cPickle as cp
from dill import loads
import marshal
import numpy as np
import numpy
from numpy import load
import yaml
import pandas as pd
import builtins
eval("1 + 1")
exec("x = 1")
builtins.eval("2")
np.load("a.npy")
np.load("a.npy", allow_pickle=True)
numpy.load("b.npz")
load("c.npy")
yaml.load(text)
yaml.load(text, Loader=yaml.Loader)
yaml.unsafe_load(text)
pd.read_pickle("frame.pkl")
"""
    found = [line.split(": ", 1)[1] for line in unsafe_calls(sample)]
    assert found == [
        "import pickle",
        "import cPickle",
        "from dill import ...",
        "import marshal",
        "eval() call",
        "exec() call",
        "eval() call",
        "np.load without allow_pickle=False",
        "np.load without allow_pickle=False",
        "np.load without allow_pickle=False",
        "np.load without allow_pickle=False",
        "yaml.load without a safe Loader",
        "yaml.load without a safe Loader",
        "yaml.unsafe_load",
        "read_pickle",
    ]


def test_the_checker_lets_safe_calls_through():
    sample = """
import numpy as np
import yaml
import re
np.load("a.npz", allow_pickle=False)
yaml.safe_load(text)
yaml.load(text, Loader=yaml.SafeLoader)
re.compile("x+")
model.eval_loss()
"""
    assert unsafe_calls(sample) == []


def test_engine_and_service_never_unpickle_or_evaluate_anything():
    sources = list(project_sources())
    assert len(sources) > 30  # the walk found the project
    found = [
        line
        for path in sources
        for line in unsafe_calls(path.read_text(), str(path.relative_to(ROOT)))
    ]
    assert found == []


# -- uploaded file names are names, never paths -----------------------------------------------


@pytest.fixture
def upload_client(database_url) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(database_url=database_url))) as client:
        yield client


def places_near(*folders: Path) -> list[Path]:
    """``folders`` and every folder above them: where a "../.." name could land."""
    return sorted({place for folder in folders for place in (folder, *folder.parents)})


def test_an_uploaded_file_named_like_a_path_creates_no_file_and_is_only_a_name(upload_client):
    marker = f"backprop-evil-{uuid.uuid4().hex}"
    passwd = Path("/etc/passwd")
    passwd_before = hashlib.sha256(passwd.read_bytes()).hexdigest() if passwd.exists() else None
    names = {
        "../../etc/passwd": "passwd",
        f"/tmp/{marker}-absolute.csv": f"{marker}-absolute",
        f"../../../../{marker}-relative.csv": f"{marker}-relative",
        f"..\\..\\{marker}-windows.csv": f"{marker}-windows",
    }
    for number, (filename, expected_name) in enumerate(names.items()):
        csv = f"x0,x1,y\n1,{number},0\n3,4,1\n5,6,0\n".encode()  # distinct: each is new
        response = upload_client.post("/v1/datasets", files={"file": (filename, csv, "text/csv")})
        assert response.status_code == 201, response.text
        assert response.json()["name"] == expected_name

    if passwd_before is not None:
        assert hashlib.sha256(passwd.read_bytes()).hexdigest() == passwd_before
    for place in places_near(Path.cwd(), ROOT, Path(tempfile.gettempdir())):
        leftovers = list(place.glob(f"{marker}*"))
        assert leftovers == [], leftovers
