"""`backprop keys create|list|revoke` as real processes on the service's database (SQLite
and PostgreSQL), and what the keys they make do to live API processes under uvicorn."""

import json
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

import httpx
import pytest

from service.cli import keys as cli_keys
from service.core.roles import Role
from service.core.tenancy import PROJECT_PATTERN
from service.keys.schemas import KEY_ID_PATTERN
from tests.service.live import free_port, fresh_database, service_env, start_api, stop
from tests.service.live import wait_until_ready as ready
from tests.test_cli_client import backprop, fields_of, table_of

BACKENDS = ["sqlite", "postgresql"]
CSV = b"x0,x1,y\n1,2,0\n3,4,1\n5,6,0\n7,8,1\n"


@pytest.fixture(params=BACKENDS)
def database_url(request, tmp_path) -> Iterator[str]:
    with fresh_database(request.param, tmp_path, "backprop_cli_keys") as url:
        yield url


def keys(url: str, *args: str):
    """`backprop keys ARGS` on the database at ``url`` (as `backprop serve` would open it)."""
    return backprop(None, "keys", *args, env=service_env(url))


def created(url: str, project: str, role: str) -> dict[str, str]:
    result = keys(url, "create", "--project", project, "--role", role, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@contextmanager
def apis(url: str, count: int) -> Iterator[list[str]]:
    """``count`` API processes under uvicorn sharing the database at ``url``."""
    with ExitStack() as stack:
        bases = []
        for _ in range(count):
            port = free_port()
            process = start_api(service_env(url), port)
            stack.callback(stop, process)
            bases.append(f"http://127.0.0.1:{port}")
        for base in bases:
            ready(base)
        yield bases


def status(base: str, method: str, path: str, key: str | None, **kwargs) -> int:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.request(method, base + path, headers=headers, timeout=10, **kwargs).status_code


# -- the commands -----------------------------------------------------------------------------


def test_the_cli_restates_the_services_roles_and_project_names():
    assert tuple(role.name for role in Role) == cli_keys.ROLES
    assert cli_keys.PROJECT_PATTERN == PROJECT_PATTERN
    assert cli_keys.KEY_ID_PATTERN == KEY_ID_PATTERN


def test_create_prints_the_key_once_and_json_has_exactly_four_fields(database_url):
    helped = keys(database_url, "create", "-h")
    assert helped.returncode == 0, helped.stderr
    assert "--json" in helped.stdout
    plain = keys(database_url, "create", "--project", "team-a", "--role", "trainer", "--name", "ci")
    as_json = created(database_url, "team-b", "admin")

    assert plain.returncode == 0, plain.stderr
    shown = fields_of(plain.stdout)
    assert (shown["project"], shown["role"]) == ("team-a", "trainer")
    assert shown["key"].startswith("bpk_")
    assert (plain.stdout + plain.stderr).count(shown["key"]) == 1
    assert "shown once" in plain.stderr
    assert set(as_json) == {"key", "key_id", "project", "role"}
    assert (as_json["project"], as_json["role"]) == ("team-b", "admin")
    listed = keys(database_url, "list")
    listed_json = keys(database_url, "list", "--json")
    for result in (listed, listed_json):
        assert result.returncode == 0, result.stderr
        assert shown["key"] not in result.stdout
        assert as_json["key"] not in result.stdout
    header, *rows = table_of(listed.stdout)
    assert header == ["KEY ID", "PROJECT", "ROLE", "NAME", "CREATED (UTC)", "REVOKED (UTC)"]
    assert [row[:4] for row in rows] == [
        [shown["key id"], "team-a", "trainer", "ci"],
        [as_json["key_id"], "team-b", "admin", "-"],
    ]
    assert rows[0][-1] == "-"
    only_b = json.loads(keys(database_url, "list", "--project", "team-b", "--json").stdout)
    assert [k["key_id"] for k in only_b["data"]] == [as_json["key_id"]]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--project", "Team-A", "--role", "reader"), "argument --project: 'Team-A' is not a"),
        (("--project", "-x", "--role", "reader"), "is not a project name"),
        (("--project", "a" * 65, "--role", "reader"), "is not a project name"),
        (("--project", "team-a", "--role", "owner"), "argument --role: invalid choice: 'owner'"),
        (("--project", "team-a",), "Missing option '--role'"),
    ],
)  # fmt: skip
def test_a_bad_project_or_role_exits_2_saying_which(database_url, args, message):
    result = keys(database_url, "create", *args)

    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert keys(database_url, "list", "--json").stdout.count("key_id") == 0  # nothing made


def test_revoke_says_so_twice_is_fine_and_an_unknown_id_exits_1(database_url):
    made = created(database_url, "team-a", "reader")

    first = keys(database_url, "revoke", made["key_id"])
    again = keys(database_url, "revoke", made["key_id"])
    unknown = keys(database_url, "revoke", "000000000000")
    not_an_id = keys(database_url, "revoke", "far-too-long-to-be-a-key-id" * 3)

    assert (first.returncode, again.returncode, unknown.returncode) == (0, 0, 1)
    assert not_an_id.returncode == 1
    assert "Traceback" not in not_an_id.stderr
    assert first.stdout.startswith(f"revoked key {made['key_id']} of project 'team-a'")
    assert again.stdout.startswith(f"key {made['key_id']} was already revoked at ")
    assert (
        unknown.stderr == "error: no API key has the id '000000000000' (see `backprop keys list`)\n"
    )
    listed = json.loads(keys(database_url, "list", "--json").stdout)["data"]
    assert listed[0]["revoked_at"] is not None


def test_each_change_goes_to_the_projects_audit_log(database_url):
    made = created(database_url, "team-a", "admin")
    keys(database_url, "revoke", created(database_url, "team-a", "reader")["key_id"])

    with apis(database_url, 1) as (base,):
        response = httpx.get(
            f"{base}/v1/audit-events", headers={"Authorization": f"Bearer {made['key']}"}
        )
    assert response.status_code == 200, response.text
    seen = [(e["action"], e["key_id"], e["detail"]["by"]) for e in response.json()["data"]]
    assert seen == [
        ("key.revoke", None, "cli"),
        ("key.create", None, "cli"),
        ("key.create", None, "cli"),
    ]


def test_a_database_that_cannot_be_opened_is_one_line_and_exit_1(tmp_path):
    url = f"sqlite:///{tmp_path / 'no' / 'such' / 'folder.db'}"
    result = keys(url, "list")
    assert result.returncode == 1
    assert result.stderr.startswith("error: ")
    assert "Traceback" not in result.stderr


# -- the keys it makes, on live API processes -------------------------------------------------


def test_a_cli_key_works_for_its_project_and_role_and_two_apis_refuse_it_once_revoked(
    database_url,
):
    trainer = created(database_url, "team-a", "trainer")
    other = created(database_url, "team-b", "admin")

    with apis(database_url, 2) as bases:
        upload = httpx.post(
            f"{bases[0]}/v1/datasets",
            content=CSV,
            headers={"Content-Type": "text/csv", "Authorization": f"Bearer {trainer['key']}"},
        )
        assert upload.status_code == 201, upload.text
        dataset = f"/v1/datasets/{upload.json()['id']}"
        for base in bases:
            assert status(base, "GET", dataset, trainer["key"]) == 200
            assert status(base, "DELETE", dataset, trainer["key"]) == 403  # an admin's
            assert status(base, "GET", dataset, other["key"]) == 404  # another project's
            assert status(base, "GET", dataset, None) == 401

        revoked = keys(database_url, "revoke", trainer["key_id"])
        assert revoked.returncode == 0, revoked.stderr
        start = time.monotonic()
        waiting = set(bases)
        while waiting and time.monotonic() - start < 3.0:
            waiting = {b for b in waiting if status(b, "GET", "/v1/jobs", trainer["key"]) != 401}
            time.sleep(0.02)
        elapsed = time.monotonic() - start
        assert not waiting, f"{waiting} still took the revoked key after {elapsed:.2f} s"
        assert elapsed <= 1.0
        assert all(status(b, "GET", "/v1/jobs", other["key"]) == 200 for b in bases)


def test_an_open_api_needs_a_key_within_a_second_of_the_first_one_made(database_url):
    with apis(database_url, 1) as (base,):
        assert status(base, "GET", "/v1/jobs", None) == 200  # no keys anywhere: open

        made = created(database_url, "default", "reader")
        start = time.monotonic()
        while status(base, "GET", "/v1/jobs", None) != 401 and time.monotonic() - start < 3.0:
            time.sleep(0.02)
        elapsed = time.monotonic() - start

        assert elapsed <= 1.0
        assert status(base, "GET", "/v1/jobs", made["key"]) == 200
        assert status(base, "POST", "/v1/jobs", made["key"], json={}) == 403  # a reader
